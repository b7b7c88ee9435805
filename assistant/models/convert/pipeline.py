"""One conversion, start to finish: checkpoint -> OpenVINO sub-models + processor + manifest.

Memory is kept low by working one stage at a time: a child process exports every
sub-model from PyTorch (see export.py) and exits; then NNCF compresses the language model
from the saved IR, with no PyTorch model in memory.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ...errors import UsageError
from ..manifest import InvalidModelFolder, Manifest, ModelKind, SubModel, read_manifest, write_manifest
from .compression import check_group_size, compress_weights, describe
from .export import release_memory, run_export
from .output import prepare_parent, staged_output
from .preflight import check_room, estimate_needs
from .source import check_model_type, fetch_checkpoint, locate_checkpoint, source_name

log = logging.getLogger(__name__)

# Bump when the exported graphs change, so an old conversion is not taken for a current one.
CONVERTER_VERSION = 2  # 2: INT8 encoders and embedding table by default

EncoderWeights = Literal["fp16", "int8", "f32"]
# Encoders and the embedding table: INT8 weights. The CPU plugin keeps them compressed, where it widens
# f16 ones to f32 on a CPU without bf16 (RESULTS.md, "Memory"; benchmarks/README.md, "Conversion").
DEFAULT_ENCODER_WEIGHTS: EncoderWeights = "int8"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ConversionResult:
    folder: Path
    manifest: Manifest
    seconds: float
    skipped: bool  # an identical conversion was already there


def _recipe(kind: ModelKind):
    if kind == "qwen2-vl":
        from . import qwen2vl as recipe
    else:
        from . import qwen2audio as recipe
    return recipe


def _settings(compression: dict[str, Any] | None, encoder_weights: str, full_precision: bool) -> dict[str, Any]:
    return {
        "converter": CONVERTER_VERSION,
        "language_model": describe(compression),
        "encoders": encoder_weights,
        "traced_from": "f32" if full_precision else "bf16",
    }


def _versions() -> dict[str, str]:
    out = {}
    for name in ("assistant", "openvino", "nncf", "transformers", "torch"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _existing(model_dir: Path, kind: ModelKind) -> Manifest | None:
    try:
        return read_manifest(model_dir, kind)
    except InvalidModelFolder:
        return None


def convert_model(
    kind: ModelKind,
    model_id: str | Path,
    model_dir: str | Path,
    compression_configuration: dict[str, Any] | None = None,
    *,
    encoder_weights: EncoderWeights = DEFAULT_ENCODER_WEIGHTS,
    full_precision: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> ConversionResult:
    """Convert a Qwen2-VL or Qwen2-Audio checkpoint (hub id or folder) into `model_dir`."""
    say = progress or (lambda message: log.info("%s", message))
    started = time.monotonic()
    model_dir = Path(model_dir).expanduser()
    if full_precision:
        encoder_weights = "f32"
    settings = _settings(compression_configuration, encoder_weights, full_precision)
    weights_name = _weights_name(compression_configuration, full_precision)

    # An identical conversion is there: nothing to do, and nothing to download (the hub cache may have
    # been emptied since, as the README allows).
    existing = _existing(model_dir, kind)
    source = source_name(model_id)
    if existing is not None and not force:
        if existing.compression == settings and existing.source == source:
            say(f"{model_dir} already holds this conversion; nothing to do (--force rebuilds it)")
            return ConversionResult(model_dir, existing, time.monotonic() - started, skipped=True)
        raise UsageError(
            f"{model_dir} holds a conversion with other settings or another source; use --force to replace it"
        )
    if existing is None and model_dir.exists() and any(model_dir.iterdir()) and not force:
        raise UsageError(f"{model_dir} exists and is not a finished conversion; use --force to replace it")

    # Everything that can refuse the conversion runs before the download and the export.
    prepare_parent(model_dir)
    located = locate_checkpoint(model_id, say)
    config = check_model_type(located, kind)
    check_group_size(config, compression_configuration)
    needs = estimate_needs(config, located.weight_bytes, located.download_bytes, weights_name)
    check_room(needs, located.source, located.hub.cache_dir if located.hub else None, model_dir)
    checkpoint = fetch_checkpoint(located, say)

    recipe = _recipe(kind)
    with staged_output(model_dir) as staging:
        say("saving the processor, tokenizer and configs")  # first: a checkpoint without them fails fast
        _save_processor(checkpoint.folder, staging)
        # PyTorch work runs in a child process: all its memory is returned when it exits, so the
        # NNCF compression below does not stack on top of it (OpenVINO's 16-bit patching keeps the
        # language model's modules alive for the life of the process).
        run_export(kind, checkpoint.folder, staging, encoder_weights, full_precision, say)
        lm = next(s for s in recipe.SUBMODELS if s.role == "language_model")
        if compression_configuration is not None:
            say(f"compressing {lm.name} weights ({describe(compression_configuration)['mode']})")
            t0 = time.monotonic()
            _compress_in_place(staging / lm.filename, compression_configuration)
            say(f"  {lm.name}: {_describe_file(staging, lm).bytes / 2**20:.1f} MiB in {time.monotonic() - t0:.1f} s")
        submodels = [_describe_file(staging, spec) for spec in recipe.SUBMODELS]
        manifest = Manifest(
            kind=kind,
            source=checkpoint.source,
            revision=checkpoint.revision,
            compression=settings,
            submodels=tuple(submodels),
            versions=_versions(),
            created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        )
        write_manifest(staging, manifest)
    return ConversionResult(model_dir, manifest, time.monotonic() - started, skipped=False)


def _weights_name(compression: dict[str, Any] | None, full_precision: bool) -> str:
    """The `--weights` choice a compression dict stands for (for the size estimates)."""
    if full_precision:
        return "f32"
    mode = str(describe(compression)["mode"])
    return "int4" if mode.startswith("int4") else "int8" if mode.startswith("int8") else "fp16"


def _compress_in_place(xml: Path, compression: dict[str, Any]) -> None:
    import openvino as ov

    core = ov.Core()
    raw_xml = xml.with_name(xml.stem + ".uncompressed.xml")
    xml.rename(raw_xml)
    xml.with_suffix(".bin").rename(raw_xml.with_suffix(".bin"))
    ov_model = core.read_model(raw_xml)
    ov_model = compress_weights(ov_model, compression)
    ov.save_model(ov_model, xml, compress_to_fp16=False)
    del ov_model
    release_memory()
    raw_xml.unlink()
    raw_xml.with_suffix(".bin").unlink()


def _describe_file(staging: Path, spec) -> SubModel:
    xml = staging / spec.filename
    bin_path = xml.with_suffix(".bin")
    return SubModel(name=spec.name, xml=xml.name, bin=bin_path.name, bytes=bin_path.stat().st_size)


def _save_processor(source: Path, staging: Path) -> None:
    from transformers import AutoConfig, AutoProcessor, GenerationConfig

    try:
        processor = AutoProcessor.from_pretrained(source)
    except (OSError, ValueError) as exc:
        reason = str(exc).split(". ")[0]
        raise UsageError(
            f"{source} has no usable processor/tokenizer files ({reason}); use a complete checkpoint"
        ) from None
    processor.save_pretrained(staging)
    AutoConfig.from_pretrained(source).save_pretrained(staging)
    try:
        GenerationConfig.from_pretrained(source).save_pretrained(staging)
    except OSError:
        log.info("the checkpoint has no generation_config.json; inference uses the model config's tokens")
