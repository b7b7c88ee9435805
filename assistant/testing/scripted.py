"""Qwen2-Audio and Qwen2-VL checkpoints whose words are fixed in advance: tiny for tests, full-size for benchmarks.

End-to-end tests and latency benchmarks need a real model run that says something chosen: random weights
answer gibberish (tiny ones) or babble to the token limit (full-size ones), so neither can make the assistant
hear a question, follow it to a route and answer one sentence. These builders write the same folders as the
random ones (the real architectures, configs, tokenizer, processor, bf16 safetensors; full-size ones every
weight matrix of its real size, so compute and memory traffic are the real models'), then set a few weights
by hand, without training, so that greedy decoding of a prompt that ends with the generation prompt
``<|im_start|>assistant\\n`` says a chosen text and then ends the turn with ``<|im_end|>``:

- every decoder layer adds nothing to the residual stream (``self_attn.o_proj`` and ``mlp.down_proj`` are
  zero), so the final hidden state at a position is the final RMSNorm of that position's token embedding;
- the chain's tokens (the prompt's last token, then the texts' tokens) get orthonormal embedding rows, one
  hidden dimension each, and the final norm's weight is one, so that state is ``sqrt(hidden)`` times a basis
  vector;
- the output head is zero except one entry per chain token, in the row of the token that must follow it, so
  the next token's logit is `LOGIT` and every other logit is 0: greedy decoding walks the chain prompt end ->
  first text token -> ... -> last text token -> ``<|im_end|>``. A margin of 32 also survives the repetition
  penalty and sampling at the usual temperatures.

A Qwen2-Audio model may hear one text and answer another (`answer=`): then one attention head of the first
layer looks for the speech-recognition request's first word (``Det`` of "Detect the language and recognize
the speech:", a token no other prompt holds). Its query is a constant and its key is non-zero only on that
token, both on the slowest rotary pair (so the score does not depend on the distance), so every position
after the request attends to it and gets a flag dimension set to 1; elsewhere the head attends to nothing
that carries a value. The head's row of the transcript's first token reads the prompt end's dimension and
the flag, 0.75 of a logit unit each: with the flag the transcript's first token wins (1.06 against 0.71 of
`LOGIT`), without it the answer's (1 against 0.75), and at later transcript tokens their follower still beats
it (0.71 against 0.53). The transcript then is what the service's transcription call hears, and the answer
what its voice-chat call (the same clip, no request text) says.

The model is a bigram table, so all tokens of the texts and the prompt's last token must differ (and there
can be at most ``hidden_size - 2`` of them); `script_tokens` raises ValueError for texts that cannot be
scripted and says why. The encoders keep their random weights: they run as usual, they just cannot change
what is said.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.testing.checkpoints import (
    DEFAULT_SEED,
    Size,
    build_qwen2audio,
    build_qwen2vl,
    padded_vocab_size,
    qwen2audio_config,
    qwen2audio_tokenizer,
    qwen2vl_config,
    qwen2vl_tokenizer,
)
from assistant.testing.tokenizer import IM_END, SPECIAL_TOKENS, special_token_ids

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

DEFAULT_SCRIPT = "what is on my screen"  # routes to the screen model: it holds the phrase "on my screen"

# The logit of the scripted next token; every other logit is 0 (see the module docstring for the margins).
LOGIT = 32.0
# The speech-recognition request's first token, which only the transcription prompt holds.
ASR_MARKER = "Det"
# The flag head's attention score on the marker: far above log(prompt length), so it takes all the weight.
MARKER_SCORE = 40.0
# The transcript's first token reads the prompt end and the flag with this share of a follower's weight.
GATE_SHARE = 0.75

LANGUAGE_MODEL = "model.language_model."


@dataclass(frozen=True)
class Script:
    """What a scripted model says, as chains of token ids (each followed by ``<|im_end|>``)."""

    prompt_end: int
    heard: list[int]  # the transcript (or the only text)
    answer: list[int] | None  # the voice-chat answer, when it differs from the transcript
    im_end: int
    marker: int | None  # the speech-recognition request's token the flag head looks for

    @property
    def tokens(self) -> list[int]:
        """Every chain token, in the order of the hidden dimensions they are given."""
        return [self.prompt_end, *self.heard, *(self.answer or [])]


def prompt_end_token(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id every generation prompt ends with: the last token of ``<|im_start|>assistant\\n`` ("\\n")."""
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hello"}], add_generation_prompt=True, tokenize=True, return_dict=False
    )
    return int(ids[-1])


