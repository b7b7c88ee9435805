"""One generation engine over a stateful OpenVINO language model, shared by both models.

The language model keeps its KV cache as state inside the infer request. The engine
remembers what that state holds, one key per position: the token id, or for an image or
audio placeholder a digest of that media's content plus the offset in it (two screenshots
of the same size have the same placeholder ids but not the same keys). A later call whose
prompt starts with the same keys (the next turn of a conversation) prefills only the new
tokens: earlier images and audio are neither re-encoded nor re-attended from scratch.

A prompt that shares only a prefix with the state (the voice answer after the transcript of the same
clip) does not cut the state back: copying it out and in costs ~0.4 s on the 7B at 160 tokens. The
positions after the prefix stay in the state as holes that the attention mask hides. A mask with holes
makes the CPU plugin's prefill much slower, though: 511 of them made a 524-token Qwen2-VL prefill 7.1 s
instead of 5.2, ~60 made the 7B's 113-token transcription prefill 5.0 s instead of 3.7. So a forward of
more than COMPACT_PROMPT positions compacts the state first; short ones (a voice answer's prompt after
its transcript, every new token) keep the holes, as long as there are at most HOLE_LIMIT of them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .sampling import SamplingSettings, next_token

log = logging.getLogger(__name__)


class Streamer(Protocol):
    """transformers' streamer protocol (TextStreamer, TextIteratorStreamer): put(ids), end()."""

    def put(self, value: Any) -> None: ...

    def end(self) -> None: ...


@dataclass
class GenerationRequest:
    """Everything a model class hands the engine for one generate call."""

    input_ids: np.ndarray  # [prompt_len] int64, the whole conversation so far
    embed_prompt: Callable[[int], np.ndarray]  # first index -> [1, n, hidden] for input_ids[first:]
    embed_tokens: Callable[[list[int]], np.ndarray]  # generated text tokens -> [1, n, hidden]
    positions: Callable[[int, int], np.ndarray]  # (sequence index, count) -> position_ids for them
    sampling: SamplingSettings
    max_new_tokens: int
    stop_ids: frozenset[int]
    streamer: Streamer | None = None
    on_token: Callable[[int], None] | None = None
    cancel: threading.Event | None = None
    seed: int | None = None
    # Moves a reusable prefix length back to the start of an image/audio span it would cut.
    safe_prefix: Callable[[int], int] = lambda n: n
    # What each prompt position holds, for reusing the cache: token ids unless media say otherwise.
    cache_keys: Sequence[Hashable] | None = None


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    reused_tokens: int = 0  # prompt tokens whose KV cache came from an earlier call
    new_tokens: int = 0
    prefill_s: float = 0.0  # from the call's start to the prompt's logits, embed_s included
    embed_s: float = 0.0  # the prompt's embeddings: text lookup and the image/audio encoders
    first_token_s: float = 0.0  # from the call's start
    decode_s: float = 0.0
    cancelled: bool = False
    stopped_on: int | None = None

    @property
    def ms_per_token(self) -> float:
        return 1000 * self.decode_s / max(1, self.new_tokens - 1)


# Hidden positions the state may hold before it is compacted (see the module docstring).
HOLE_LIMIT = 1024
# A forward of more positions than this compacts a state with holes first (see the module docstring): a
# voice answer's prompt (9 tokens after its transcript's 38 hidden ones) keeps them, saving the copy of the
# 7B's state (0.3-0.9 s); a transcription or screenshot prompt does not.
COMPACT_PROMPT = 16
# The most positions one inference runs: the CPU plugin keeps the activation buffers of the largest input
# it has seen for the life of the request, and they grow with the positions; a conversation whose oldest
# turn was dropped runs its whole history again (~4000 positions). A 30 s clip's prompt (~790) stays one run.
PREFILL_CHUNK = 1024


