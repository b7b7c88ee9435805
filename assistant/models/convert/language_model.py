"""Export of a Qwen2 decoder + LM head as a stateful OpenVINO model.

The IR has the inputs openvino.genai's VLM pipelines expect (`inputs_embeds`,
`attention_mask`, `position_ids`, `beam_idx`) and one output, `logits`, for the last
position only: generation needs no more, and skipping the vocabulary projection for
every prompt token saves most of a long prefill's head cost. The KV cache lives inside
the compiled model as state variables.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import openvino as ov
import torch
from torch import nn

from .recipe import name_io
from .stateful import make_stateful

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecoderShape:
    layers: int
    kv_heads: int
    head_dim: int
    hidden: int
    mrope: bool  # Qwen2-VL: position_ids are [3, batch, seq] (temporal, height, width)


def decoder_shape(text_config, mrope: bool) -> DecoderShape:
    head_dim = getattr(text_config, "head_dim", None) or text_config.hidden_size // text_config.num_attention_heads
    return DecoderShape(
        layers=text_config.num_hidden_layers,
        kv_heads=text_config.num_key_value_heads,
        head_dim=head_dim,
        hidden=text_config.hidden_size,
        mrope=mrope,
    )


class _DecoderForExport(nn.Module):
    """Flattens transformers' cache object into plain tensors so the graph can be traced."""

    def __init__(self, decoder: nn.Module, lm_head: nn.Module, shape: DecoderShape):
        super().__init__()
        self.decoder = decoder
        self.lm_head = lm_head
        self.shape = shape

    def forward(self, inputs_embeds, attention_mask, position_ids, *past):
        from transformers.cache_utils import DynamicCache, DynamicLayer

        cache = DynamicCache()
        cache.layers = []
        for i in range(self.shape.layers):
            layer = DynamicLayer()
            layer.device = inputs_embeds.device
            layer.keys, layer.values = past[2 * i], past[2 * i + 1]
            layer.is_initialized = True
            cache.layers.append(layer)
        out = self.decoder(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=True,
        )
        hidden = out.last_hidden_state[:, -1:, :]
        logits = self.lm_head(hidden).float()
        presents = []
        for layer in cache.layers:
            presents.extend((layer.keys, layer.values))
        return (logits, *presents)


def export_language_model(decoder: nn.Module, lm_head: nn.Module, shape: DecoderShape) -> ov.Model:
    """Trace the decoder with small f32 example inputs and return the stateful OpenVINO model."""
    wrapper = _DecoderForExport(decoder, lm_head, shape).eval()
    batch, past_len, seq = 1, 2, 3
    positions = torch.arange(past_len, past_len + seq).view(1, seq)
    if shape.mrope:
        positions = positions.unsqueeze(0).expand(3, batch, seq).contiguous()
    past = []
    for _ in range(shape.layers):
        for _kv in range(2):
            past.append(torch.zeros(batch, shape.kv_heads, past_len, shape.head_dim))
    example = (
        torch.zeros(batch, seq, shape.hidden),
        torch.ones(batch, past_len + seq, dtype=torch.int64),
        positions,
        *past,
    )
    past_names = []
    present_names = []
    for i in range(shape.layers):
        past_names += [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
        present_names += [f"present.{i}.key", f"present.{i}.value"]
    pos_shape = [3, -1, -1] if shape.mrope else [-1, -1]
    input_spec = [
        ("inputs_embeds", ov.PartialShape([-1, -1, shape.hidden]), ov.Type.f32),
        ("attention_mask", ov.PartialShape([-1, -1]), ov.Type.i64),
        ("position_ids", ov.PartialShape(pos_shape), ov.Type.i64),
    ]
    kv_shape = ov.PartialShape([-1, shape.kv_heads, -1, shape.head_dim])
    input_spec += [(name, kv_shape, ov.Type.f32) for name in past_names]
    with torch.no_grad():
        model = ov.convert_model(
            wrapper,
            example_input=example,
            input=[(s, t) for _, s, t in input_spec],
        )
    name_io(model, [name for name, _, _ in input_spec], ["logits", *present_names])
    make_stateful(model, dict(zip(past_names, present_names, strict=True)), batch_input="inputs_embeds")
    return model
