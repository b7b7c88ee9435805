"""Session-wide test setup: no hub access, and tiny random Qwen2-VL / Qwen2-Audio checkpoints built once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set before anything imports huggingface_hub or transformers (they read these at import time): every
# model, processor and tokenizer must come from a local folder, and a stray hub lookup fails at once.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def pytest_configure(config: pytest.Config) -> None:
    # pyproject.toml normally registers the marker; keep `--strict-markers` working if it does not.
    if not any(line.split(":")[0].strip() == "slow" for line in config.getini("markers")):
        config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(scope="session")
def tiny_qwen2vl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Qwen2-VL checkpoint folder (real architecture, tiny dimensions, offline tokenizer)."""
    from assistant.testing import build_tiny_qwen2vl

    return build_tiny_qwen2vl(tmp_path_factory.mktemp("tiny-qwen2vl"))


@pytest.fixture(scope="session")
def tiny_qwen2audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Qwen2-Audio checkpoint folder (real architecture, tiny dimensions, offline tokenizer)."""
    from assistant.testing import build_tiny_qwen2audio

    return build_tiny_qwen2audio(tmp_path_factory.mktemp("tiny-qwen2audio"))
