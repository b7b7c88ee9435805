"""What a model's conversion consists of: named sub-models, each with its own exporter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import openvino as ov
import torch
from torch import nn

# How a sub-model's weights are stored: the language model gets the NNCF setting, the
# encoders and the embedding table get the encoder setting.
Role = Literal["language_model", "encoder", "embeddings"]


@dataclass(frozen=True)
class SubModelExport:
    name: str  # as the manifest names it
    filename: str  # the .xml file in the model folder
    export: Callable[[nn.Module], ov.Model]
    role: Role
    # The PyTorch part this sub-model is made of: cast to f32 before export, freed after.
    part: str = ""  # attribute path from the full model, e.g. "model.visual"
    free_after: bool = True

    def module(self, model: nn.Module) -> nn.Module:
        return _get(model, self.part)

    def free(self, model: nn.Module) -> None:
        parent, _, leaf = self.part.rpartition(".")
        setattr(_get(model, parent), leaf, None)


def _get(model: nn.Module, path: str) -> nn.Module:
    for attr in path.split("."):
        model = getattr(model, attr)
    return model


def name_io(model: ov.Model, inputs: list[str], outputs: list[str]) -> ov.Model:
    """Give the traced model's ports the stable names inference looks them up by."""
    for port, name in zip(model.inputs, inputs, strict=True):
        port.get_tensor().set_names({name})
    for port, name in zip(model.outputs, outputs, strict=True):
        port.get_tensor().set_names({name})
    return model


class TextEmbeddings(nn.Module):
    """input_ids -> inputs_embeds: the token embedding table alone."""

    def __init__(self, embed_tokens: nn.Module):
        super().__init__()
        self.embed_tokens = embed_tokens

    def forward(self, input_ids):
        return self.embed_tokens(input_ids).float()

    @classmethod
    def export(cls, embed_tokens: nn.Module) -> ov.Model:
        example = torch.zeros(1, 4, dtype=torch.int64)
        with torch.no_grad():
            model = ov.convert_model(
                cls(embed_tokens).eval(), example_input=(example,), input=[(ov.PartialShape([-1, -1]), ov.Type.i64)]
            )
        return name_io(model, ["input_ids"], ["inputs_embeds"])


def text_embeddings_submodel() -> SubModelExport:
    """The token embedding table, the same for both models."""
    return SubModelExport(
        "text_embeddings",
        "openvino_text_embeddings_model.xml",
        lambda model: TextEmbeddings.export(model.model.language_model.embed_tokens),
        "embeddings",
        part="model.language_model.embed_tokens",
    )


def language_model_submodel(mrope: bool) -> SubModelExport:
    """The stateful decoder + head; Qwen2-VL's takes 3-row M-RoPE positions."""
    from .language_model import decoder_shape, export_language_model

    def export(model) -> ov.Model:
        shape = decoder_shape(model.config.text_config, mrope=mrope)
        return export_language_model(model.model.language_model, model.lm_head, shape)

    return SubModelExport("language_model", "openvino_language_model.xml", export, "language_model")
