"""A tiny Qwen2-Audio checkpoint whose answer is fixed in advance: it says a given text, whatever it hears.

End-to-end tests need a deterministic transcript from a real model run. The random tiny checkpoints
(`build_tiny_qwen2audio`) answer random text, so a test cannot make the assistant hear, say, a question about
the screen and follow it to the screen route. This builder writes the same folder as the tiny one (the real
Qwen2-Audio architecture, config, tokenizer, processor, bf16 safetensors, through `build_qwen2audio`), then sets
a few weights by hand, without training, so that greedy decoding of any prompt that ends with the generation
prompt ``<|im_start|>assistant\\n`` says `text` and then ends the turn with ``<|im_end|>``, whatever the audio,
the question or the conversation before it:

- every decoder layer adds nothing to the residual stream (``self_attn.o_proj`` and ``mlp.down_proj`` are zero),
  so the final hidden state at a position is the final RMSNorm of that position's token embedding alone;
- the tokens of the chain (the prompt's last token, then the text's tokens) get orthonormal embedding rows,
  one hidden dimension each, and the final norm's weight is one, so that state is ``sqrt(hidden)`` times a
  basis vector;
- the output head is zero except one entry per chain token, in the row of the token that must follow it, so
  the next token's logit is `LOGIT` and every other logit is exactly 0: greedy decoding walks the chain
  prompt end -> first text token -> ... -> last text token -> ``<|im_end|>``. A margin of 32 also survives
  the repetition penalty and sampling at the usual temperatures, and every hand-set weight is exact in bf16.

The model is thus a bigram table, so the text's tokens and the prompt's last token must all differ (and there
can be at most ``hidden_size - 1`` of them); `script_tokens` raises ValueError for a text that cannot be
scripted and says why. An empty text is allowed (the model answers nothing). The audio encoder keeps its
random weights: it runs as usual, it just cannot change the answer.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.testing.checkpoints import (
    DEFAULT_SEED,
    build_qwen2audio,
    padded_vocab_size,
    qwen2audio_config,
    qwen2audio_tokenizer,
)
from assistant.testing.tokenizer import IM_END, SPECIAL_TOKENS, special_token_ids

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

DEFAULT_SCRIPT = "what is on my screen"  # routes to the screen model: it holds the phrase "on my screen"

# The logit of the scripted next token; every other logit is 0.
LOGIT = 32.0


def prompt_end_token(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id every generation prompt ends with: the last token of ``<|im_start|>assistant\\n`` ("\\n")."""
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hello"}], add_generation_prompt=True, tokenize=True, return_dict=False
    )
    return int(ids[-1])


def script_tokens(tokenizer: PreTrainedTokenizerBase, text: str, hidden_size: int) -> list[int]:
    """The chain the model walks: the prompt's last token, then `text`'s tokens (``<|im_end|>`` follows).

    Raises ValueError when `text` cannot be said by a bigram model with `hidden_size`-wide states.
    """
    ids = [int(i) for i in tokenizer.encode(text, add_special_tokens=False)]
    specials = set(tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)))
    if any(i in specials for i in ids):
        raise ValueError(f"cannot script {text!r}: it contains special tokens such as <|im_end|>")
    if tokenizer.decode(ids) != text:
        raise ValueError(f"cannot script {text!r}: the tokenizer does not give it back unchanged")
    end = prompt_end_token(tokenizer)
    chain = [end, *ids]
    if len(chain) > hidden_size:
        raise ValueError(
            f"cannot script {text!r}: it is {len(ids)} tokens, at most {hidden_size - 1} fit a {hidden_size}-wide model"
        )
    seen: dict[int, int] = {}
    for position, token in enumerate(chain):
        if token in seen:
            piece = tokenizer.decode([token])
            where = "the prompt's last token" if seen[token] == 0 else f"token {seen[token]}"
            raise ValueError(
                f"cannot script {text!r}: token {position} ({piece!r}, id {token}) repeats {where}; the scripted model "
                "only looks at the last token, so every token of the text (and the prompt's final newline) must "
                "differ: rephrase it"
            )
        seen[token] = position
    return chain


def _set_script(model: Any, chain: list[int], im_end: int) -> None:
    """Hand-set the weights described in the module docstring (called under ``torch.no_grad()``)."""
    decoder = model.get_decoder()
    for layer in decoder.layers:
        layer.self_attn.o_proj.weight.zero_()
        layer.mlp.down_proj.weight.zero_()
    decoder.norm.weight.fill_(1.0)
    embedding = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    if head.data_ptr() == embedding.data_ptr():
        raise RuntimeError("a scripted model needs an output head of its own (tie_word_embeddings=False)")
    hidden = embedding.shape[1]
    # RMSNorm turns a basis vector into sqrt(hidden) times itself (eps aside), whatever the embedding's scale.
    weight = LOGIT / math.sqrt(hidden)
    head.zero_()
    for dim, (token, follower) in enumerate(zip(chain, [*chain[1:], im_end], strict=True)):
        embedding[token].zero_()
        embedding[token, dim] = 1.0
        head[follower, dim] = weight


def build_scripted_qwen2audio(out_dir: str | Path, text: str = DEFAULT_SCRIPT, seed: int = DEFAULT_SEED) -> Path:
    """Write a tiny Qwen2-Audio checkpoint that answers every prompt with `text`, then ``<|im_end|>`` (greedy).

    The folder is the tiny checkpoint's (`build_tiny_qwen2audio`) with some weights set by hand; see the module
    docstring. Raises ValueError before writing anything if `text` cannot be scripted (a token that repeats,
    too many tokens, special tokens, text the tokenizer changes).
    """
    tokenizer = qwen2audio_tokenizer()
    config = qwen2audio_config("tiny", special_token_ids(tokenizer), padded_vocab_size(len(tokenizer)))
    hidden = config.text_config.hidden_size
    chain = script_tokens(tokenizer, text, hidden)
    im_end = int(tokenizer.convert_tokens_to_ids(IM_END))
    return build_qwen2audio(out_dir, "tiny", seed, edit_weights=lambda model: _set_script(model, chain, im_end))
