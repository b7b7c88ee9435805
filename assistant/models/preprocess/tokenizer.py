"""The Qwen2 tokenizer from a model folder's tokenizer.json, with transformers' encode/decode semantics.

transformers' `Qwen2Tokenizer` is a thin layer over the `tokenizers` library: it rebuilds the same BPE
pipeline from tokenizer.json, marks every special token of tokenizer_config.json as special, encodes with
the backend and decodes with it (no clean-up of spaces for BPE). This module does the same without
importing transformers, which would import torch. A folder without tokenizer.json (the hub's
Qwen2-Audio-7B-Instruct ships only vocab.json and merges.txt) gets the pipeline `Qwen2Tokenizer` builds
around those two files, with the added tokens of tokenizer_config.json at their ids.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .config import (
    CHAT_TEMPLATE_FILE,
    LEGACY_CHAT_TEMPLATE_FILE,
    MERGES_FILE,
    TOKENIZER_CONFIG,
    TOKENIZER_FILE,
    VOCAB_FILE,
    read_json,
)
from .errors import PreprocessError

log = logging.getLogger(__name__)

# tokenizer_config.json keys of the named special tokens, in transformers' order.
SPECIAL_TOKEN_KEYS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")

# Qwen2's pre-tokenization pattern (transformers' `PRETOKENIZE_REGEX` in tokenization_qwen2.py), used when a
# folder has no tokenizer.json to take it from.
QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def _token_text(value: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or an AddedToken dict."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


class Tokenizer:
    """Encode and decode as transformers' tokenizer for the same folder does.

    `encode(text)` equals ``tokenizer(text)["input_ids"]``; `decode(ids)` equals
    ``tokenizer.decode(ids, skip_special_tokens=True)``.
    """

    def __init__(self, backend: Any, config: Mapping[str, Any], chat_template: str | None = None) -> None:
        self._backend = backend
        self.config = dict(config)
        self.chat_template = chat_template
        self.special_tokens_map: dict[str, str] = {}
        for key in SPECIAL_TOKEN_KEYS:
            text = _token_text(self.config.get(key))
            if text is not None:
                self.special_tokens_map[key] = text
        extra = self.config.get("extra_special_tokens", self.config.get("additional_special_tokens")) or []
        # transformers 5 may name extra tokens ({"image_token": "<|image_pad|>"}); older files list them.
        self.named_tokens: dict[str, str] = {}
        if isinstance(extra, dict):
            self.named_tokens = {k: t for k, v in extra.items() if (t := _token_text(v)) is not None}
            extra_tokens = list(self.named_tokens.values())
        else:
            extra_tokens = [t for v in extra if (t := _token_text(v)) is not None]
        self.all_special_tokens = list(dict.fromkeys([*self.special_tokens_map.values(), *extra_tokens]))
        self._register_special_tokens(self.all_special_tokens)
        special = {token.content for token in backend.get_added_tokens_decoder().values() if token.special}
        special.update(self.all_special_tokens)
        self.all_special_ids = frozenset(i for t in special if (i := backend.token_to_id(t)) is not None)

    def _register_special_tokens(self, tokens: list[str]) -> None:
        """Add the config's special tokens as special tokens of the backend, as transformers does on load."""
        from tokenizers import AddedToken

        known = {token.content: token for token in self._backend.get_added_tokens_decoder().values()}
        missing = [AddedToken(t, special=True, normalized=False) for t in tokens if t not in known]
        if missing:
            log.debug("adding %d special tokens named by %s", len(missing), TOKENIZER_CONFIG)
            self._backend.add_special_tokens(missing)

    @classmethod
    def from_dir(cls, model_dir: str | Path) -> Tokenizer:
        """Load tokenizer.json (or vocab.json + merges.txt), tokenizer_config.json and the chat template."""
        from tokenizers import Tokenizer as Backend

        model_dir = Path(model_dir)
        config_path = model_dir / TOKENIZER_CONFIG
        config = read_json(config_path) if config_path.is_file() else {}
        path = model_dir / TOKENIZER_FILE
        if path.is_file():
            try:
                backend = Backend.from_file(str(path))
            except Exception as exc:  # the Rust side raises plain Exceptions for a broken file
                raise PreprocessError(f"cannot load {path} ({exc}); convert the model again") from None
        elif (model_dir / VOCAB_FILE).is_file() and (model_dir / MERGES_FILE).is_file():
            backend = bpe_backend(model_dir, config)
        else:
            raise PreprocessError(f"{path} is missing; convert the model again with `assistant convert`")
        return cls(backend, config, load_chat_template(model_dir, config))

    # ------------------------------------------------------------------------------------------ tokens

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of `text`; special token strings in the text become their single ids."""
        return list(self._backend.encode(text, add_special_tokens=add_special_tokens).ids)

    def decode(self, ids: Iterable[int] | np.ndarray, skip_special_tokens: bool = True) -> str:
        """Text of `ids` (a list or a 1-D array); a cut UTF-8 character becomes U+FFFD, as in transformers."""
        ids = [int(i) for i in np.asarray(ids).reshape(-1).tolist()]
        if skip_special_tokens:
            ids = [i for i in ids if i not in self.all_special_ids]
        return self._backend.decode(ids, skip_special_tokens=False)

    def token_to_id(self, token: str) -> int | None:
        return self._backend.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self._backend.id_to_token(int(token_id))

    def require_id(self, token: str) -> int:
        """The id of a token the model cannot work without (e.g. ``<|image_pad|>``)."""
        token_id = self.token_to_id(token)
        if token_id is None:
            raise PreprocessError(f"the tokenizer has no {token} token; is this the right model folder?")
        return token_id

    def __len__(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    @property
    def eos_token(self) -> str | None:
        return self.special_tokens_map.get("eos_token")

    @property
    def eos_token_id(self) -> int | None:
        return None if self.eos_token is None else self.token_to_id(self.eos_token)

    @property
    def pad_token(self) -> str | None:
        return self.special_tokens_map.get("pad_token")

    @property
    def pad_token_id(self) -> int | None:
        return None if self.pad_token is None else self.token_to_id(self.pad_token)

    def stream_decoder(self, skip_special_tokens: bool = True) -> StreamDecoder:
        return StreamDecoder(self, skip_special_tokens=skip_special_tokens)


def bpe_backend(model_dir: Path, config: Mapping[str, Any]) -> Any:
    """The byte-level BPE `Qwen2Tokenizer` builds from vocab.json and merges.txt, plus the config's added tokens.

    Added tokens (``added_tokens_decoder``) take the ids right after the vocabulary, in id order, as in the real
    files; a gap or an overlap there would shift every special token, so it is an error.
    """
    from tokenizers import AddedToken, Regex, decoders, normalizers, pre_tokenizers
    from tokenizers import Tokenizer as Backend
    from tokenizers.models import BPE

    try:
        vocab, merges = BPE.read_file(str(model_dir / VOCAB_FILE), str(model_dir / MERGES_FILE))
    except Exception as exc:  # the Rust side raises plain Exceptions for a broken file
        raise PreprocessError(f"cannot read {model_dir / VOCAB_FILE} and {MERGES_FILE} ({exc})") from None
    backend = Backend(BPE(vocab, merges, unk_token=None, fuse_unk=False, byte_fallback=False))
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=bool(config.get("add_prefix_space")), use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    added = config.get("added_tokens_decoder") or {}
    for token_id, spec in sorted(((int(k), v) for k, v in added.items()), key=lambda item: item[0]):
        token = AddedToken(
            spec["content"],
            single_word=bool(spec.get("single_word", False)),
            lstrip=bool(spec.get("lstrip", False)),
            rstrip=bool(spec.get("rstrip", False)),
            normalized=bool(spec.get("normalized", not spec.get("special", False))),
            special=bool(spec.get("special", False)),
        )
        backend.add_tokens([token])
        if backend.token_to_id(token.content) != token_id:
            raise PreprocessError(
                f"{TOKENIZER_CONFIG} puts {token.content} at id {token_id}, which does not follow the vocabulary "
                f"of {VOCAB_FILE}; is this the right model folder?"
            )
    log.debug("built the tokenizer from %s and %s (%d added tokens)", VOCAB_FILE, MERGES_FILE, len(added))
    return backend


def load_chat_template(model_dir: Path, tokenizer_config: Mapping[str, Any] | None = None) -> str | None:
    """The chat template: chat_template.jinja, else chat_template.json, else one in a config file."""
    model_dir = Path(model_dir)
    jinja_file = model_dir / CHAT_TEMPLATE_FILE
    if jinja_file.is_file():
        return jinja_file.read_text(encoding="utf-8")
    legacy = model_dir / LEGACY_CHAT_TEMPLATE_FILE
    if legacy.is_file() and isinstance(template := read_json(legacy).get("chat_template"), str):
        return template
    candidates: list[Mapping[str, Any]] = [tokenizer_config or {}]
    for name in ("processor_config.json", "preprocessor_config.json"):
        if (model_dir / name).is_file():
            candidates.append(read_json(model_dir / name))
    for config in candidates:
        template = config.get("chat_template")
        if isinstance(template, str):
            return template
        if isinstance(template, list):  # named templates: use the default one
            named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
            if isinstance(named.get("default"), str):
                return named["default"]
    return None


# ------------------------------------------------------------------------------------------- streaming


def _is_cjk(codepoint: int) -> bool:
    """CJK ideographs: text in these scripts has no spaces, so each character can be printed at once."""
    return (
        0x4E00 <= codepoint <= 0x9FFF
        or 0x3400 <= codepoint <= 0x4DBF
        or 0x20000 <= codepoint <= 0x2A6DF
        or 0x2A700 <= codepoint <= 0x2B73F
        or 0x2B740 <= codepoint <= 0x2B81F
        or 0x2B820 <= codepoint <= 0x2CEAF
        or 0xF900 <= codepoint <= 0xFAFF
        or 0x2F800 <= codepoint <= 0x2FA1F
    )


class StreamDecoder:
    """Turn ids arriving one by one into printable text increments, as transformers' TextStreamer does.

    Decoding a token on its own would cut multi-byte characters (a Chinese character is often two or three
    byte-level tokens). So the ids since the last line are decoded together and only the stable part is
    released: everything when the text ends a line or with a CJK character, or when all the new characters
    are letters, marks, digits or spaces; otherwise (symbols, U+FFFD of a cut character) up to the last
    space. `end()` releases the rest. Joined, the increments equal ``decode(all_ids)``.

    `eager` also releases ASCII punctuation at once (it is never part of a cut character): the service
    speaks a sentence as soon as its period arrives instead of one token later. The pieces then differ
    from TextStreamer's, their join does not.
    """

    def __init__(self, tokenizer: Tokenizer, skip_special_tokens: bool = True, eager: bool = False) -> None:
        self._tokenizer = tokenizer
        self._skip = skip_special_tokens
        self._eager = eager
        self._ids: list[int] = []
        self._printed = 0

    def _decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=self._skip)

    def put(self, ids: int | Iterable[int] | np.ndarray) -> str:
        """Add one id or several (an int, a list, an array of shape [n] or [1, n]); return the new printable text."""
        self._ids.extend(int(i) for i in np.asarray(ids).reshape(-1).tolist())
        text = self._decode(self._ids)
        new = text[self._printed :]
        if text.endswith("\n"):
            # keep the last token as context, so a leading space of the next line decodes as it should
            self._ids = self._ids[-1:]
            self._printed = len(self._decode(self._ids))
            return new
        ends_cjk = bool(text) and _is_cjk(ord(text[-1]))
        out = new if ends_cjk or all(self._releasable(c) for c in new) else text[self._printed : text.rfind(" ") + 1]
        self._printed += len(out)
        return out

    def _releasable(self, c: str) -> bool:
        if c.isspace():
            return True
        category = unicodedata.category(c)[0]
        return category in "LMN" or (self._eager and category == "P" and c.isascii())

    def end(self) -> str:
        """The text still held back; the decoder is then ready for a new stream."""
        out = self._decode(self._ids)[self._printed :] if self._ids else ""
        self._ids, self._printed = [], 0
        return out
