"""NNCF weight compression of the language model, as the article configures it."""

from __future__ import annotations

import logging
from typing import Any

from ...errors import UsageError

log = logging.getLogger(__name__)

# `--weights` choices of the command line.
WEIGHT_CHOICES = ("int4", "int8", "fp16", "f32")


def compression_from_options(
    weights: str, group_size: int, ratio: float, sym: bool, int4_head: bool = False
) -> dict[str, Any] | None:
    """The article's NNCF dict for `--weights int4|int8`; None (no compression) for fp16/f32.

    `int4_head` also puts the output head in INT4 (NNCF `all_layers`; by default it stays INT8): fewer
    bytes read per new token, at an accuracy cost that random weights cannot show (benchmarks/README.md).
    """
    import nncf

    if int4_head and weights != "int4":
        raise UsageError(f"--int4-head needs --weights int4, not {weights}")
    if weights == "int4":
        if group_size < 1 and group_size != -1:
            raise UsageError(f"--group-size must be a positive number (or -1 for per-channel), got {group_size}")
        if not 0.0 < ratio <= 1.0:
            raise UsageError(f"--ratio must be in (0, 1], got {ratio}")
        mode = nncf.CompressWeightsMode.INT4_SYM if sym else nncf.CompressWeightsMode.INT4_ASYM
        config = {"mode": mode, "group_size": group_size, "ratio": ratio}
        return {**config, "all_layers": True} if int4_head else config
    if weights == "int8":
        return {"mode": nncf.CompressWeightsMode.INT8_SYM if sym else nncf.CompressWeightsMode.INT8_ASYM}
    if weights in ("fp16", "f32"):
        return None
    raise UsageError(f"--weights must be one of {', '.join(WEIGHT_CHOICES)}, got {weights!r}")


def describe(config: dict[str, Any] | None) -> dict[str, Any]:
    """A JSON-friendly form of an NNCF compression dict, for the manifest and for comparisons."""
    if config is None:
        return {"mode": "none"}
    out = {}
    for key, value in sorted(config.items()):
        if hasattr(value, "value"):  # NNCF enums
            value = value.value
        elif not isinstance(value, (str, int, float, bool, type(None), list, dict)):
            value = repr(value)
        out[key] = value
    return out


def language_model_input_channels(config: dict[str, Any]) -> set[int]:
    """Input channels of the decoder's linear layers, from a checkpoint's config.json.

    Read through transformers' config class, not the raw keys: the hub files leave values to the class
    defaults (Qwen2-Audio-7B-Instruct's text_config names neither the hidden size nor the head count) or keep
    the text keys at the top level (Qwen2-VL-2B-Instruct). Only the config is built, no weights.
    """
    from transformers import CONFIG_MAPPING

    text = CONFIG_MAPPING[config["model_type"]].from_dict(dict(config)).get_text_config()
    hidden = int(text.hidden_size)
    heads = int(text.num_attention_heads)
    head_dim = int(getattr(text, "head_dim", None) or hidden // heads)
    return {hidden, heads * head_dim, int(text.intermediate_size)}


def check_group_size(config: dict[str, Any], compression: dict[str, Any] | None) -> None:
    """Refuse a group size that does not divide every compressed layer's input channels.

    Checked from config.json before anything is loaded; NNCF would otherwise fail deep
    inside, or silently fall back, depending on its version.
    """
    if compression is None or "group_size" not in compression or compression.get("group_size_fallback_mode"):
        return
    group = int(compression["group_size"])
    if group <= 0:
        return
    channels = language_model_input_channels(config)
    bad = {c for c in channels if c % group}
    if bad:
        divisors = [g for g in (128, 64, 32, 16) if all(c % g == 0 for c in channels)]
        hint = f"use --group-size {divisors[0]}" if divisors else "use --group-size -1 (per channel)"
        raise UsageError(
            f"INT4 group size {group} does not divide the language model's input channels "
            f"({', '.join(map(str, sorted(bad)))}); {hint}"
        )


def widen_embedding_tables(model):
    """Read every 16-bit embedding table through a Convert to f32, in place; returns the model.

    The table is exported as the checkpoint holds it (bf16: it may be tied to the output head), and a
    Gather straight from a bf16 constant is not a weight NNCF compresses. Through the Convert it is: INT8
    rows with a scale each, which the CPU plugin gathers from the mapped file without a copy (a bf16
    table is widened to an f32 copy on a CPU without bf16: 2.4 GiB for Qwen2-Audio-7B's).
    """
    import openvino as ov
    from openvino import opset13

    for op in model.get_ordered_ops():
        if op.get_type_name() != "Gather":
            continue
        table = op.input_value(0)
        if table.get_node().get_type_name() == "Constant" and table.get_element_type() in (ov.Type.bf16, ov.Type.f16):
            op.input(0).replace_source_output(opset13.convert(table, ov.Type.f32).output(0))
    model.validate_nodes_and_infer_types()
    return model


def compress_weights(model, config: dict[str, Any] | None):
    """Apply NNCF to an OpenVINO model (returns it unchanged for None)."""
    if config is None:
        return model
    import nncf

    log.info("compressing weights: %s", describe(config))
    return nncf.compress_weights(model, **config)
