"""Render a checkpoint's chat template exactly as transformers' ``apply_chat_template(tokenize=False)`` does.

Same Jinja environment (sandboxed, immutable, ``trim_blocks`` and ``lstrip_blocks``, loop controls, a
``{% generation %}`` tag), the same helpers (``raise_exception``, ``strftime_now``, a JSON ``tojson`` that
does not escape HTML, ``dict``, an underscore-safe ``namespace``), and the same message clean-up: keys whose
value is None are dropped, OpenAI ``image_url`` parts become ``image`` parts, and non-JSON values (a PIL
image, an array) reach the template only as an inert ``<TypeName>`` placeholder.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .errors import PreprocessError

log = logging.getLogger(__name__)

Message = Mapping[str, Any]


def _raise_exception(message: str) -> None:
    import jinja2

    raise jinja2.exceptions.TemplateError(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators=None, sort_keys=False):
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


class _TemplateDict:
    """``dict(...)`` inside templates, without exposing the dict type itself."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict:
        return dict(*args, **kwargs)

    def fromkeys(self, *args: Any, **kwargs: Any) -> dict:
        return dict.fromkeys(*args, **kwargs)


@lru_cache(maxsize=8)
def compile_template(source: str) -> Any:
    """Compile a chat template once; returns a `jinja2.Template`."""
    import jinja2
    import jinja2.ext
    import jinja2.nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationTag(jinja2.ext.Extension):
        """``{% generation %}...{% endgeneration %}`` marks assistant text for training masks; render the body."""

        tags = frozenset({"generation"})

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller: Any) -> str:
            return caller()

    class SafeNamespace(jinja2.utils.Namespace):
        """``namespace(...)`` that refuses underscore attributes (no way into Python internals)."""

        def __init__(*args: Any, **kwargs: Any) -> None:
            self, rest = args[0], args[1:]
            attrs = dict(*rest, **kwargs)
            for name in attrs:
                SafeNamespace._check(name)
            jinja2.utils.Namespace.__init__(self, attrs)

        def __setitem__(self, name: str, value: Any) -> None:
            SafeNamespace._check(name)
            jinja2.utils.Namespace.__setitem__(self, name, value)

        @staticmethod
        def _check(name: Any) -> None:
            if isinstance(name, str) and name.startswith("_"):
                raise jinja2.exceptions.SecurityError(f"chat templates cannot set {name!r} on a namespace")

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    env.globals["dict"] = _TemplateDict()
    env.globals["namespace"] = SafeNamespace
    try:
        return env.from_string(source)
    except jinja2.exceptions.TemplateSyntaxError as exc:
        raise PreprocessError(
            f"the model's chat template does not compile (line {exc.lineno}: {exc.message})"
        ) from None


def plain_data(value: Any) -> Any:
    """Rebuild `value` from JSON types; anything else becomes ``"<TypeName>"`` (templates only test presence)."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, Mapping):
        return {plain_data(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_data(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain_data(v) for v in value)
    if isinstance(value, np.generic):
        return plain_data(value.item())  # np.bool_(False) must stay falsy
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return f"<{type(value).__name__}>"


def normalize_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Drop None-valued keys and turn OpenAI ``image_url`` parts into ``image`` parts, as processors do."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, Mapping):
            raise PreprocessError(f"a chat message must be a dict with 'role' and 'content', got {message!r}")
        message = {k: v for k, v in message.items() if v is not None}
        content = message.get("content")
        if isinstance(content, list):
            parts = []
            for part in content:
                if isinstance(part, Mapping) and part.get("type") == "image_url" and "image_url" in part:
                    info = part["image_url"]
                    parts.append({"type": "image", "url": info.get("url", "") if isinstance(info, Mapping) else info})
                else:
                    parts.append(part)
            message["content"] = parts
        out.append(message)
    return out


class ChatTemplate:
    """A compiled chat template plus the special tokens transformers passes to it."""

    def __init__(self, source: str, special_tokens: Mapping[str, str] | None = None) -> None:
        self.source = source
        self.special_tokens = dict(special_tokens or {})
        self._template = compile_template(source)

    @classmethod
    def from_dir(cls, model_dir: str | Path) -> ChatTemplate:
        """The template and special tokens of a model folder."""
        from .tokenizer import Tokenizer

        tokenizer = Tokenizer.from_dir(model_dir)
        return cls.for_tokenizer(tokenizer, model_dir)

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, model_dir: str | Path = "") -> ChatTemplate:
        if tokenizer.chat_template is None:
            raise PreprocessError(f"{model_dir or 'the model folder'} has no chat template; convert the model again")
        return cls(tokenizer.chat_template, tokenizer.special_tokens_map)

    def render(
        self,
        messages: Sequence[Message],
        *,
        add_generation_prompt: bool = True,
        tools: Sequence[Mapping[str, Any]] | None = None,
        documents: Sequence[Mapping[str, Any]] | None = None,
        **kwargs: Any,
    ) -> str:
        """The prompt text for `messages` (a list of ``{"role", "content"}`` dicts).

        Unlike transformers, `add_generation_prompt` defaults to True: the assistant always asks for a reply.
        """
        import jinja2

        chat = plain_data(normalize_messages(messages))
        variables = plain_data({**self.special_tokens, **kwargs})
        try:
            return self._template.render(
                messages=chat,
                tools=plain_data(list(tools) if tools is not None else None),
                documents=plain_data(list(documents) if documents is not None else None),
                add_generation_prompt=add_generation_prompt,
                **variables,
            )
        except jinja2.exceptions.TemplateError as exc:
            reason = " ".join(str(exc).split())
            raise PreprocessError(f"the chat template refused the conversation: {reason}") from None
