"""Qwen2-VL video preprocessing: frames to ``pixel_values_videos`` / ``video_grid_thw``, and video files to frames.

`preprocess_videos` equals transformers' Qwen2-VL video processor given the same frames: torch's uint8
antialiased bicubic resize (ported in `resize`), a fused float32 rescale+normalise, the last frame repeated
up to a multiple of ``temporal_patch_size``, and patches ordered (t, h-block, w-block, 2x2, C, T, 14, 14).
transformers' Qwen2-VL processor returns no fps or seconds-per-grid value (Qwen2.5-VL does); the sampling
rate is kept on `VideoClip` for callers that want it.

`read_video` decodes a file with PyAV and samples it as qwen-vl-utils does (2 frames per second by default,
at least 4 and at most 768 frames, an even count; each frame capped by a share of the total pixel budget),
then resizes the frames with the float kernel qwen-vl-utils' torchvision call runs, so the model sees the
frames the reference pipeline gives it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import processor_section
from .errors import PreprocessError
from .images import ImageSettings, normalize_like_torch, smart_resize, to_rgb_array
from .resize import resize_uint8, resize_uint8_via_float

log = logging.getLogger(__name__)

# qwen-vl-utils' defaults for videos read from files.
DEFAULT_FPS = 2.0
MIN_FRAMES = 4
MAX_FRAMES = 768
FRAME_MIN_TOKENS = 128
FRAME_MAX_TOKENS = 768
MODEL_SEQ_LEN = 128000


@dataclass(frozen=True)
class VideoSettings(ImageSettings):
    """The video processor settings of a Qwen2-VL folder (transformers' class defaults where unset)."""

    min_pixels: int = 128 * 28 * 28
    max_pixels: int = 28 * 28 * 768
    max_video_tokens: int = 128000
    cap_pixels_per_frame: bool = False

    @classmethod
    def from_dir(cls, model_dir: str | Path) -> VideoSettings:
        section = processor_section(Path(model_dir), "video_processor")
        base = ImageSettings.from_section(section, cls.min_pixels, cls.max_pixels)
        return cls(
            **base.__dict__,
            max_video_tokens=int(section.get("max_video_tokens", cls.max_video_tokens)),
            cap_pixels_per_frame=bool(section.get("cap_pixels_per_frame") or False),
        )


@dataclass(frozen=True)
class VideoClip:
    """Frames sampled from a video file, already at the size the model sees."""

    frames: np.ndarray  # uint8 [T, H, W, 3]
    sample_fps: float  # frames per second of `frames`
    source_fps: float
    total_frames: int  # decoded frames in the file
    indices: tuple[int, ...]  # which decoded frames were kept


# --------------------------------------------------------------------------------------- preprocessing


def _frames_array(video: Any) -> np.ndarray:
    """A video (list of PIL images / arrays, or an array [T, H, W, C]) as RGB uint8 [T, H, W, 3]."""
    if (isinstance(video, np.ndarray) and video.ndim == 4) or (
        isinstance(video, Sequence) and not isinstance(video, str | bytes)
    ):
        frames = list(video)
    else:
        raise PreprocessError(f"a video must be a list of frames or a 4-D array, not {type(video).__name__}")
    if not frames:
        raise PreprocessError("a video has no frames")
    rgb = [to_rgb_array(frame) for frame in frames]
    shapes = {f.shape for f in rgb}
    if len(shapes) > 1:
        raise PreprocessError(f"the frames of a video differ in size: {sorted(shapes)}")
    return np.stack(rgb)


def frame_size(height: int, width: int, num_frames: int, settings: VideoSettings) -> tuple[int, int]:
    """The size each frame is resized to, as transformers' Qwen2-VL video processor decides it."""
    max_pixels = settings.max_pixels
    if settings.cap_pixels_per_frame:
        total = int(settings.max_video_tokens * settings.factor * settings.factor * 0.9)
        share = total * settings.temporal_patch_size // num_frames
        max_pixels = max(min(max_pixels, share), int(settings.min_pixels * 1.05))
    return smart_resize(height, width, settings.factor, settings.min_pixels, max_pixels)


def patchify_video(video: np.ndarray, settings: VideoSettings) -> tuple[np.ndarray, tuple[int, int, int]]:
    """[T, C, H, W] float -> [grid_t * grid_h * grid_w, C * T' * P * P] and the grid."""
    t = settings.temporal_patch_size
    if pad := -video.shape[0] % t:
        video = np.concatenate([video, np.repeat(video[-1:], pad, axis=0)], axis=0)
    frames, channels, height, width = video.shape
    p, m = settings.patch_size, settings.merge_size
    grid_t, grid_h, grid_w = frames // t, height // p, width // p
    patches = video.reshape(grid_t, t, channels, grid_h // m, m, p, grid_w // m, m, p)
    patches = patches.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)  # (gt, gh, gw, mh, mw, C, T, ph, pw)
    return patches.reshape(grid_t * grid_h * grid_w, channels * t * p * p), (grid_t, grid_h, grid_w)


def _video_patches(chw: np.ndarray, settings: VideoSettings) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Normalise and patchify uint8 [T, C, H, W] one temporal patch at a time (peak memory ~ the output)."""
    t = settings.temporal_patch_size
    order = list(range(chw.shape[0])) + [chw.shape[0] - 1] * (-chw.shape[0] % t)  # repeat the last frame
    grid_t = len(order) // t
    per_group = (chw.shape[2] // settings.patch_size) * (chw.shape[3] // settings.patch_size)
    out = np.empty((grid_t * per_group, chw.shape[1] * t * settings.patch_size**2), dtype=np.float32)
    grid = (grid_t, chw.shape[2] // settings.patch_size, chw.shape[3] // settings.patch_size)
    for g in range(grid_t):
        group = normalize_like_torch(chw[order[g * t : (g + 1) * t]], settings, channel_axis=1)
        out[g * per_group : (g + 1) * per_group], _ = patchify_video(group, settings)
    return out, grid


def preprocess_videos(
    videos: Sequence[Any],
    settings: VideoSettings,
    *,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> dict[str, np.ndarray]:
    """``{"pixel_values_videos": float32 [patches, C*T*P*P], "video_grid_thw": int64 [n, 3]}``.

    Each video is a list of frames (PIL images or uint8 arrays) or a uint8 array [T, H, W, C].
    """
    if not videos:
        raise PreprocessError("no videos to preprocess")
    settings = settings.with_limits(min_pixels, max_pixels)
    all_patches, grids = [], []
    for video in videos:
        frames = _frames_array(video.frames if isinstance(video, VideoClip) else video)
        chw = np.ascontiguousarray(frames.transpose(0, 3, 1, 2))
        if settings.do_resize:
            height, width = frame_size(chw.shape[2], chw.shape[3], chw.shape[0], settings)
            chw = resize_uint8(chw, height, width, settings.resample)
        patches, grid = _video_patches(chw, settings)
        log.debug("video of %d frames -> grid %s", frames.shape[0], grid)
        all_patches.append(patches)
        grids.append(grid)
    return {
        "pixel_values_videos": all_patches[0] if len(all_patches) == 1 else np.concatenate(all_patches, axis=0),
        "video_grid_thw": np.asarray(grids, dtype=np.int64),
    }


# ------------------------------------------------------------------------------------------- sampling


def sample_count(
    total_frames: int,
    video_fps: float,
    fps: float = DEFAULT_FPS,
    *,
    frame_factor: int = 2,
    min_frames: int = MIN_FRAMES,
    max_frames: int = MAX_FRAMES,
) -> int:
    """How many frames to keep, as qwen-vl-utils' ``smart_nframes`` decides it."""
    low = math.ceil(min_frames / frame_factor) * frame_factor
    high = math.floor(min(max_frames, total_frames) / frame_factor) * frame_factor
    wanted = total_frames / video_fps * fps
    count = min(min(max(wanted, low), high), total_frames)
    count = math.floor(count / frame_factor) * frame_factor
    if not frame_factor <= count <= total_frames:
        raise PreprocessError(f"the video is too short: {total_frames} frames, at least {frame_factor} are needed")
    return count


def sample_indices(total_frames: int, count: int) -> list[int]:
    """Evenly spaced frame indices, as ``torch.linspace(0, total - 1, count).round()`` gives them (float32)."""
    if count == 1:
        return [0]
    start, end = np.float32(0.0), np.float32(total_frames - 1)
    step = np.float32((end - start) / np.float32(count - 1))
    half = count // 2
    i = np.arange(count)
    low = start + step * i[:half].astype(np.float32)
    high = end - step * (count - 1 - i[half:]).astype(np.float32)
    return [int(v) for v in np.round(np.concatenate([low, high]).astype(np.float32))]


def read_video(
    path: str | Path,
    *,
    fps: float = DEFAULT_FPS,
    min_frames: int = MIN_FRAMES,
    max_frames: int = MAX_FRAMES,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    total_pixels: float | None = None,
    settings: VideoSettings | None = None,
) -> VideoClip:
    """Decode `path`, keep `fps` frames per second (an even count), resize them as qwen-vl-utils does.

    `min_pixels` / `max_pixels` bound each frame (qwen-vl-utils: 128 and 768 tokens' worth); `total_pixels`
    is the budget of the whole clip, shared out over the frames. Frames are sampled from *all* decoded
    frames, as qwen-vl-utils' reader does, but only the kept ones are held, already resized.
    """
    settings = settings or VideoSettings()
    path = Path(path)
    factor = settings.factor
    low = FRAME_MIN_TOKENS * factor * factor if min_pixels is None else int(min_pixels)
    budget = MODEL_SEQ_LEN * factor * factor * 0.9 if total_pixels is None else float(total_pixels)

    def plan(total: int, source_fps: float) -> list[int]:
        count = sample_count(
            total,
            source_fps,
            fps,
            frame_factor=settings.temporal_patch_size,
            min_frames=min_frames,
            max_frames=max_frames,
        )
        return sample_indices(total, count)

    def target_size(count: int, height: int, width: int) -> tuple[int, int]:
        cap = max(min(FRAME_MAX_TOKENS * factor * factor, budget / count * 2), int(low * 1.05))
        if max_pixels is not None:
            if max_pixels > cap:
                log.warning("max_pixels %s exceeds the per-frame budget %s; using the budget", max_pixels, cap)
            cap = min(max_pixels, cap)
        return smart_resize(height, width, factor, low, cap)

    def decode(indices: list[int]) -> tuple[dict[int, np.ndarray], int, float]:
        def shrink(rgb: np.ndarray) -> np.ndarray:
            height, width = target_size(len(indices), rgb.shape[0], rgb.shape[1])
            chw = resize_uint8_via_float(np.ascontiguousarray(rgb.transpose(2, 0, 1)), height, width, settings.resample)
            return np.ascontiguousarray(chw.transpose(1, 2, 0))

        return _decode(path, set(indices), shrink)

    hint, source_fps = _probe(path)
    indices = plan(hint, source_fps)
    kept, total, source_fps = decode(indices)
    if total != hint:
        log.warning("%s: %d packets but %d decoded frames; sampling again", path.name, hint, total)
        if total < 1:
            raise PreprocessError(f"{path} holds no decodable video frames")
        if (again := plan(total, source_fps)) != indices:
            indices = again
            kept, total, source_fps = decode(indices)
    frames = np.stack([kept[i] for i in indices])
    sample_fps = len(indices) / max(total, 1e-6) * source_fps
    log.info(
        "video %s: %d of %d frames at %.3g fps, %dx%d",
        path.name,
        len(indices),
        total,
        sample_fps,
        frames.shape[2],
        frames.shape[1],
    )
    return VideoClip(
        frames=frames, sample_fps=sample_fps, source_fps=source_fps, total_frames=total, indices=tuple(indices)
    )


def _open(path: Path) -> Any:
    import av

    if not path.is_file():
        raise PreprocessError(f"no video file at {path}")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise PreprocessError(f"cannot read {path} as a video ({_reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise PreprocessError(f"{path} has no video stream")
    return container


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _stream_fps(stream: Any, path: Path) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    raise PreprocessError(f"{path} does not say its frame rate; re-encode it (e.g. with ffmpeg)")


def _probe(path: Path) -> tuple[int, float]:
    """(frames the file holds, counted by demuxing only, which is cheap; frames per second)."""
    import av

    with _open(path) as container:
        stream = container.streams.video[0]
        source_fps = _stream_fps(stream, path)
        try:
            count = sum(1 for packet in container.demux(stream) if packet.size > 0)
        except (av.FFmpegError, OSError) as exc:
            raise PreprocessError(f"{path} is damaged ({_reason(exc)})") from None
    if count < 1:
        raise PreprocessError(f"{path} holds no video frames")
    return count, source_fps


def _decode(
    path: Path, keep: set[int], transform: Callable[[np.ndarray], np.ndarray]
) -> tuple[dict[int, np.ndarray], int, float]:
    """Decode every frame; return `transform` of the RGB frames whose index is in `keep`, the count, the fps."""
    import av

    kept: dict[int, np.ndarray] = {}
    count = 0
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        source_fps = _stream_fps(stream, path)
        try:
            for frame in container.decode(stream):
                if count in keep:
                    kept[count] = transform(frame.to_ndarray(format="rgb24"))
                count += 1
        except (av.FFmpegError, OSError) as exc:
            raise PreprocessError(f"{path} is damaged: decoding stopped at frame {count} ({_reason(exc)})") from None
    return kept, count, source_fps
