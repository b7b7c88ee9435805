"""Model inputs from a prompt and its media: what transformers' Qwen2-VL / Qwen2-Audio processors return.

Each placeholder token in the rendered prompt is expanded to as many copies as the model will fill with
media embeddings (``<|image_pad|>`` -> grid.prod() / merge**2, ``<|AUDIO|>`` -> 25 per second), the text
is tokenized, and the arrays come back with the processor's keys, dtypes and shapes (``return_tensors="np"``).
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..audio_frames import valid_audio_tokens
from ..digest import content_digest
from .audio import AudioSettings, log_mel_features
from .chat import ChatTemplate, Message
from .config import processor_attributes
from .errors import PreprocessError
from .images import Backend, ImageSettings, preprocess_images
from .tokenizer import Tokenizer
from .video import VideoSettings, preprocess_videos, read_video

log = logging.getLogger(__name__)

IMAGE_TOKEN = "<|image_pad|>"
VIDEO_TOKEN = "<|video_pad|>"
AUDIO_TOKEN = "<|AUDIO|>"
# Clips whose features are kept: a conversation's history (4 turns) and the new clip, with room to spare.
FEATURE_CACHE_CLIPS = 8


def expand_placeholders(text: str, replacements: Mapping[str, Sequence[str]]) -> str:
    """Replace the i-th occurrence of each placeholder token by its i-th replacement, in text order."""
    active: dict[str, Iterator[str]] = {token: iter(items) for token, items in replacements.items() if items}
    if not active:
        return text
    pattern = re.compile("|".join(re.escape(token) for token in sorted(active, key=len, reverse=True)))

    def substitute(match: re.Match[str]) -> str:
        return next(active[match.group(0)])

    return pattern.sub(substitute, text)


def _one_prompt(text: str | Sequence[str]) -> str:
    """The prompt; a one-element list (as processors are often called) is accepted too."""
    if isinstance(text, str):
        return text
    if isinstance(text, Sequence) and len(text) == 1 and isinstance(text[0], str):
        return text[0]
    raise PreprocessError("give one prompt string at a time (batches are not supported)")


def _check_count(text: str, token: str, given: int, what: str) -> None:
    found = text.count(token)
    if found != given:
        raise PreprocessError(f"the prompt has {found} {token} placeholder(s) but {given} {what} were given")


class _Base:
    """Tokenizer and chat template shared by both models."""

    def __init__(self, tokenizer: Tokenizer, template: ChatTemplate | None) -> None:
        self.tokenizer = tokenizer
        self.template = template

    def apply_chat_template(
        self, messages: Sequence[Message], add_generation_prompt: bool = True, **kwargs: Any
    ) -> str:
        """The prompt text, as ``processor.apply_chat_template(messages, tokenize=False, ...)``."""
        if self.template is None:
            raise PreprocessError("the model folder has no chat template; convert the model again")
        return self.template.render(messages, add_generation_prompt=add_generation_prompt, **kwargs)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)

    def _text_arrays(self, text: str) -> dict[str, np.ndarray]:
        ids = np.asarray([self.tokenizer.encode(text)], dtype=np.int64)
        return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


class Qwen2VLPreprocessor(_Base):
    """`Qwen2VLProcessor` without torch: ``__call__(text, images=..., videos=...)`` -> numpy arrays."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        template: ChatTemplate | None,
        image_settings: ImageSettings,
        video_settings: VideoSettings,
        image_token: str = IMAGE_TOKEN,
        video_token: str = VIDEO_TOKEN,
    ) -> None:
        super().__init__(tokenizer, template)
        self.image_settings = image_settings
        self.video_settings = video_settings
        self.image_token = image_token
        self.video_token = video_token
        self.image_token_id = tokenizer.require_id(image_token)
        self.video_token_id = tokenizer.require_id(video_token)

    @classmethod
    def from_dir(cls, model_dir: str | Path) -> Qwen2VLPreprocessor:
        tokenizer = Tokenizer.from_dir(model_dir)
        template = ChatTemplate.for_tokenizer(tokenizer, model_dir) if tokenizer.chat_template else None
        return cls(
            tokenizer,
            template,
            ImageSettings.from_dir(model_dir),
            VideoSettings.from_dir(model_dir),
            image_token=tokenizer.named_tokens.get("image_token", IMAGE_TOKEN),
            video_token=tokenizer.named_tokens.get("video_token", VIDEO_TOKEN),
        )

    def __call__(
        self,
        text: str | Sequence[str],
        images: Sequence[Any] | None = None,
        videos: Sequence[Any] | None = None,
        *,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        video_min_pixels: int | None = None,
        video_max_pixels: int | None = None,
        image_backend: Backend = "pil",
    ) -> dict[str, np.ndarray]:
        """``input_ids``, ``attention_mask``, ``mm_token_type_ids`` and the pixel arrays of the media given.

        `images` / `videos` are in placeholder order. An image is a PIL image, a uint8 array or a file path;
        a video is a `VideoClip`, a list of frames, a uint8 array [T, H, W, C] or a file path (read with
        `read_video`). `min_pixels` / `max_pixels` override the image limits (a screenshot cap), `video_*`
        the per-frame video limits.
        """
        text = _one_prompt(text)
        images = list(images or [])
        videos = list(videos or [])
        _check_count(text, self.image_token, len(images), "images")
        _check_count(text, self.video_token, len(videos), "videos")
        media: dict[str, np.ndarray] = {}
        replacements: dict[str, list[str]] = {}
        merge = self.image_settings.merge_size**2
        if images:
            media.update(
                preprocess_images(
                    images, self.image_settings, min_pixels=min_pixels, max_pixels=max_pixels, backend=image_backend
                )
            )
            replacements[self.image_token] = [
                self.image_token * int(np.prod(grid) // merge) for grid in media["image_grid_thw"]
            ]
        if videos:
            videos = [read_video(v, settings=self.video_settings) if isinstance(v, str | Path) else v for v in videos]
            media.update(
                preprocess_videos(videos, self.video_settings, min_pixels=video_min_pixels, max_pixels=video_max_pixels)
            )
            video_merge = self.video_settings.merge_size**2
            replacements[self.video_token] = [
                self.video_token * int(np.prod(grid) // video_merge) for grid in media["video_grid_thw"]
            ]
        out = self._text_arrays(expand_placeholders(text, replacements))
        ids = out["input_ids"]
        types = np.zeros_like(ids)
        types[ids == self.image_token_id] = 1
        types[ids == self.video_token_id] = 2
        out["mm_token_type_ids"] = types
        out.update(media)
        log.debug("Qwen2-VL prompt: %d tokens, %d images, %d videos", ids.shape[1], len(images), len(videos))
        return out


class Qwen2AudioPreprocessor(_Base):
    """`Qwen2AudioProcessor` without torch: ``__call__(text, audio=...)`` -> numpy arrays."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        template: ChatTemplate | None,
        audio_settings: AudioSettings,
        audio_token: str = AUDIO_TOKEN,
    ) -> None:
        super().__init__(tokenizer, template)
        self.audio_settings = audio_settings
        self.audio_token = audio_token
        self.audio_token_id = tokenizer.require_id(audio_token)
        # A conversation sends its earlier clips with every turn (and the service builds two prompts
        # per turn): their log-mel features are kept, by content, instead of being computed again.
        self._features: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def _features_of(self, clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = content_digest(np.asarray(clip, np.float32))
        if key in self._features:
            self._features.move_to_end(key)
            return self._features[key]
        pair = log_mel_features(clip, self.audio_settings)
        self._features[key] = pair
        while len(self._features) > FEATURE_CACHE_CLIPS:
            self._features.popitem(last=False)
        return pair

    @classmethod
    def from_dir(cls, model_dir: str | Path) -> Qwen2AudioPreprocessor:
        tokenizer = Tokenizer.from_dir(model_dir)
        template = ChatTemplate.for_tokenizer(tokenizer, model_dir) if tokenizer.chat_template else None
        attributes = processor_attributes(Path(model_dir))
        token = tokenizer.named_tokens.get("audio_token", attributes.get("audio_token", AUDIO_TOKEN))
        return cls(tokenizer, template, AudioSettings.from_dir(model_dir), audio_token=token)

    def __call__(
        self,
        text: str | Sequence[str],
        audio: np.ndarray | Sequence[np.ndarray] | None = None,
        *,
        sampling_rate: int | None = None,
    ) -> dict[str, np.ndarray]:
        """``input_ids``, ``attention_mask`` and, with audio, ``input_features`` / ``feature_attention_mask``.

        `audio` is one float32 mono clip or a list of them, at the feature extractor's rate (16 kHz).
        """
        text = _one_prompt(text)
        if sampling_rate is not None and sampling_rate != self.audio_settings.sampling_rate:
            raise PreprocessError(
                f"audio must be sampled at {self.audio_settings.sampling_rate} Hz, not {sampling_rate} Hz; "
                "read files with load_audio()"
            )
        clips = [] if audio is None else [audio] if isinstance(audio, np.ndarray) else list(audio)
        _check_count(text, self.audio_token, len(clips), "audio clips")
        media: dict[str, np.ndarray] = {}
        replacements: dict[str, list[str]] = {}
        if clips:
            pairs = [self._features_of(clip) for clip in clips]
            media["input_features"] = np.concatenate([features for features, _ in pairs], axis=0)
            media["feature_attention_mask"] = np.concatenate([mask for _, mask in pairs], axis=0)
            replacements[self.audio_token] = [
                self.audio_token * valid_audio_tokens(int(mask.sum())) for _, mask in pairs
            ]
        out = self._text_arrays(expand_placeholders(text, replacements))
        out.update(media)
        log.debug("Qwen2-Audio prompt: %d tokens, %d clips", out["input_ids"].shape[1], len(clips))
        return out
