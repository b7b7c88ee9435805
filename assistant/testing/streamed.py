"""Random bf16 weights written shard by shard, so a full-size model never has to be in memory at once.

`_save_random_model` (checkpoints.py) instantiates the whole model and saves it: 16.8 GB of bf16 for the
Qwen2-Audio-7B plus the save's own buffers, ~21 GB of this 24 GiB machine. Here the model is built on the
meta device (shapes only), and each tensor is drawn, edited and written in turn, ~2 GB per shard, so the
peak is one shard. The folder loads with ``from_pretrained`` like any sharded checkpoint: the tensors carry
the model's own parameter names and the index lists them.

Values follow transformers' initialisation in kind (normal(0, initializer_range) for matrices, ones for
norm weights, zeros for biases) but are drawn per tensor from a generator seeded by the tensor's name, so a
tensor's values do not depend on the order or the shards.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig

log = logging.getLogger(__name__)

SHARD_BYTES = 2_000_000_000
INDEX_NAME = "model.safetensors.index.json"

# edit(name, tensor): change a freshly drawn tensor in place before it is written.
TensorEdit = Callable[[str, "torch.Tensor"], None]


def _is_norm_weight(name: str, shape: tuple[int, ...]) -> bool:
    return len(shape) == 1 and name.endswith(".weight") and "norm" in name.rsplit(".", 2)[-2]


def draw_tensor(name: str, shape: tuple[int, ...], seed: int, std: float) -> torch.Tensor:
    """The value a fresh model would start with, drawn in bf16 from a generator seeded by (seed, name)."""
    import torch

    if name.endswith(".bias"):
        return torch.zeros(shape, dtype=torch.bfloat16)
    if _is_norm_weight(name, shape):
        return torch.ones(shape, dtype=torch.bfloat16)
    generator = torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:7]))
    return torch.empty(shape, dtype=torch.bfloat16).normal_(0.0, std, generator=generator)


def parameter_shapes(model_cls: type, config: PretrainedConfig) -> dict[str, tuple[int, ...]]:
    """Every saved tensor's name and shape, from the model built on the meta device (costs no memory)."""
    import torch

    with torch.device("meta"):
        model = model_cls(config)
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    if getattr(config, "tie_word_embeddings", False) or getattr(config.get_text_config(), "tie_word_embeddings", False):
        shapes.pop("lm_head.weight", None)  # tied to the embedding: saved once, as the hub folders do
    return shapes


def write_streamed_weights(
    model_cls: type,
    config: PretrainedConfig,
    out: Path,
    seed: int,
    std: float,
    edit: TensorEdit | None = None,
    shard_bytes: int = SHARD_BYTES,
) -> int:
    """Write seeded random bf16 weights for `model_cls(config)` into `out` as shards + index; returns the
    number of parameters. `edit(name, tensor)` may change each tensor before it is written."""
    from safetensors.torch import save_file

    shapes = parameter_shapes(model_cls, config)
    groups: list[list[str]] = [[]]
    size = 0
    for name, shape in shapes.items():
        nbytes = 2 * _numel(shape)
        if groups[-1] and size + nbytes > shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append(name)
        size += nbytes
    weight_map: dict[str, str] = {}
    for number, names in enumerate(groups, start=1):
        shard = f"model-{number:05d}-of-{len(groups):05d}.safetensors"
        tensors: dict[str, Any] = {}
        for name in names:
            tensor = draw_tensor(name, shapes[name], seed, std)
            if edit is not None:
                edit(name, tensor)
            tensors[name] = tensor
        save_file(tensors, str(out / shard), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(names, shard))
        log.info("wrote %s (%d of %d, %d tensors)", shard, number, len(groups), len(names))
        del tensors
    total = sum(2 * _numel(shape) for shape in shapes.values())
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (out / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")  # last: marks the save done
    return sum(_numel(shape) for shape in shapes.values())


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