def _text_tokens(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    ids = [int(i) for i in tokenizer.encode(text, add_special_tokens=False)]
    specials = set(tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)))
    if any(i in specials for i in ids):
        raise ValueError(f"cannot script {text!r}: it contains special tokens such as <|im_end|>")
    if tokenizer.decode(ids) != text:
        raise ValueError(f"cannot script {text!r}: the tokenizer does not give it back unchanged")
    return ids


def script_tokens(
    tokenizer: PreTrainedTokenizerBase, text: str, hidden_size: int, answer: str | None = None, reserved: int = 0
) -> list[int]:
    """The chain the model walks: the prompt's last token, then `text`'s tokens (then `answer`'s, if given).

    Raises ValueError when the texts cannot be said by a bigram model with `hidden_size`-wide states of which
    `reserved` dimensions are taken (the flag head's).
    """
    texts = [text] if answer is None else [text, answer]
    parts = [_text_tokens(tokenizer, t) for t in texts]
    chain = [prompt_end_token(tokenizer)] + [i for part in parts for i in part]
    label = " and ".join(repr(t) for t in texts)
    if len(chain) > hidden_size - reserved:
        raise ValueError(
            f"cannot script {label}: it is {len(chain) - 1} tokens, at most {hidden_size - reserved - 1} fit a "
            f"{hidden_size}-wide model"
        )
    seen: dict[int, int] = {}
    for position, token in enumerate(chain):
        if token in seen:
            piece = tokenizer.decode([token])
            where = "the prompt's last token" if seen[token] == 0 else f"token {seen[token]}"
            raise ValueError(
                f"cannot script {label}: token {position} ({piece!r}, id {token}) repeats {where}; the scripted "
                "model only looks at the last token, so every token of the texts (and the prompt's final newline) "
                "must differ: rephrase it"
            )
        seen[token] = position
    return chain


def make_script(tokenizer: PreTrainedTokenizerBase, text: str, hidden_size: int, answer: str | None = None) -> Script:
    """The chains for `text` (and `answer`), checked as `script_tokens` does."""
    reserved = 0 if answer is None else 2  # the flag head's marker and flag dimensions
    chain = script_tokens(tokenizer, text, hidden_size, answer, reserved)
    heard = chain[1 : 1 + len(_text_tokens(tokenizer, text))]
    marker = None
    if answer is not None:
        marker = int(tokenizer.convert_tokens_to_ids(ASR_MARKER))
        if marker in chain:
            raise ValueError(f"cannot script {text!r} and {answer!r}: they hold {ASR_MARKER!r}, the request's marker")
    return Script(
        prompt_end=chain[0],
        heard=heard,
        answer=chain[1 + len(heard) :] if answer is not None else None,
        im_end=int(tokenizer.convert_tokens_to_ids(IM_END)),
        marker=marker,
    )


