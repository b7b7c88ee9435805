"""Qwen2-Audio as four OpenVINO sub-models.

- text embeddings: input_ids -> inputs_embeds
- audio encoder: log-mel features [batch, 128, frames] -> [batch, frames/4, d_model], for
  any even number of frames, so inference encodes the speech and not 30 s of padding
  (transformers' encoder insists on exactly 3000 frames)
- audio projection: encoder states -> language-model embeddings
- language model: stateful decoder (1-row positions)
"""

from __future__ import annotations

import openvino as ov
import torch
import torch.nn.functional as F
from torch import nn

from .recipe import SubModelExport, language_model_submodel, name_io, text_embeddings_submodel

FILES = {
    "audio_encoder": "openvino_audio_encoder_model.xml",
    "audio_projection": "openvino_audio_projection_model.xml",
}


class _AudioEncoder(nn.Module):
    """The Whisper-style encoder without the fixed-length check, for F mel frames.

    The caller gives the real frames plus the padding frames the edge convolutions see in the
    padded 30 s run (see audio_frames.encoder_input_frames); the encoder keeps the first F // 2
    strided-convolution positions, exactly those the padded run's attention mask lets through.
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_features):
        enc = self.encoder
        x = F.gelu(enc.conv1(input_features))
        x = F.gelu(enc.conv2(x))
        x = x.permute(0, 2, 1)[:, : input_features.shape[-1] // 2]
        x = x + enc.embed_positions.weight[: x.shape[1]]
        for layer in enc.layers:
            x = layer(x, None)
        x = enc.avg_pooler(x.permute(0, 2, 1)).permute(0, 2, 1)
        return enc.layer_norm(x)


class _Projection(nn.Module):
    def __init__(self, projector: nn.Module):
        super().__init__()
        self.projector = projector

    def forward(self, audio_features):
        return self.projector(audio_features)


def _export_encoder(model) -> ov.Model:
    encoder = model.model.audio_tower
    mels = encoder.config.num_mel_bins
    example = torch.zeros(1, mels, 200)
    with torch.no_grad():
        ov_model = ov.convert_model(
            _AudioEncoder(encoder).eval(),
            example_input=(example,),
            input=[(ov.PartialShape([-1, mels, -1]), ov.Type.f32)],
        )
    return name_io(ov_model, ["input_features"], ["last_hidden_state"])


def _export_projection(model) -> ov.Model:
    d_model = model.config.audio_config.d_model
    example = torch.zeros(1, 10, d_model)
    with torch.no_grad():
        ov_model = ov.convert_model(
            _Projection(model.model.multi_modal_projector).eval(),
            example_input=(example,),
            input=[(ov.PartialShape([-1, -1, d_model]), ov.Type.f32)],
        )
    return name_io(ov_model, ["audio_features"], ["inputs_embeds"])


SUBMODELS = (
    text_embeddings_submodel(),
    SubModelExport("audio_encoder", FILES["audio_encoder"], _export_encoder, "encoder", part="model.audio_tower"),
    SubModelExport(
        "audio_projection", FILES["audio_projection"], _export_projection, "encoder", part="model.multi_modal_projector"
    ),
    language_model_submodel(mrope=False),
)


def load_torch_model(folder, dtype: torch.dtype):
    from transformers import Qwen2AudioForConditionalGeneration

    return Qwen2AudioForConditionalGeneration.from_pretrained(folder, dtype=dtype, attn_implementation="sdpa").eval()
