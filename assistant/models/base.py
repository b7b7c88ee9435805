"""What both OpenVINO model classes share: loading a converted folder, generation defaults,
the `generate` signature of transformers, and the engine that runs it."""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .engine import GenerationRequest, GenerationStats, StatefulDecoder, run_generation
from .manifest import ModelKind, read_manifest
from .runtime import (
    KV_CACHE_PRECISIONS,
    RuntimeOptions,
    language_model_config,
    merged_config,
    with_kv_cache_precision,
)
from .sampling import SamplingSettings

log = logging.getLogger(__name__)


class OVModelBase:
    """A converted model folder compiled on one OpenVINO device."""

    kind: ModelKind
    preprocessor_class: str  # the name in assistant.models.preprocess that prepares this model's inputs

    def __init__(
        self,
        model_dir: str | Path,
        device: str = "CPU",
        ov_config: dict[str, Any] | None = None,
        runtime: RuntimeOptions | None = None,
    ):
        import openvino as ov

        self.model_dir = Path(model_dir)
        self.manifest = read_manifest(self.model_dir, self.kind)
        self.config = json.loads((self.model_dir / "config.json").read_text(encoding="utf-8"))
        self.generation_config = self._read_generation_config()
        self.device = device
        runtime = runtime or RuntimeOptions(device=device)
        self.ov_config = merged_config(device, ov_config, runtime)
        self.core = ov.Core()
        language_model = with_kv_cache_precision(
            self._language_model_config(runtime) or self.ov_config, device, KV_CACHE_PRECISIONS[self.kind]
        )
        # The manifest names every sub-model's file. One after another: compiling in worker threads (~25%
        # faster) left the service unable to notice a microphone that went away (test_desktop).
        self._compiled: dict[str, Any] = {
            sub.name: self.core.compile_model(
                self.model_dir / sub.xml, device, language_model if sub.name == "language_model" else self.ov_config
            )
            for sub in self.manifest.submodels
        }
        self.decoder = StatefulDecoder(self._compiled["language_model"])
        self._embed_request = self._compiled["text_embeddings"].create_infer_request()
        self.last_stats = GenerationStats()
        self._lock = threading.Lock()  # one generation at a time: the KV state is shared

    def _language_model_config(self, runtime: RuntimeOptions) -> dict[str, Any] | None:
        """The language model's own config when it should differ from the encoders' (see runtime.py)."""
        config = language_model_config(
            self.ov_config,
            device=self.device,
            decode_activations=runtime.decode_activations,
            weights=self.manifest.compression.get("language_model", {}),
            capabilities=self.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES") if self.device == "CPU" else (),
        )
        if config is not None:
            log.info(
                "%s: language model with int8 activations (group %s), encoders at the CPU's default precision",
                self.model_dir.name,
                config["DYNAMIC_QUANTIZATION_GROUP_SIZE"],
            )
        return config

    @functools.cached_property
    def preprocessor(self) -> Any:
        """This folder's tokenizer, chat template and media preprocessing, read once and reused."""
        from . import preprocess

        return getattr(preprocess, self.preprocessor_class).from_dir(self.model_dir)

    def _read_generation_config(self) -> dict[str, Any]:
        path = self.model_dir / "generation_config.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    # -- pieces the subclasses use -------------------------------------------------------------

    def embed_text(self, ids: np.ndarray | list[int]) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(1, -1)
        return self._embed_request.infer({"input_ids": ids})["inputs_embeds"].copy()

    def stop_ids(self) -> frozenset[int]:
        eos = self.generation_config.get("eos_token_id", self.text_config().get("eos_token_id"))
        if eos is None:
            return frozenset()
        return frozenset([eos] if isinstance(eos, int) else eos)

    def text_config(self) -> dict[str, Any]:
        return self.config.get("text_config") or self.config

    def sampling(
        self,
        do_sample: bool | None,
        temperature: float | None,
        top_p: float | None,
        top_k: int | None,
        repetition_penalty: float | None,
    ) -> SamplingSettings:
        """Explicit arguments over generation_config.json, as transformers' generate does."""
        g = self.generation_config
        return SamplingSettings(
            do_sample=bool(g.get("do_sample", False) if do_sample is None else do_sample),
            temperature=float(g.get("temperature", 1.0) if temperature is None else temperature),
            top_p=float(g.get("top_p", 1.0) if top_p is None else top_p),
            top_k=int(g.get("top_k", 0) if top_k is None else top_k) or 0,
            repetition_penalty=float(
                g.get("repetition_penalty", 1.0) if repetition_penalty is None else repetition_penalty
            ),
        )

    # -- the transformers-shaped API -----------------------------------------------------------

    def _request(
        self,
        inputs: dict[str, Any],
        max_new_tokens: int,
        do_sample: bool | None,
        streamer: Any,
        options: dict[str, Any],
    ) -> GenerationRequest:
        raise NotImplementedError

    def _make_request(
        self,
        ids: np.ndarray,
        embed_prompt,
        positions,
        media: list[tuple[tuple[int, int], str]],
        max_new_tokens: int,
        do_sample: bool | None,
        streamer: Any,
        options: dict[str, Any],
    ) -> GenerationRequest:
        """The engine request for a prompt whose media sit in spans (never split by cache reuse),
        each with a digest of its content: `media` is [((start, end), digest), ...]."""
        return GenerationRequest(
            input_ids=ids,
            embed_prompt=embed_prompt,
            embed_tokens=self.embed_text,
            positions=positions,
            safe_prefix=outside_spans([span for span, _ in media]),
            cache_keys=cache_keys(ids, media),
            sampling=self.sampling(
                do_sample,
                options.get("temperature"),
                options.get("top_p"),
                options.get("top_k"),
                options.get("repetition_penalty"),
            ),
            max_new_tokens=max_new_tokens,
            stop_ids=frozenset() if options.get("ignore_eos") else self.stop_ids(),
            streamer=streamer,
            on_token=options.get("on_token"),
            cancel=options.get("cancel"),
            seed=options.get("seed"),
        )

    def iter_generate(
        self, max_new_tokens: int = 128, do_sample: bool | None = None, streamer: Any = None, **inputs: Any
    ) -> Iterator[int]:
        """Yield new token ids as they are produced (an iterator form of `generate`)."""
        options = {k: inputs.pop(k) for k in list(inputs) if k in _OPTION_NAMES}
        request = self._request(inputs, max_new_tokens, do_sample, streamer, options)
        stats = GenerationStats()
        with self._lock:
            yield from run_generation(self.decoder, request, stats)
        self.last_stats = stats

    def generate(
        self, max_new_tokens: int = 128, do_sample: bool | None = None, streamer: Any = None, **inputs: Any
    ) -> Any:
        """Like transformers' generate: returns prompt + new token ids, shape [1, n]."""
        input_ids = inputs.get("input_ids")
        new = list(self.iter_generate(max_new_tokens=max_new_tokens, do_sample=do_sample, streamer=streamer, **inputs))
        prompt = np.asarray(input_ids).reshape(1, -1).astype(np.int64)
        out = np.concatenate([prompt, np.asarray([new], dtype=np.int64).reshape(1, -1)], axis=1)
        return _like(input_ids, out)

    def reset(self, keep: int = 0) -> None:
        """Forget the conversation held in the KV cache, all but its first `keep` tokens (compacted: this is
        done between requests, where the copy costs nobody a wait)."""
        with self._lock:
            self.decoder.keep(keep)
            self.decoder.compact()


