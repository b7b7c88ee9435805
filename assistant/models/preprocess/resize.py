"""Antialiased bicubic/bilinear resizing of uint8 images as torch does it on CPU, in numpy.

Two torch kernels matter, and Pillow matches neither (other weight precision, other pass order):

- `resize_uint8`: transformers' video processor and its default (torchvision) image processor call
  ``torchvision.transforms.v2.functional.resize(uint8, antialias=True)``, which runs torch's separable uint8
  kernel: per axis, PIL-style filter weights computed in float64, normalised, quantised to int16 with a
  common precision; each output is ``clip((sum(w * pixel) + 2**(p-1)) >> p, 0, 255)``; the horizontal pass
  runs first and its uint8 result feeds the vertical pass. Ported bit for bit.
- `resize_uint8_via_float`: qwen-vl-utils resizes video frames with the older
  ``torchvision.transforms.functional.resize``, which converts uint8 to float32, runs torch's float kernel
  (float32 weights, fused multiply-adds), clamps and rounds. Ported to float32 rounding; about one pixel
  value in a million can land one grey level apart, where torch's own summation order rounds differently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .errors import PreprocessError

# PIL resample codes, as processor configs store them.
BILINEAR = 2
BICUBIC = 3

_CUBIC_A = -0.5  # Keys' cubic; torch uses it (as PIL does) whenever antialias is on


def _cubic(x: np.ndarray) -> np.ndarray:
    """The antialiasing bicubic filter, written in the same operation order as torch's."""
    a = _CUBIC_A
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def _triangle(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


_FILTERS = {BICUBIC: (_cubic, 4), BILINEAR: (_triangle, 2)}


@dataclass(frozen=True)
class AxisWeights:
    """Where each output sample reads (``start``, up to ``taps`` inputs) and its int16 weights."""

    start: np.ndarray  # [out] int64
    weights: np.ndarray  # [out, taps] int32 (int16 values)
    precision: int


@lru_cache(maxsize=64)
def axis_weights(in_size: int, out_size: int, resample: int = BICUBIC) -> AxisWeights:
    """Weights of one resize axis, as torch computes them for uint8 antialiased interpolation."""
    if resample not in _FILTERS:
        raise PreprocessError(f"resample mode {resample} is not supported for videos (use 2 bilinear or 3 bicubic)")
    filter_fn, interp_size = _FILTERS[resample]
    scale = in_size / out_size
    support = interp_size * 0.5 * scale if scale >= 1.0 else interp_size * 0.5
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    taps = math.ceil(support) * 2 + 1

    center = scale * (np.arange(out_size, dtype=np.float64) + 0.5)
    start = np.maximum(np.trunc(center - support + 0.5), 0).astype(np.int64)
    stop = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size)
    count = np.clip(stop - start, 0, taps)

    j = np.arange(taps, dtype=np.int64)
    inside = j[None, :] < count[:, None]
    x = ((j[None, :] + start[:, None]).astype(np.float64) - center[:, None] + 0.5) * invscale
    w = np.where(inside, filter_fn(x), 0.0)
    total = np.cumsum(w, axis=1)[:, -1]  # a running sum, in the kernel's order
    safe = np.where(total != 0.0, total, 1.0)
    w = np.where((total != 0.0)[:, None], w / safe[:, None], w)
    w_max = float(max(0.0, w[total != 0.0].max(initial=0.0)))

    precision = 0
    while precision < 22 and int(0.5 + w_max * (1 << (precision + 1))) < (1 << 15):
        precision += 1
    scaled = w * float(1 << precision)
    quantised = np.where(scaled < 0, np.trunc(scaled - 0.5), np.trunc(scaled + 0.5)).astype(np.int32)
    return AxisWeights(start=start, weights=quantised, precision=precision)


def _resample_axis(image: np.ndarray, axis: int, out_size: int, resample: int) -> np.ndarray:
    """One separable pass over `axis` of a uint8 array; returns uint8.

    The resampled axis is moved to the front so each tap gathers whole contiguous rows.
    """
    in_size = image.shape[axis]
    spec = axis_weights(in_size, out_size, resample)
    moved = np.moveaxis(image, axis, 0)
    rest = moved.shape[1:]
    source = np.ascontiguousarray(moved).reshape(in_size, -1)
    acc = np.full((out_size, source.shape[1]), 1 << (spec.precision - 1), dtype=np.int32)
    rows = np.empty(acc.shape, dtype=np.uint8)
    term = np.empty_like(acc)
    last = in_size - 1
    for k in range(spec.weights.shape[1]):
        w = spec.weights[:, k]
        if not w.any():
            continue
        index = np.minimum(spec.start + k, last)  # taps past the edge have weight 0
        np.take(source, index, axis=0, out=rows)
        np.multiply(rows, w[:, None], out=term)
        acc += term
    np.right_shift(acc, spec.precision, out=acc)
    out = np.clip(acc, 0, 255).astype(np.uint8).reshape(out_size, *rest)
    return np.moveaxis(out, 0, axis)


