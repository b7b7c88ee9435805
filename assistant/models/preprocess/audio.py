"""Qwen2-Audio's input: Whisper log-mel features of a 30 s window, and audio files read as 16 kHz mono.

`log_mel_features` computes what transformers' WhisperFeatureExtractor gives Qwen2-Audio's processor: the
clip padded with zeros (or cut) to ``chunk_length`` seconds, a centred STFT (400-sample periodic Hann
window, hop 160, reflect padding), power spectrum through a Slaney mel filter bank, log10 with a floor of
1e-10, values clamped to (max - 8) where max is over the *whole padded* clip, then (x + 4) / 4. The last
STFT frame is dropped, so 30 s gives 3000 frames. It is computed in float64 and returned as float32.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..audio_frames import valid_audio_tokens
from .config import processor_section
from .errors import PreprocessError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class AudioSettings:
    """The feature extractor settings of a Qwen2-Audio folder (Whisper large-v3 values by default)."""

    feature_size: int = 128
    sampling_rate: int = SAMPLE_RATE
    hop_length: int = 160
    chunk_length: int = 30
    n_fft: int = 400
    padding_value: float = 0.0
    dither: float = 0.0

    @property
    def n_samples(self) -> int:
        """Samples in one window: every clip is padded or cut to this."""
        return self.chunk_length * self.sampling_rate

    @property
    def max_frames(self) -> int:
        return self.n_samples // self.hop_length

    @classmethod
    def from_dir(cls, model_dir: str | Path) -> AudioSettings:
        section = processor_section(Path(model_dir), "feature_extractor")
        base = cls()
        settings = cls(
            feature_size=int(section.get("feature_size", base.feature_size)),
            sampling_rate=int(section.get("sampling_rate", base.sampling_rate)),
            hop_length=int(section.get("hop_length", base.hop_length)),
            chunk_length=int(section.get("chunk_length", base.chunk_length)),
            n_fft=int(section.get("n_fft", base.n_fft)),
            padding_value=float(section.get("padding_value", base.padding_value)),
            dither=float(section.get("dither", base.dither) or 0.0),
        )
        if settings.dither:
            log.warning("the feature extractor asks for dither %g; features are computed without it", settings.dither)
        return settings


def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    freq = np.asarray(freq, dtype=np.float64)
    mels = 3.0 * freq / 200.0
    log_region = freq >= 1000.0
    return np.where(log_region, 15.0 + np.log(np.maximum(freq, 1e-12) / 1000.0) * (27.0 / np.log(6.4)), mels)


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    freq = 200.0 * mels / 3.0
    return np.where(mels >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (mels - 15.0)), freq)


def mel_filter_bank(
    num_frequency_bins: int,
    num_mel_filters: int,
    sampling_rate: int,
    min_frequency: float = 0.0,
    max_frequency: float = 8000.0,
) -> np.ndarray:
    """Slaney-normalised triangular mel filters, [frequency bins, mel filters] float64 (Whisper's bank)."""
    fft_freqs = np.linspace(0, sampling_rate // 2, num_frequency_bins)
    mel_points = np.linspace(_hz_to_mel(min_frequency), _hz_to_mel(max_frequency), num_mel_filters + 2)
    filter_freqs = _mel_to_hz(mel_points)
    widths = np.diff(filter_freqs)
    slopes = filter_freqs[None, :] - fft_freqs[:, None]
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(down, up))
    return filters * (2.0 / (filter_freqs[2 : num_mel_filters + 2] - filter_freqs[:num_mel_filters]))[None, :]


def _mel_filters(settings: AudioSettings) -> np.ndarray:
    key = (settings.n_fft, settings.feature_size, settings.sampling_rate)
    cached = _FILTER_CACHE.get(key)
    if cached is None:
        cached = _FILTER_CACHE[key] = mel_filter_bank(
            1 + settings.n_fft // 2, settings.feature_size, settings.sampling_rate
        )
    return cached


_FILTER_CACHE: dict[tuple[int, int, int], np.ndarray] = {}


def valid_frames(num_samples: int, settings: AudioSettings | None = None) -> int:
    """Feature frames the attention mask marks as real for a clip of `num_samples` samples."""
    settings = settings or AudioSettings()
    return min(-(-int(num_samples) // settings.hop_length), settings.max_frames)


def audio_token_count(num_samples: int, settings: AudioSettings | None = None) -> int:
    """``<|AUDIO|>`` tokens a clip becomes: 25 per second of (at most 30 s of) audio."""
    return valid_audio_tokens(valid_frames(num_samples, settings))


def _as_mono_float32(audio: Any) -> np.ndarray:
    clip = np.asarray(audio)
    if clip.ndim == 2 and 1 in clip.shape:
        clip = clip.reshape(-1)
    if clip.ndim != 1:
        raise PreprocessError(f"audio must be one mono channel, got an array of shape {clip.shape}; mix it down first")
    if not np.issubdtype(clip.dtype, np.floating):
        raise PreprocessError(f"audio samples must be floats in [-1, 1], got {clip.dtype}")
    if clip.size == 0:
        raise PreprocessError("the audio clip is empty")
    clip = clip.astype(np.float32, copy=False)
    if not np.isfinite(clip).all():
        raise PreprocessError("the audio clip contains NaN or infinite samples")
    return clip


def log_mel_features(audio: Any, settings: AudioSettings | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(input_features float32 [1, mels, frames], feature_attention_mask int32 [1, frames])`` of a mono clip.

    `audio` is float samples at ``settings.sampling_rate`` (16 kHz); longer than ``chunk_length`` is cut.
    """
    settings = settings or AudioSettings()
    clip = _as_mono_float32(audio)
    n = settings.n_samples
    if clip.size > n:
        log.info("audio of %.1f s cut to %d s", clip.size / settings.sampling_rate, settings.chunk_length)
        clip = clip[:n]
    padded = np.full(n, settings.padding_value, dtype=np.float64)
    padded[: clip.size] = clip

    n_fft, hop = settings.n_fft, settings.hop_length
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    signal = np.pad(padded, n_fft // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(signal, n_fft)[::hop][: settings.max_frames]
    spectrum = np.fft.rfft(frames * window, n=n_fft, axis=-1)
    power = spectrum.real**2 + spectrum.imag**2
    mel = (power @ _mel_filters(settings)).T  # [mels, frames]
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    features = ((log_spec + 4.0) / 4.0).astype(np.float32)[None]

    mask = np.zeros((1, settings.max_frames), dtype=np.int32)
    mask[0, : valid_frames(clip.size, settings)] = 1
    return features, mask


# ---------------------------------------------------------------------------------------------- files


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _read_soundfile(path: Path) -> tuple[np.ndarray, int] | None:
    """(samples [n, channels] float32, rate) via libsndfile, or None when it does not know the format."""
    import soundfile

    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except soundfile.LibsndfileError as exc:
        if "unknown format" in str(exc).lower() or "format not recognised" in str(exc).lower():
            return None
        raise PreprocessError(f"cannot read {path} as audio ({_reason(exc)})") from None
    except (RuntimeError, OSError) as exc:
        raise PreprocessError(f"cannot read {path} as audio ({_reason(exc)})") from None
    return data, int(rate)


def _read_av(path: Path) -> tuple[np.ndarray, int]:
    """(samples [n, channels] float32, rate) via FFmpeg, for formats libsndfile lacks (m4a, webm, ...)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise PreprocessError(f"{path} has no audio stream")
            stream = container.streams.audio[0]
            rate = stream.rate
            chunks = []
            for frame in container.decode(stream):
                samples = frame.to_ndarray()  # planar: [channels, n]; packed: [1, n * channels]
                channels = len(frame.layout.channels)
                samples = samples.T if frame.format.is_planar else samples.reshape(-1, channels)
                chunks.append(samples.astype(np.float32) / _int_scale(samples.dtype))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise PreprocessError(f"cannot read {path} as audio ({_reason(exc)})") from None
    if not chunks:
        raise PreprocessError(f"{path} holds no audio")
    return np.concatenate(chunks, axis=0), int(rate)


def _int_scale(dtype: np.dtype) -> float:
    """Full scale of integer PCM (float PCM is already in [-1, 1])."""
    return float(np.iinfo(dtype).max) + 1.0 if np.issubdtype(dtype, np.integer) else 1.0


def load_audio(path: str | Path, sampling_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A sound file as float32 mono at `sampling_rate`: channels averaged, resampled with soxr (HQ).

    Same result as ``librosa.load(path, sr=sampling_rate)`` for files libsndfile reads; other formats are
    decoded with FFmpeg (PyAV).
    """
    path = Path(path)
    if not path.is_file():
        raise PreprocessError(f"no audio file at {path}")
    if path.stat().st_size == 0:
        raise PreprocessError(f"{path} is empty")
    read = _read_soundfile(path)
    data, rate = read if read is not None else _read_av(path)
    if data.shape[0] == 0:
        raise PreprocessError(f"{path} holds no audio samples")
    mono = np.mean(data.T, axis=0) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(mono).all():
        raise PreprocessError(f"{path} contains NaN or infinite samples")
    if rate != sampling_rate:
        import soxr

        mono = soxr.resample(mono, rate, sampling_rate, quality="HQ")
    log.debug("loaded %s: %.2f s at %d Hz -> %d Hz mono", path.name, data.shape[0] / rate, rate, sampling_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)
