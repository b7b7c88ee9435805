"""Real speech for tests: espeak-ng speaks a sentence, resampled to 16 kHz mono float32."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from facilities import require

SAMPLE_RATE = 16000


def spoken(text: str, seconds: float | None = None, voice: str = "en") -> np.ndarray:
    """`text` as espeak-ng says it; padded with silence or cut to `seconds` when given."""
    require("espeak-ng")
    import librosa
    import soundfile

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True, capture_output=True)
        audio, rate = soundfile.read(wav, dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    audio = librosa.resample(audio, orig_sr=rate, target_sr=SAMPLE_RATE).astype(np.float32)
    if seconds is not None:
        n = int(seconds * SAMPLE_RATE)
        audio = np.pad(audio, (0, max(0, n - len(audio))))[:n]
    return audio