def resize_uint8(image: np.ndarray, height: int, width: int, resample: int = BICUBIC) -> np.ndarray:
    """Resize a uint8 array ``[..., C, H, W]`` to ``height`` x ``width`` as torchvision does on CPU.

    Only the axes whose size changes are resampled (width first); an unchanged size returns the input.
    """
    if image.dtype != np.uint8:
        raise PreprocessError(f"expected uint8 pixels, got {image.dtype}")
    if image.shape[-2:] == (height, width):
        return image
    out = image
    if out.shape[-1] != width:
        out = _resample_axis(out, out.ndim - 1, width, resample)
    if out.shape[-2] != height:
        out = _resample_axis(out, out.ndim - 2, height, resample)
    return out


# ----------------------------------------------------------------------------------- the float32 kernel


def _fma32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """float32 ``a * b + c`` with one rounding, as the compiled kernel's fused multiply-add gives it."""
    return (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(np.float32)


def _cubic32(x: np.ndarray) -> np.ndarray:
    """The antialiasing bicubic filter in float32 with fused multiply-adds, as torch's compiled filter."""
    f32 = np.float32
    a = f32(_CUBIC_A)
    x = np.abs(x).astype(f32)
    near = _fma32(_fma32(a + f32(2), x, -(a + f32(3))) * x, x, f32(1))
    far = _fma32(_fma32(_fma32(a, x, -(f32(5) * a)), x, f32(8) * a), x, -(f32(4) * a))
    return np.where(x < 1, near, np.where(x < 2, far, f32(0))).astype(f32)


def _triangle32(x: np.ndarray) -> np.ndarray:
    x = np.abs(x).astype(np.float32)
    return np.where(x < 1, np.float32(1) - x, np.float32(0)).astype(np.float32)


_FILTERS32 = {BICUBIC: (_cubic32, 4), BILINEAR: (_triangle32, 2)}


@lru_cache(maxsize=64)
def axis_weights_float32(
    in_size: int, out_size: int, resample: int = BICUBIC
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, float32 weights [out, taps], tap count) of torch's float32 antialiased interpolation."""
    if resample not in _FILTERS32:
        raise PreprocessError(f"resample mode {resample} is not supported for videos (use 2 bilinear or 3 bicubic)")
    filter_fn, interp_size = _FILTERS32[resample]
    f32 = np.float32
    scale = f32(in_size) / f32(out_size)
    support = f32(interp_size * 0.5 * float(scale)) if scale >= 1 else f32(interp_size * 0.5)
    invscale = f32(1.0 / float(scale)) if scale >= 1 else f32(1.0)
    taps = math.ceil(float(support)) * 2 + 1
    center = (float(scale) * (np.arange(out_size) + 0.5)).astype(f32)
    start = np.maximum(np.trunc((center - support).astype(np.float64) + 0.5), 0).astype(np.int64)
    stop = np.minimum(np.trunc((center + support).astype(np.float64) + 0.5).astype(np.int64), in_size)
    count = np.clip(stop - start, 0, taps)
    j = np.arange(taps)
    offset = ((j[None, :] + start[:, None]).astype(f32) - center[:, None]).astype(f32)
    x = ((offset.astype(np.float64) + 0.5) * float(invscale)).astype(f32)
    w = np.where(j[None, :] < count[:, None], filter_fn(x), f32(0)).astype(f32)
    total = np.zeros(out_size, dtype=f32)
    for k in range(taps):  # a running float32 sum, in the kernel's order
        total = (total + w[:, k]).astype(f32)
    w = np.where((total != 0)[:, None], w / np.where(total != 0, total, f32(1))[:, None], w).astype(f32)
    return start, w, count


def _resample_axis_float(image: np.ndarray, axis: int, out_size: int, resample: int) -> np.ndarray:
    """One float32 pass: first product, then one fused multiply-add per further tap (zero weights past the end)."""
    in_size = image.shape[axis]
    start, weights, count = axis_weights_float32(in_size, out_size, resample)
    moved = np.moveaxis(image, axis, 0)
    rest = moved.shape[1:]
    source = np.ascontiguousarray(moved, dtype=np.float32).reshape(in_size, -1)
    live = np.arange(weights.shape[1])[None, :] < count[:, None]
    weights64 = np.where(live, weights, 0).astype(np.float64)
    out = (source[start] * weights[:, :1]).astype(np.float32)
    fused = np.empty(out.shape, dtype=np.float64)
    last = in_size - 1
    for k in range(1, weights.shape[1]):
        if not live[:, k].any():
            break
        index = np.minimum(start + k, last)
        np.multiply(source[index], weights64[:, k : k + 1], out=fused)  # exact: 24-bit x 24-bit mantissas
        fused += out
        out[...] = fused  # a weight of 0 adds 0.0 and rounds back to the same float32
    return np.moveaxis(out.reshape(out_size, *rest), 0, axis)


def resize_uint8_via_float(image: np.ndarray, height: int, width: int, resample: int = BICUBIC) -> np.ndarray:
    """Resize uint8 ``[..., C, H, W]`` as ``torchvision.transforms.functional.resize`` does (float path, rounded)."""
    if image.dtype != np.uint8:
        raise PreprocessError(f"expected uint8 pixels, got {image.dtype}")
    if image.shape[-2:] == (height, width):
        return image
    out = image.astype(np.float32)
    if out.shape[-1] != width:
        out = _resample_axis_float(out, out.ndim - 1, width, resample)
    if out.shape[-2] != height:
        out = _resample_axis_float(out, out.ndim - 2, height, resample)
    return np.round(np.clip(out, 0, 255)).astype(np.uint8)
