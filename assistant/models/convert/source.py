"""Where a checkpoint comes from: a local folder used in place, or a hub id downloaded once.

`locate_checkpoint` learns what is needed to decide whether a conversion can run (config.json, the
size of the weights, how much is still to download) without the long work; `fetch_checkpoint` then
makes the folder available (the download, for a hub id).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...errors import UsageError
from .hub import HubRepo, download_repo, inspect_repo

# The `model_type` in config.json of each kind, and the subcommand that converts it.
MODEL_TYPES = {"qwen2-vl": "qwen2_vl", "qwen2-audio": "qwen2_audio"}
SUBCOMMAND = {"qwen2-vl": "vl", "qwen2-audio": "audio"}


@dataclass(frozen=True)
class Checkpoint:
    folder: Path
    source: str  # what the user named: a hub id or a folder
    revision: str | None  # the hub commit, when downloaded


@dataclass(frozen=True)
class CheckpointSource:
    """A checkpoint located but not fetched: enough to check the machine before the long work."""

    source: str  # the hub id, or the folder's resolved path
    config: dict
    weight_bytes: int  # safetensors on disk or on the hub
    download_bytes: int  # still to fetch into the hub cache (0 for a local folder)
    hub: HubRepo | None = None
    folder: Path | None = None  # a local checkpoint folder


def looks_like_local(model_id: str) -> bool:
    path = Path(model_id).expanduser()
    return path.exists() or model_id.startswith((".", "/", "~")) or model_id.count("/") != 1


def source_name(model_id: str | Path) -> str:
    """How a manifest names the source: the hub id as given, or the folder's absolute path."""
    text = str(model_id)
    if isinstance(model_id, Path) or looks_like_local(text):
        return str(Path(text).expanduser().resolve())
    return text


def locate_checkpoint(model_id: str | Path, say: Callable[[str], None]) -> CheckpointSource:
    """A local folder's config and size, or a hub repository's (its file list and config.json only)."""
    text = str(model_id)
    if isinstance(model_id, Path) or looks_like_local(text):
        folder = Path(text).expanduser()
        if not folder.is_dir():
            raise UsageError(
                f"checkpoint folder {folder} does not exist; give a folder or a hub id like Qwen/Qwen2-VL-2B-Instruct"
            )
        folder = folder.resolve()
        weights = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
        return CheckpointSource(str(folder), _read_config(folder), weights, 0, folder=folder)
    repo = inspect_repo(text, say)
    return CheckpointSource(text, repo.config, repo.weight_bytes, repo.bytes_to_download(), hub=repo)


def fetch_checkpoint(located: CheckpointSource, say: Callable[[str], None]) -> Checkpoint:
    if located.hub is None:
        assert located.folder is not None
        return Checkpoint(folder=located.folder, source=located.source, revision=None)
    folder = download_repo(located.hub, say)
    # The snapshot folder is named by its commit (the branch may have moved since it was inspected).
    return Checkpoint(folder=folder, source=located.source, revision=folder.name)


def _read_config(folder: Path) -> dict:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            raise ValueError("not an object")
        return config
    except (OSError, ValueError):
        raise UsageError(
            f"{folder} is not a Hugging Face checkpoint (no readable config.json); give a checkpoint folder or hub id"
        ) from None


def check_model_type(located: CheckpointSource, kind: str) -> dict:
    """The checkpoint's config.json, if it is the kind asked for; a clear error otherwise."""
    wanted = MODEL_TYPES[kind]
    model_type = located.config.get("model_type")
    if model_type == wanted:
        return located.config
    other = next((k for k, t in MODEL_TYPES.items() if t == model_type), None)
    if other is not None:
        raise UsageError(
            f"{located.source} is a {other} checkpoint, not {kind}; use: assistant convert {SUBCOMMAND[other]}"
        )
    raise UsageError(f"{located.source} is a '{model_type}' checkpoint, not {kind} (model_type '{wanted}')")