# Keyword options of generate() beyond transformers' (ignore_eos: always max_new_tokens, for benchmarks).
_OPTION_NAMES = {"temperature", "top_p", "top_k", "repetition_penalty", "on_token", "cancel", "seed", "ignore_eos"}


def _like(reference: Any, array: np.ndarray) -> Any:
    """Return ids as the caller gave them: a torch tensor for torch inputs (torch is then loaded anyway)."""
    module = type(reference).__module__
    if module.startswith("torch"):
        import torch

        return torch.from_numpy(array)
    return array


def as_numpy(value: Any, dtype=None) -> np.ndarray | None:
    if value is None:
        return None
    array = value.numpy() if hasattr(value, "numpy") and not isinstance(value, np.ndarray) else np.asarray(value)
    return array.astype(dtype) if dtype is not None else array


def token_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True: one run per image, video or audio clip in a prompt."""
    hits = np.flatnonzero(np.asarray(mask))
    if hits.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(hits) > 1)
    starts = np.concatenate([[hits[0]], hits[breaks + 1]])
    ends = np.concatenate([hits[breaks] + 1, [hits[-1] + 1]])
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def cache_keys(ids: np.ndarray, media: list[tuple[tuple[int, int], str]]) -> list[Any]:
    """Token ids, with each media placeholder replaced by (content digest, offset in the media)."""
    keys: list[Any] = [int(i) for i in ids]
    for (start, end), digest in media:
        keys[start:end] = [(digest, k) for k in range(end - start)]
    return keys


def outside_spans(spans: list[tuple[int, int]]) -> Any:
    """A safe_prefix function: a prefix may end before or after a media span, never inside it."""

    def safe(n: int) -> int:
        for start, end in spans:
            if start < n < end:
                return start
        return n

    return safe


def single_row(input_ids: Any) -> np.ndarray:
    ids = as_numpy(input_ids, np.int64)
    if ids is None:
        raise ValueError("input_ids is required")
    if ids.ndim == 2:
        if ids.shape[0] != 1:
            raise ValueError(f"one request at a time: got a batch of {ids.shape[0]}")
        ids = ids[0]
    return ids