class StatefulDecoder:
    """A compiled stateful language model and the keys of what its state currently holds."""

    def __init__(self, compiled_model: Any):
        self.request = compiled_model.create_infer_request()
        self.cached_keys: list[Hashable] = []  # of the live positions, in order
        self._live: list[bool] = []  # per position of the state: attended (True) or a hole (False)
        self._batch = np.zeros(1, np.int32)

    def reset(self) -> None:
        self.request.reset_state()
        self.cached_keys = []
        self._live = []

    @property
    def holes(self) -> int:
        return len(self._live) - len(self.cached_keys)

    def common_prefix(self, keys: Sequence[Hashable]) -> int:
        """How many leading prompt positions the state already holds (at least one is left to run)."""
        limit = min(len(self.cached_keys), len(keys) - 1)
        n = 0
        while n < limit and self.cached_keys[n] == keys[n]:
            n += 1
        return n

    def keep(self, n: int) -> None:
        """Keep only the first `n` tokens (a conversation that diverged after them): the rest become holes."""
        if n == 0:
            self.reset()
            return
        if n == len(self.cached_keys):
            return
        last = np.flatnonzero(self._live)[n - 1]  # the state position of the n-th live token
        self._live[last + 1 :] = [False] * (len(self._live) - last - 1)
        del self.cached_keys[n:]
        if self.holes > HOLE_LIMIT:
            self.compact()

    def compact(self) -> None:
        """Copy the live positions into a state without holes (nothing to do when there are none)."""
        if not self.holes:
            return
        import openvino as ov

        live = np.flatnonzero(self._live)
        for state in self.request.query_state():  # [batch, kv_heads, seq, head_dim]
            state.state = ov.Tensor(np.ascontiguousarray(state.state.data[:, :, live]))
        self._live = [True] * len(live)

    def forward(self, embeds: np.ndarray, position_ids: np.ndarray, keys: Sequence[Hashable]) -> np.ndarray:
        """Run `embeds` (positions with `keys`) after the cached ones; return the last position's logits."""
        if self.holes and embeds.shape[1] > COMPACT_PROMPT:
            self.compact()
        for start in range(0, embeds.shape[1], PREFILL_CHUNK):
            end = min(start + PREFILL_CHUNK, embeds.shape[1])
            self._live.extend([True] * (end - start))
            self.request.infer(
                {
                    "inputs_embeds": embeds[:, start:end],
                    "attention_mask": np.asarray(self._live, np.int64).reshape(1, -1),
                    "position_ids": position_ids[..., start:end],  # [1, n], or [3, 1, n] for M-RoPE
                    "beam_idx": self._batch,
                }
            )
        self.cached_keys.extend(keys)
        return self.request.get_tensor("logits").data[0, -1]


def run_generation(decoder: StatefulDecoder, req: GenerationRequest, stats: GenerationStats) -> Iterator[int]:
    """Prefill the prompt (reusing the cached prefix), then yield new token ids one by one."""
    started = time.perf_counter()
    ids = [int(i) for i in req.input_ids]
    keys = list(req.cache_keys) if req.cache_keys is not None else ids
    reuse = req.safe_prefix(decoder.common_prefix(keys))
    decoder.keep(reuse)
    stats.prompt_tokens, stats.reused_tokens = len(ids), reuse
    rng = np.random.default_rng(req.seed)
    if req.streamer is not None:
        req.streamer.put(np.asarray([ids], dtype=np.int64))
    generated: list[int] = []
    try:
        embeds = req.embed_prompt(reuse)
        stats.embed_s = time.perf_counter() - started
        logits = decoder.forward(embeds, req.positions(reuse, len(ids) - reuse), keys[reuse:])
        stats.prefill_s = time.perf_counter() - started
        decode_started = time.perf_counter()
        while len(generated) < req.max_new_tokens:
            if req.cancel is not None and req.cancel.is_set():
                stats.cancelled = True
                break
            token = next_token(logits, ids + generated, req.sampling, rng)
            generated.append(token)
            if len(generated) == 1:
                stats.first_token_s = time.perf_counter() - started
                decode_started = time.perf_counter()
            if req.streamer is not None:
                req.streamer.put(np.asarray([token], dtype=np.int64))
            if req.on_token is not None:
                req.on_token(token)
            yield token
            if token in req.stop_ids:
                stats.stopped_on = token
                break
            if len(generated) == req.max_new_tokens:
                break
            if req.cancel is not None and req.cancel.is_set():  # set by on_token: skip the step it made useless
                stats.cancelled = True
                break
            position = len(ids) + len(generated) - 1
            logits = decoder.forward(req.embed_tokens([token]), req.positions(position, 1), [token])
        stats.decode_s = time.perf_counter() - decode_started
        stats.new_tokens = len(generated)
    finally:
        if req.streamer is not None:
            req.streamer.end()
