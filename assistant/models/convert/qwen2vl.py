"""Qwen2-VL as four OpenVINO sub-models (the article's split, openvino.genai's file names).

- text embeddings: input_ids -> inputs_embeds
- image embedding: flattened patches (processor `pixel_values`) -> patch embeddings
- image embedding merger: the vision blocks and the 2x2 patch merger, with attention
  restricted by an additive mask and the rotary angles given as inputs (instead of
  `cu_seqlens`, which cannot be traced)
- language model: stateful decoder with 3-row M-RoPE position ids
"""

from __future__ import annotations

import openvino as ov
import torch
import torch.nn.functional as F
from torch import nn

from .recipe import SubModelExport, language_model_submodel, name_io, text_embeddings_submodel

FILES = {
    "image_embedding": "openvino_vision_embeddings_model.xml",
    "image_embedding_merger": "openvino_vision_embeddings_merger_model.xml",
}


class _PatchEmbedding(nn.Module):
    def __init__(self, visual: nn.Module):
        super().__init__()
        self.patch_embed = visual.patch_embed

    def forward(self, pixel_values):
        return self.patch_embed(pixel_values)


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _vision_attention(attn: nn.Module, x, mask, cos, sin):
    n = x.shape[0]
    q, k, v = attn.qkv(x).reshape(n, 3, attn.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
    cos, sin = cos.unsqueeze(-2), sin.unsqueeze(-2)
    q = q * cos + _rotate_half(q) * sin
    k = k * cos + _rotate_half(k) * sin
    q, k, v = (t.transpose(0, 1) for t in (q, k, v))  # heads first
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=attn.scaling)
    return attn.proj(out.transpose(0, 1).reshape(n, -1))


class _VisionMerger(nn.Module):
    def __init__(self, visual: nn.Module):
        super().__init__()
        self.blocks = visual.blocks
        self.merger = visual.merger

    def forward(self, hidden_states, attention_mask, rotary_pos_emb):
        emb = torch.cat([rotary_pos_emb, rotary_pos_emb], dim=-1)
        cos, sin = emb.cos(), emb.sin()
        for block in self.blocks:
            hidden_states = hidden_states + _vision_attention(
                block.attn, block.norm1(hidden_states), attention_mask, cos, sin
            )
            hidden_states = hidden_states + block.mlp(block.norm2(hidden_states))
        return self.merger(hidden_states)


def _export_patch_embedding(model) -> ov.Model:
    visual = model.model.visual
    cfg = visual.config
    channels = cfg.in_channels * cfg.temporal_patch_size * cfg.patch_size**2
    example = torch.zeros(8, channels)
    with torch.no_grad():
        ov_model = ov.convert_model(
            _PatchEmbedding(visual).eval(),
            example_input=(example,),
            input=[(ov.PartialShape([-1, channels]), ov.Type.f32)],
        )
    return name_io(ov_model, ["pixel_values"], ["last_hidden_state"])


def _export_merger(model) -> ov.Model:
    visual = model.model.visual
    cfg = visual.config
    head_dim = cfg.embed_dim // cfg.num_heads
    patches = 4 * cfg.spatial_merge_size**2
    example = (
        torch.zeros(patches, cfg.embed_dim),
        torch.zeros(1, patches, patches),
        torch.zeros(patches, head_dim // 2),
    )
    with torch.no_grad():
        ov_model = ov.convert_model(
            _VisionMerger(visual).eval(),
            example_input=example,
            input=[
                (ov.PartialShape([-1, cfg.embed_dim]), ov.Type.f32),
                (ov.PartialShape([-1, -1, -1]), ov.Type.f32),
                (ov.PartialShape([-1, head_dim // 2]), ov.Type.f32),
            ],
        )
    return name_io(ov_model, ["hidden_states", "attention_mask", "rotary_pos_emb"], ["last_hidden_state"])


SUBMODELS = (
    text_embeddings_submodel(),
    SubModelExport(
        "image_embedding",
        FILES["image_embedding"],
        _export_patch_embedding,
        "encoder",
        part="model.visual.patch_embed",
        free_after=False,
    ),
    SubModelExport(
        "image_embedding_merger", FILES["image_embedding_merger"], _export_merger, "encoder", part="model.visual"
    ),
    language_model_submodel(mrope=True),
)


def load_torch_model(folder, dtype: torch.dtype):
    from transformers import Qwen2VLForConditionalGeneration

    return Qwen2VLForConditionalGeneration.from_pretrained(folder, dtype=dtype, attn_implementation="sdpa").eval()