class ScriptEdit:
    """`edit(name, tensor)` for the checkpoint builders: sets the module docstring's weights, tensor by tensor.

    Works on the model's own parameter names, one tensor at a time, so the same edit serves the in-memory
    tiny build and the shard-by-shard full-size one.
    """

    def __init__(self, script: Script, hidden: int, head_dim: int):
        self.script = script
        self.hidden = hidden
        self.head_dim = head_dim
        self.dims = {token: dim for dim, token in enumerate(script.tokens)}
        self.marker_dim, self.flag_dim = hidden - 1, hidden - 2
        self.weight = LOGIT / math.sqrt(hidden)  # RMSNorm makes a basis vector sqrt(hidden) long

    def __call__(self, name: str, tensor: torch.Tensor) -> None:
        if not name.startswith(LANGUAGE_MODEL):
            if name == "lm_head.weight":
                self._head(tensor)
            elif name.startswith("model.multi_modal_projector.") and self.script.marker is not None:
                tensor[[self.marker_dim, self.flag_dim]] = 0  # audio positions carry no marker
            return
        local = name[len(LANGUAGE_MODEL) :]
        if local.endswith(("self_attn.o_proj.weight", "mlp.down_proj.weight")):
            tensor.zero_()
        if local == "norm.weight":
            tensor.fill_(1.0)
        elif local == "embed_tokens.weight":
            self._embedding(tensor)
        elif self.script.marker is not None and local.startswith("layers.0.self_attn."):
            self._flag_head(local.removeprefix("layers.0.self_attn."), tensor)

    def _embedding(self, table: torch.Tensor) -> None:
        for token, dim in self.dims.items():
            table[token].zero_()
            table[token, dim] = 1.0
        if self.script.marker is not None:
            table[:, [self.marker_dim, self.flag_dim]] = 0
            table[self.script.marker].zero_()
            table[self.script.marker, self.marker_dim] = 1.0

    def _head(self, head: torch.Tensor) -> None:
        s = self.script
        head.zero_()
        chains = [s.heard] if s.answer is None else [s.heard, s.answer]
        for chain in chains:
            for token, follower in zip(chain, [*chain[1:], s.im_end], strict=True):
                head[follower, self.dims[token]] = self.weight
        end = self.dims[s.prompt_end]
        if s.answer is None:
            if s.heard:
                head[s.heard[0], end] = self.weight
            else:
                head[s.im_end, end] = self.weight
            return
        first_heard = s.heard[0] if s.heard else s.im_end
        first_answer = s.answer[0] if s.answer else s.im_end
        head[first_answer, end] = self.weight
        head[first_heard, end] = GATE_SHARE * self.weight
        head[first_heard, self.flag_dim] = GATE_SHARE * self.weight

    def _flag_head(self, part: str, tensor: torch.Tensor) -> None:
        """Query head 0 and key/value head 0 of layer 0 (the docstring's flag head)."""
        d = self.head_dim
        slow = d // 2 - 1  # the slowest rotary pair is (slow, slow + d/2)
        if part in ("q_proj.weight", "k_proj.weight", "v_proj.weight", "q_proj.bias", "k_proj.bias", "v_proj.bias"):
            tensor[:d] = 0
        if part == "q_proj.bias":
            tensor[slow] = 1.0
        elif part == "k_proj.weight":
            # score = 1 * k * sqrt(hidden) / sqrt(head_dim): the normed marker embedding is sqrt(hidden) long
            tensor[slow, self.marker_dim] = MARKER_SCORE * math.sqrt(d) / math.sqrt(self.hidden)
        elif part == "v_proj.weight":
            tensor[0, self.marker_dim] = 1.0
        elif part == "o_proj.weight":
            tensor[self.flag_dim, 0] = 1.0 / math.sqrt(self.hidden)  # the value is sqrt(hidden): flag = 1


def _streamed(size: Size) -> bool:
    return size == "full"  # a full-size model is written shard by shard; a tiny one in one piece


def build_scripted_qwen2audio(
    out_dir: str | Path,
    text: str = DEFAULT_SCRIPT,
    seed: int = DEFAULT_SEED,
    *,
    answer: str | None = None,
    size: Size = "tiny",
) -> Path:
    """Write a Qwen2-Audio checkpoint that hears `text` and answers `answer` (or says `text` to every prompt).

    `size="full"` gives the Qwen2-Audio-7B shapes (16.8 GB on disk, written shard by shard: ~3 GB of RAM).
    Raises ValueError before writing anything if the texts cannot be scripted (a token that repeats, too many
    tokens, special tokens, text the tokenizer changes).
    """
    tokenizer = qwen2audio_tokenizer()
    vocab = padded_vocab_size(len(tokenizer)) if size == "tiny" else None
    config = qwen2audio_config(size, special_token_ids(tokenizer), vocab).text_config
    script = make_script(tokenizer, text, config.hidden_size, answer)
    edit = ScriptEdit(script, config.hidden_size, config.hidden_size // config.num_attention_heads)
    return build_qwen2audio(out_dir, size, seed, edit=edit, streamed=_streamed(size))


def build_scripted_qwen2vl(out_dir: str | Path, answer: str, seed: int = DEFAULT_SEED, *, size: Size = "tiny") -> Path:
    """Write a Qwen2-VL checkpoint that answers every prompt (any image or video) with `answer` (greedy).

    Its output head is its own (``tie_word_embeddings`` false, unlike the real 2B, whose head is its
    embedding table): a bigram table needs the two to differ. The converted language model is the same size
    either way (the head is a separate INT8 matrix in the IR). `size="full"` gives the Qwen2-VL-2B shapes.
    """
    tokenizer = qwen2vl_tokenizer()
    vocab = padded_vocab_size(len(tokenizer)) if size == "tiny" else None
    config = qwen2vl_config(size, special_token_ids(tokenizer), vocab).text_config
    script = make_script(tokenizer, answer, config.hidden_size)
    edit = ScriptEdit(script, config.hidden_size, config.hidden_size // config.num_attention_heads)
    return build_qwen2vl(out_dir, size, seed, edit=edit, tied=False, streamed=_streamed(size))
