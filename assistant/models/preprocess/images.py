"""Qwen2-VL image preprocessing: PIL images to ``pixel_values`` and ``image_grid_thw``, as transformers does.

Per image: convert to RGB (transparency composited onto white), resize with `smart_resize` so both sides are
multiples of ``patch_size * merge_size`` and the area lies within [min_pixels, max_pixels], rescale to
[0, 1], normalise with the CLIP mean/std, then cut into ``temporal_patch_size`` x 14 x 14 patches ordered so
each 2x2 group the merger joins is contiguous. With ``backend="pil"`` (the default) this equals
transformers' PIL image processor bit for bit; with ``backend="torch"`` it equals the default torchvision
processor, whose bicubic kernel rounds differently (see `resize`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .config import pixel_limits, processor_section
from .errors import PreprocessError
from .resize import resize_uint8

log = logging.getLogger(__name__)

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MAX_ASPECT_RATIO = 200

Backend = Literal["pil", "torch"]


@dataclass(frozen=True)
class ImageSettings:
    """The image processor settings of a Qwen2-VL folder (transformers' class defaults where unset)."""

    patch_size: int = 14
    temporal_patch_size: int = 2
    merge_size: int = 2
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280
    image_mean: tuple[float, ...] = OPENAI_CLIP_MEAN
    image_std: tuple[float, ...] = OPENAI_CLIP_STD
    rescale_factor: float = 1 / 255
    resample: int = 3  # PIL bicubic
    do_resize: bool = True
    do_rescale: bool = True
    do_normalize: bool = True
    do_convert_rgb: bool = True

    @property
    def factor(self) -> int:
        """Side lengths are multiples of this: one language-model token per factor x factor pixels."""
        return self.patch_size * self.merge_size

    @classmethod
    def from_section(cls, section: dict[str, Any], default_min: int, default_max: int) -> ImageSettings:
        low, high = pixel_limits(section, default_min, default_max)
        base = cls()
        return cls(
            patch_size=int(section.get("patch_size", base.patch_size)),
            temporal_patch_size=int(section.get("temporal_patch_size", base.temporal_patch_size)),
            merge_size=int(section.get("merge_size", base.merge_size)),
            min_pixels=low,
            max_pixels=high,
            image_mean=tuple(float(v) for v in section.get("image_mean", base.image_mean)),
            image_std=tuple(float(v) for v in section.get("image_std", base.image_std)),
            rescale_factor=float(section.get("rescale_factor", base.rescale_factor)),
            resample=int(section.get("resample", base.resample)),
            do_resize=bool(section.get("do_resize", True)),
            do_rescale=bool(section.get("do_rescale", True)),
            do_normalize=bool(section.get("do_normalize", True)),
            do_convert_rgb=bool(section.get("do_convert_rgb", True)),
        )

    @classmethod
    def from_dir(cls, model_dir: str | Path) -> ImageSettings:
        return cls.from_section(processor_section(Path(model_dir), "image_processor"), cls.min_pixels, cls.max_pixels)

    def with_limits(self, min_pixels: int | None = None, max_pixels: int | None = None) -> ImageSettings:
        """A copy with the caller's pixel limits (e.g. a cap for screenshots)."""
        return replace(
            self,
            min_pixels=self.min_pixels if min_pixels is None else int(min_pixels),
            max_pixels=self.max_pixels if max_pixels is None else int(max_pixels),
        )


def smart_resize(
    height: int, width: int, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280
) -> tuple[int, int]:
    """The size Qwen resizes to: sides multiples of `factor`, area within the limits, aspect ratio kept."""
    if min(height, width) < 1:
        raise PreprocessError(f"an image of {width}x{height} pixels is empty")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise PreprocessError(
            f"an image of {width}x{height} pixels is too elongated (aspect ratio over {MAX_ASPECT_RATIO})"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def image_token_count(height: int, width: int, settings: ImageSettings) -> int:
    """Language-model tokens an image of this size costs (without preprocessing it)."""
    h, w = smart_resize(height, width, settings.factor, settings.min_pixels, settings.max_pixels)
    return (h // settings.patch_size) * (w // settings.patch_size) // settings.merge_size**2


# ---------------------------------------------------------------------------------------------- pixels


def _array_to_hwc(array: np.ndarray) -> np.ndarray:
    """A uint8 array as height x width x channels (accepts HW, HWC and CHW with 1, 3 or 4 channels)."""
    if array.dtype != np.uint8:
        raise PreprocessError(f"image arrays must hold uint8 pixels, got {array.dtype}")
    if array.ndim == 2:
        return array[:, :, None]
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        return array
    if array.ndim == 3 and array.shape[0] in (1, 3, 4):
        return np.moveaxis(array, 0, -1)
    raise PreprocessError(f"cannot read an image array of shape {array.shape}")


def load_image(path: str | Path) -> Any:
    """Open an image file (any format Pillow reads), upright per its EXIF orientation, as transformers does."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise PreprocessError(f"no image file at {path}")
    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except UnidentifiedImageError:
        raise PreprocessError(f"{path} is not an image Pillow can read") from None
    except Image.DecompressionBombError:
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0) // 1_000_000  # Pillow refuses twice its warning size
        raise PreprocessError(
            f"{path} has more pixels than are read safely ({limit} million at most); scale it down first"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise PreprocessError(f"cannot read the image {path} ({reason})") from None
    return _as_8_bit(image)


def _as_8_bit(image: Any) -> Any:
    """A 16- or 32-bit grey image (a 16-bit PNG opens as "I;16" or "I") scaled to 8 bits: Pillow's own
    conversion to RGB clips every value above 255, which turns such a picture white."""
    from PIL import Image

    if not image.mode.startswith("I"):
        return image
    pixels = np.asarray(image).astype(np.float64)
    top = 65535.0 if pixels.max(initial=0) <= 65535 else float(pixels.max())
    return Image.fromarray(np.round(np.clip(pixels, 0, None) / top * 255).astype(np.uint8), "L")


def to_rgb_array(image: Any, convert_rgb: bool = True) -> np.ndarray:
    """An image (PIL image, uint8 array or file path) as RGB uint8 [H, W, 3]; transparency goes onto white."""
    from PIL import Image

    if isinstance(image, str | Path):
        image = load_image(image)
    if isinstance(image, Image.Image):
        if not convert_rgb:
            return _array_to_hwc(np.asarray(image))
        if "A" in image.getbands() or image.info.get("transparency") is not None:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
        return np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        pixels = _array_to_hwc(image)
        if not convert_rgb:
            return pixels
        if pixels.shape[-1] == 1:
            return np.repeat(pixels, 3, axis=-1)
        if pixels.shape[-1] == 4:
            alpha = pixels[..., 3:4] / 255
            blended = alpha * pixels[..., :3] + (1 - alpha) * 255
            return np.round(blended).astype(np.uint8)
        return pixels
    raise PreprocessError(f"cannot use a {type(image).__name__} as an image (give a PIL image or a uint8 array)")


def _normalize_pil(pixels: np.ndarray, settings: ImageSettings) -> np.ndarray:
    """Rescale then normalise as the PIL processor does: float64 rescale, float32 arithmetic after."""
    out = pixels.astype(np.float64)
    if settings.do_rescale:
        out = out * settings.rescale_factor
    out = out.astype(np.float32)
    if settings.do_normalize:
        mean = np.asarray(settings.image_mean, dtype=np.float32)
        std = np.asarray(settings.image_std, dtype=np.float32)
        out = (out - mean) / std
    return out


def normalize_like_torch(pixels: np.ndarray, settings: ImageSettings, channel_axis: int) -> np.ndarray:
    """Rescale and normalise as the torchvision processors do: one fused float32 ``(x - m*255) / (s*255)``."""
    shape = [1] * pixels.ndim
    shape[channel_axis] = -1
    out = pixels.astype(np.float32)
    if settings.do_rescale and settings.do_normalize:
        scale = np.float32(1.0 / settings.rescale_factor)
        mean = np.asarray(settings.image_mean, dtype=np.float32) * scale
        std = np.asarray(settings.image_std, dtype=np.float32) * scale
        return (out - mean.reshape(shape)) / std.reshape(shape)
    if settings.do_normalize:
        mean = np.asarray(settings.image_mean, dtype=np.float32)
        std = np.asarray(settings.image_std, dtype=np.float32)
        return (out - mean.reshape(shape)) / std.reshape(shape)
    if settings.do_rescale:
        return out * np.float32(settings.rescale_factor)
    return out


def patchify_image(chw: np.ndarray, settings: ImageSettings) -> tuple[np.ndarray, int, int]:
    """[C, H, W] -> [grid_h * grid_w, C * T * P * P]; the frame is repeated over the temporal patch."""
    channels, height, width = chw.shape
    p, m, t = settings.patch_size, settings.merge_size, settings.temporal_patch_size
    grid_h, grid_w = height // p, width // p
    patches = chw.reshape(channels, grid_h // m, m, p, grid_w // m, m, p)
    patches = patches.transpose(1, 4, 2, 5, 0, 3, 6)  # (gh, gw, mh, mw, C, ph, pw)
    patches = np.broadcast_to(patches[:, :, :, :, :, None], (*patches.shape[:5], t, p, p))
    return patches.reshape(grid_h * grid_w, channels * t * p * p), grid_h, grid_w


def _resized_rgb(image: Any, settings: ImageSettings, backend: Backend) -> np.ndarray:
    """RGB uint8 [H, W, 3] at the size the model sees."""
    from PIL import Image

    pixels = to_rgb_array(image, settings.do_convert_rgb)
    if not settings.do_resize:
        return pixels
    height, width = pixels.shape[:2]
    new_h, new_w = smart_resize(height, width, settings.factor, settings.min_pixels, settings.max_pixels)
    if (new_h, new_w) == (height, width):
        return pixels
    if backend == "torch":
        chw = resize_uint8(np.ascontiguousarray(pixels.transpose(2, 0, 1)), new_h, new_w, settings.resample)
        return chw.transpose(1, 2, 0)
    mode = None if pixels.shape[-1] != 1 else "L"
    source = Image.fromarray(pixels[..., 0] if mode else pixels, mode=mode)
    resized = np.asarray(source.resize((new_w, new_h), resample=settings.resample))
    return resized[..., None] if resized.ndim == 2 else resized


def preprocess_images(
    images: Sequence[Any],
    settings: ImageSettings,
    *,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    backend: Backend = "pil",
) -> dict[str, np.ndarray]:
    """``{"pixel_values": float32 [patches, C*T*P*P], "image_grid_thw": int64 [n, 3]}`` for `images`."""
    if not images:
        raise PreprocessError("no images to preprocess")
    if backend not in ("pil", "torch"):
        raise ValueError(f"backend must be 'pil' or 'torch', not {backend!r}")
    settings = settings.with_limits(min_pixels, max_pixels)
    all_patches, grids = [], []
    for image in images:
        pixels = _resized_rgb(image, settings, backend)
        if backend == "torch":
            chw = normalize_like_torch(pixels.transpose(2, 0, 1), settings, channel_axis=0)
        else:
            chw = _normalize_pil(pixels, settings).transpose(2, 0, 1)
        patches, grid_h, grid_w = patchify_image(chw, settings)
        log.debug("image %sx%s -> grid %dx%d", pixels.shape[1], pixels.shape[0], grid_h, grid_w)
        all_patches.append(patches)
        grids.append((1, grid_h, grid_w))
    return {
        "pixel_values": np.ascontiguousarray(np.concatenate(all_patches, axis=0), dtype=np.float32),
        "image_grid_thw": np.asarray(grids, dtype=np.int64),
    }
