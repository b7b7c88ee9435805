"""OVQwen2AudioModel: Qwen2-Audio on OpenVINO, called like transformers' model (`generate(**inputs)`).

The encoder runs on each clip's real mel frames (plus the padding frames its edge
convolutions see), not on the processor's 30 s of padding: a 4 s question costs 4 s of
encoder work, with outputs equal to the padded run's valid ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from .audio_frames import encoder_input_frames, valid_audio_tokens
from .base import OVModelBase, as_numpy, single_row, token_runs
from .digest import content_digest
from .engine import GenerationRequest
from .transcript import (
    ASR_PROMPT,
    SAMPLE_RATE,
    Transcript,
    audio_prompt,
    guess_language,
    parse_transcript,
    split_clips,
    transcript_token_budget,
)


class OVQwen2AudioModel(OVModelBase):
    kind = "qwen2-audio"
    preprocessor_class = "Qwen2AudioPreprocessor"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.audio_token_id = int(self.config.get("audio_token_index", self.config.get("audio_token_id")))
        self._encoder_request = self._compiled["audio_encoder"].create_infer_request()
        self._projection_request = self._compiled["audio_projection"].create_infer_request()

    def encode_audio(self, features: np.ndarray, valid_frames: int) -> np.ndarray:
        """[tokens, hidden] language-model embeddings of one clip's log-mel features [128, frames]."""
        given = encoder_input_frames(valid_frames, features.shape[-1])
        states = self._encoder_request.infer({"input_features": features[None, :, :given]})[0]
        states = states[:, : valid_audio_tokens(valid_frames)]
        return self._projection_request.infer({"audio_features": states})[0][0].copy()

    def transcribe(self, audio: np.ndarray, max_new_tokens: int | None = None) -> Transcript:
        """What was said (16 kHz mono float32), with the detected language; greedy, any length.

        Each clip's token budget follows its length (`transcript_token_budget`) unless one is given.
        """
        texts, language = [], None
        for clip in split_clips(audio):
            limit = max_new_tokens or transcript_token_budget(len(clip) / SAMPLE_RATE)
            heard = self.transcribe_prompt(audio_prompt(self.preprocessor, [clip], ASR_PROMPT), limit)
            texts.append(heard.text)
            language = language or heard.language
        text = " ".join(t for t in texts if t).strip()
        return Transcript(text, language or guess_language(text))

    def transcribe_prompt(
        self,
        inputs: dict[str, Any],
        max_new_tokens: int = 200,
        keep_going: Callable[[str], bool] | None = None,
    ) -> Transcript:
        """The transcript answering a prompt that ends with the speech-recognition request (greedy).

        The prompt may hold a conversation before the clip: its KV cache is reused, and a
        voice-chat prompt on the same conversation and clip then reuses the clip's too.
        `keep_going(text_so_far)`, if given, is asked after each token; when it says no, the
        transcript stops there (e.g. it can no longer start with a wake phrase).
        """
        start = inputs["input_ids"].shape[1]
        options: dict[str, Any] = {}
        new: list[int] = []
        cancel = threading.Event()
        if keep_going is not None:

            def check(token: int) -> None:
                new.append(token)
                text, _ = parse_transcript(self.preprocessor.decode(new, skip_special_tokens=False))
                if not keep_going(text):
                    cancel.set()

            options = {"on_token": check, "cancel": cancel}
        out = self.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, **options)
        ids = out[0, start:].tolist()
        text, tag = parse_transcript(self.preprocessor.decode(ids, skip_special_tokens=False))
        return Transcript(text, tag or guess_language(text), tokens=len(ids), stopped_early=cancel.is_set())

    def _request(
        self,
        inputs: dict[str, Any],
        max_new_tokens: int,
        do_sample: bool | None,
        streamer: Any,
        options: dict[str, Any],
    ) -> GenerationRequest:
        ids = single_row(inputs.get("input_ids"))
        features = as_numpy(inputs.get("input_features"), np.float32)
        mask = as_numpy(inputs.get("feature_attention_mask"), np.int64)
        spans = token_runs(ids == self.audio_token_id)
        if spans and features is None:
            raise ValueError("the prompt has audio tokens but no input_features")
        if features is not None:
            features = features.reshape(-1, features.shape[-2], features.shape[-1])
            if len(spans) != len(features):
                raise ValueError(f"{len(spans)} audio placeholders for {len(features)} audio clips")
        valid = (
            [int(m.sum()) for m in mask.reshape(len(features), -1)]
            if mask is not None and features is not None
            else [f.shape[-1] for f in (features if features is not None else [])]
        )

        def embed_prompt(first: int) -> np.ndarray:
            embeds = self.embed_text(ids[first:])
            for k, (start, end) in enumerate(spans):
                if start < first:
                    continue  # already in the KV cache from an earlier turn: not encoded again
                audio = self.encode_audio(features[k], valid[k])
                if len(audio) != end - start:
                    raise ValueError(f"{end - start} audio placeholder tokens for {len(audio)} audio tokens")
                embeds[0, start - first : end - first] = audio
            return embeds

        def position_ids(start: int, count: int) -> np.ndarray:
            return np.arange(start, start + count, dtype=np.int64).reshape(1, count)

        media = [(span, content_digest(features[k][:, : valid[k]])) for k, span in enumerate(spans)]
        return self._make_request(ids, embed_prompt, position_ids, media, max_new_tokens, do_sample, streamer, options)
