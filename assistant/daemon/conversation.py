"""The voice conversation so far, and the two prompts made from it for a new utterance.

The transcription prompt and the voice-chat prompt share everything up to and including
the new clip: the history, then the user turn's "Audio N: <audio>" part. Asked one after
the other on the same model, the engine keeps that shared prefix in its KV cache, so the
clip is encoded and attended once, for the transcript, and the answer starts from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..models.transcript import ASR_PROMPT, CLIP_SECONDS, SAMPLE_RATE

HISTORY_TURNS = 4
# At most this much speech is kept for follow-ups: four 30 s monologues would hold ~3200 positions of the
# 7B's KV cache (0.85 GiB of it) and be run again in full once the oldest turn is dropped.
HISTORY_AUDIO_S = 60


@dataclass
class Conversation:
    """Voice-chat turns kept for follow-up questions: the clips and the answers to them."""

    max_turns: int = HISTORY_TURNS
    max_audio_s: float = HISTORY_AUDIO_S
    clips: list[np.ndarray] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)

    def transcription_inputs(self, pre: Any, clip: np.ndarray) -> dict[str, Any]:
        return self._inputs(pre, clip, ASR_PROMPT)

    def voice_inputs(self, pre: Any, clip: np.ndarray) -> dict[str, Any]:
        return self._inputs(pre, clip, None)

    def remember(self, clip: np.ndarray, answer: str) -> None:
        """Keep this turn; forget the oldest ones beyond `max_turns` or `max_audio_s` of speech (the latest
        turn is always kept)."""
        self.clips.append(_one_clip(clip))
        self.answers.append(answer)
        keep = min(self.max_turns, len(self.clips))
        while keep > 1 and sum(len(c) for c in self.clips[-keep:]) > self.max_audio_s * SAMPLE_RATE:
            keep -= 1
        del self.clips[:-keep], self.answers[:-keep]

    def forget(self) -> None:
        self.clips.clear()
        self.answers.clear()

    def _inputs(self, pre: Any, clip: np.ndarray, question: str | None) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        for i, answer in enumerate(self.answers):
            messages.append({"role": "user", "content": [{"type": "audio", "audio_url": f"clip-{i}"}]})
            messages.append({"role": "assistant", "content": answer})
        turn: list[dict[str, Any]] = [{"type": "audio", "audio_url": f"clip-{len(self.answers)}"}]
        if question:
            turn.append({"type": "text", "text": question})
        messages.append({"role": "user", "content": turn})
        return pre(pre.apply_chat_template(messages), audio=[*self.clips, _one_clip(clip)])


def _one_clip(audio: np.ndarray) -> np.ndarray:
    """An utterance is at most one clip long (the endpointer ends it at max_utterance_s <= 30 s)."""
    return audio[: CLIP_SECONDS * SAMPLE_RATE]
