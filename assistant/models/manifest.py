"""The manifest that marks a folder as a complete, converted model.

`assistant convert` writes `manifest.json` last, after every sub-model is in place, so a
folder without a valid manifest (an interrupted or foreign conversion) is never loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import UsageError

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1

ModelKind = Literal["qwen2-vl", "qwen2-audio"]

# Sub-models each kind must have (the article's split of the two models).
REQUIRED_SUBMODELS: dict[str, tuple[str, ...]] = {
    "qwen2-vl": ("language_model", "image_embedding", "image_embedding_merger", "text_embeddings"),
    "qwen2-audio": ("language_model", "audio_encoder", "audio_projection", "text_embeddings"),
}

# The `assistant convert` subcommand that makes each kind.
CONVERT_TARGET = {"qwen2-vl": "vl", "qwen2-audio": "audio"}


class InvalidModelFolder(UsageError):
    """A model folder that is missing, incomplete or of the wrong kind."""


@dataclass(frozen=True)
class SubModel:
    name: str
    xml: str
    bin: str
    bytes: int


@dataclass(frozen=True)
class Manifest:
    kind: ModelKind
    source: str
    revision: str | None
    compression: dict[str, Any]
    submodels: tuple[SubModel, ...]
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""

    @property
    def weight_bytes(self) -> int:
        return sum(s.bytes for s in self.submodels)

    def to_json(self) -> str:
        data = {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "source": self.source,
            "revision": self.revision,
            "compression": self.compression,
            "versions": self.versions,
            "created": self.created,
            "submodels": {s.name: {"xml": s.xml, "bin": s.bin, "bytes": s.bytes} for s in self.submodels},
        }
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _fix(kind: str) -> str:
    return f"run: assistant convert {CONVERT_TARGET.get(kind, 'all')}"


def not_converted_yet(folder: Path) -> bool:
    """Nothing converted there at all: no folder, or an empty one (`assistant convert` fills it as it is)."""
    folder = Path(folder)
    return not folder.is_dir() or not any(folder.iterdir())


def nothing_converted(audio_dir: Path, vl_dir: Path, config: Path | None = None) -> InvalidModelFolder:
    """The one error of a fresh install, where neither model is converted yet: it names the one command
    that converts both (with the --config FILE the folders came from, so they land where they are looked for)."""
    audio_dir, vl_dir = Path(audio_dir), Path(vl_dir)
    if audio_dir.parent == vl_dir.parent:  # the default places: one folder, two names
        where = f"in {audio_dir.parent} ({audio_dir.name}, {vl_dir.name})"
    else:
        where = f"(Qwen2-Audio: {audio_dir}, Qwen2-VL: {vl_dir})"
    option = f" --config {config}" if config is not None else ""
    return InvalidModelFolder(f"no converted models yet {where}; run: assistant convert all{option}")


def check_model_folders(audio_dir: Path, vl_dir: Path, config: Path | None = None) -> InvalidModelFolder | None:
    """Check both folders before anything slow starts (reading manifests only, no model is compiled).

    Raises InvalidModelFolder when the Qwen2-Audio model, which every request needs, cannot be used: on a
    fresh install the `nothing_converted` error. Returns the Qwen2-VL folder's problem, or None: without that
    model only screen questions are off.
    """
    try:
        read_manifest(audio_dir, "qwen2-audio")
    except InvalidModelFolder:
        if not_converted_yet(audio_dir) and not_converted_yet(vl_dir):
            raise nothing_converted(audio_dir, vl_dir, config) from None
        raise
    try:
        read_manifest(vl_dir, "qwen2-vl")
    except InvalidModelFolder as exc:
        return exc
    return None


def read_manifest(folder: Path, kind: ModelKind) -> Manifest:
    """The folder's manifest, checked against the files on disk; raises InvalidModelFolder."""
    folder = Path(folder)
    what = "Qwen2-VL" if kind == "qwen2-vl" else "Qwen2-Audio"
    if not_converted_yet(folder):
        raise InvalidModelFolder(f"no converted {what} model at {folder}; {_fix(kind)}")
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise InvalidModelFolder(
            f"{folder} is not a converted {what} model (no {MANIFEST_NAME}, maybe an interrupted conversion); "
            f"{_fix(kind)} --force"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"manifest format {data.get('format')!r}, expected {FORMAT_VERSION}")
        submodels = tuple(
            SubModel(name=name, xml=str(s["xml"]), bin=str(s["bin"]), bytes=int(s["bytes"]))
            for name, s in data["submodels"].items()
        )
        manifest = Manifest(
            kind=data["kind"],
            source=str(data["source"]),
            revision=data.get("revision"),
            compression=dict(data.get("compression") or {}),
            submodels=submodels,
            versions=dict(data.get("versions") or {}),
            created=str(data.get("created", "")),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidModelFolder(f"{path} is damaged ({exc}); {_fix(kind)} --force") from None
    if manifest.kind != kind:
        raise InvalidModelFolder(
            f"{folder} holds a {manifest.kind} model, not {kind}; point the config at the right folder or {_fix(kind)}"
        )
    names = {s.name for s in submodels}
    missing = [n for n in REQUIRED_SUBMODELS[kind] if n not in names]
    if missing:
        raise InvalidModelFolder(f"{folder} lacks sub-models {', '.join(missing)}; {_fix(kind)} --force")
    for s in submodels:
        for rel in (s.xml, s.bin):
            if not (folder / rel).is_file():
                raise InvalidModelFolder(f"{folder} lacks {rel}; {_fix(kind)} --force")
        if (folder / s.bin).stat().st_size != s.bytes:
            raise InvalidModelFolder(f"{folder / s.bin} has the wrong size (damaged copy?); {_fix(kind)} --force")
    return manifest


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    """Write the manifest atomically; call it only once everything else is in place."""
    path = Path(folder) / MANIFEST_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(manifest.to_json(), encoding="utf-8")
    tmp.replace(path)
    return path
