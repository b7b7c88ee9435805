"""Session-wide test setup: no hub access, and tiny random Qwen2-VL / Qwen2-Audio checkpoints built once."""

from __future__ import annotations

import os
import warnings
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
def hf():
    """transformers, imported only by the tests that compare against it, with its deprecation chatter off
    (the hub's legacy files trigger some, as the real ones do)."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    import transformers

    transformers.logging.set_verbosity_error()
    return transformers


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


@pytest.fixture(scope="session")
def vl_f32(tiny_qwen2vl_dir, tmp_path_factory) -> Path:
    """The tiny Qwen2-VL converted with f32 weights (for exact comparisons with PyTorch)."""
    from assistant.models import convert_qwen2vl_model

    out = tmp_path_factory.mktemp("convert") / "vl-f32"
    convert_qwen2vl_model(tiny_qwen2vl_dir, out, None, full_precision=True)
    return out


@pytest.fixture(scope="session")
def audio_f32(tiny_qwen2audio_dir, tmp_path_factory) -> Path:
    """The tiny Qwen2-Audio converted with f32 weights."""
    from assistant.models import convert_qwen2audio_model

    out = tmp_path_factory.mktemp("convert") / "audio-f32"
    convert_qwen2audio_model(tiny_qwen2audio_dir, out, None, full_precision=True)
    return out


@pytest.fixture(scope="session")
def vl_torch(tiny_qwen2vl_dir):
    """The tiny Qwen2-VL in PyTorch (f32) and its processor: the reference."""
    import torch
    from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

    model = Qwen2VLForConditionalGeneration.from_pretrained(tiny_qwen2vl_dir, dtype=torch.float32).eval()
    return model, AutoProcessor.from_pretrained(tiny_qwen2vl_dir)


@pytest.fixture(scope="session")
def audio_torch(tiny_qwen2audio_dir):
    """The tiny Qwen2-Audio in PyTorch (f32) and its processor."""
    import torch
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    model = Qwen2AudioForConditionalGeneration.from_pretrained(tiny_qwen2audio_dir, dtype=torch.float32).eval()
    return model, AutoProcessor.from_pretrained(tiny_qwen2audio_dir)
