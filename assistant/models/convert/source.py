"""Where a checkpoint comes from: a local folder used in place, or a hub id downloaded once."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...errors import AssistantError, UsageError

log = logging.getLogger(__name__)

# The `model_type` in config.json of each kind, and the subcommand that converts it.
MODEL_TYPES = {"qwen2-vl": "qwen2_vl", "qwen2-audio": "qwen2_audio"}
SUBCOMMAND = {"qwen2-vl": "vl", "qwen2-audio": "audio"}
# What conversion needs from a hub repository (weights, configs, tokenizer, processor, template).
DOWNLOAD_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.py"]


@dataclass(frozen=True)
class Checkpoint:
    folder: Path
    source: str  # what the user named: a hub id or a folder
    revision: str | None  # the hub commit, when downloaded


def looks_like_local(model_id: str) -> bool:
    path = Path(model_id).expanduser()
    return path.exists() or model_id.startswith((".", "/", "~")) or model_id.count("/") != 1


def resolve_checkpoint(model_id: str | Path, say: Callable[[str], None] | None = None) -> Checkpoint:
    """A local folder as it is, or the hub repository downloaded (resumable) into the HF cache."""
    text = str(model_id)
    if isinstance(model_id, Path) or looks_like_local(text):
        folder = Path(text).expanduser()
        if not folder.is_dir():
            raise UsageError(
                f"checkpoint folder {folder} does not exist; give a folder or a hub id like Qwen/Qwen2-VL-2B-Instruct"
            )
        return Checkpoint(folder=folder.resolve(), source=str(folder.resolve()), revision=None)
    return _download(text, say or (lambda message: log.info("%s", message)))


def _download(repo_id: str, say: Callable[[str], None]) -> Checkpoint:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    say(f"downloading {repo_id} from the Hugging Face hub (resumes if interrupted)")
    try:
        path = Path(snapshot_download(repo_id, allow_patterns=DOWNLOAD_PATTERNS))
    except GatedRepoError:
        raise UsageError(f"{repo_id} needs you to accept its licence on the hub and log in (hf auth login)") from None
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise UsageError(f"{repo_id} was not found on the Hugging Face hub; check the name") from None
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, ConnectionError) as exc:
        raise UsageError(
            f"cannot download {repo_id} (offline? {type(exc).__name__}); download it elsewhere and pass "
            f"--source DIR with the checkpoint folder"
        ) from None
    except OSError as exc:
        raise AssistantError(f"downloading {repo_id} failed ({exc}); free disk space or retry") from None
    return Checkpoint(folder=path, source=repo_id, revision=path.name if path.parent.name == "snapshots" else None)


def check_model_type(checkpoint: Checkpoint, kind: str) -> dict:
    """The checkpoint's config.json, if it is the kind asked for; a clear error otherwise."""
    config_path = checkpoint.folder / "config.json"
    wanted = MODEL_TYPES[kind]
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        model_type = config.get("model_type")
    except (OSError, ValueError):
        raise UsageError(
            f"{checkpoint.folder} is not a Hugging Face checkpoint (no readable config.json); "
            f"give a {kind} checkpoint folder or hub id"
        ) from None
    if model_type == wanted:
        return config
    other = next((k for k, t in MODEL_TYPES.items() if t == model_type), None)
    if other is not None:
        raise UsageError(
            f"{checkpoint.source} is a {other} checkpoint, not {kind}; use: assistant convert {SUBCOMMAND[other]}"
        )
    raise UsageError(f"{checkpoint.source} is a '{model_type}' checkpoint, not {kind} (model_type '{wanted}')")
