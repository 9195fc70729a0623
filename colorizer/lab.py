"""Fast sRGB <-> CIE Lab conversions (D65, 2 degree observer) and the L/ab scaling constants.

Everything that touches Lab in this project goes through this module, so the constants live in
one place. The conversions are float32, vectorized, and work on large photos in row chunks that
two threads process at once (numpy releases the GIL inside its loops). 8- and 16-bit inputs are
linearized through lookup tables; float outputs are gamma-encoded through a 65536-entry table.
The formulas and constants match scikit-image's rgb2lab / lab2rgb (same sRGB matrix, D65 white).

numpy only.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# --- scaling used by the networks ------------------------------------------------------------
L_CENT = 50.0  # network input: (L - L_CENT) / L_NORM
L_NORM = 100.0
AB_NORM = 110.0  # network ab output is ab / AB_NORM

# --- colorimetry -------------------------------------------------------------------------------
WHITE_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float64)
RGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423],
     [0.212671, 0.715160, 0.072169],
     [0.019334, 0.119193, 0.950227]],
    dtype=np.float64,
)
XYZ_TO_RGB = np.linalg.inv(RGB_TO_XYZ)
_EPS = 0.008856  # (6/29)^3, CIE threshold on t = X/Xn
_KAPPA = 7.787  # slope of the linear part of f(t)
_F_EPS = 0.2068966  # f(_EPS) = 6/29
_F_OFF = 16.0 / 116.0

_CHUNK_PIXELS = 1 << 19  # 512k pixels per chunk: arrays stay cache-friendly
_THREADS = max(1, min(4, os.cpu_count() or 1))
_pool: ThreadPoolExecutor | None = None


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


_LIN8 = _srgb_to_linear(np.arange(256) / 255.0).astype(np.float32)
_LIN16 = _srgb_to_linear(np.arange(65536) / 65535.0).astype(np.float32)
_GAMMA_LUT_SIZE = 65536
_GAMMA_LUT8 = np.empty(_GAMMA_LUT_SIZE, dtype=np.uint8)
_lin = np.arange(_GAMMA_LUT_SIZE, dtype=np.float64) / (_GAMMA_LUT_SIZE - 1)
_enc = np.where(_lin <= 0.0031308, 12.92 * _lin, 1.055 * np.power(_lin, 1 / 2.4) - 0.055)
_GAMMA_LUT8[:] = np.clip(np.round(_enc * 255.0), 0, 255).astype(np.uint8)
_GAMMA_LUTF = _enc.astype(np.float32)
del _lin, _enc


def _forget_pool_after_fork() -> None:
    # a forked child (a DataLoader worker) inherits the pool object but none of its threads:
    # waiting on it would hang for ever, so the child makes its own when it needs one
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _map_rows(fn, n_rows: int, row_pixels: int) -> None:
    """Run fn(start, stop) over row chunks, two threads at a time for big images."""
    rows = max(1, _CHUNK_PIXELS // max(1, row_pixels))
    spans = [(s, min(n_rows, s + rows)) for s in range(0, n_rows, rows)]
    if len(spans) == 1 or _THREADS == 1:
        for s, e in spans:
            fn(s, e)
        return
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="lab")
    for f in [_pool.submit(fn, s, e) for s, e in spans]:
        f.result()


def _as_rows(img: np.ndarray) -> np.ndarray:
    """View an image as (rows, cols, ...) so chunks split along the first axis."""
    if img.ndim == 2 or img.ndim == 3:
        return img
    if img.ndim == 4:  # batch N x H x W x C -> (N*H) x W x C
        return img.reshape(-1, *img.shape[2:])
    raise ValueError(f"expected an image array of 2 to 4 dimensions, got shape {img.shape}")


def _linear_rgb(rgb: np.ndarray) -> np.ndarray:
    """sRGB (uint8, uint16 or float in [0, 1]) -> linear RGB float32."""
    if rgb.dtype == np.uint8:
        return _LIN8[rgb]
    if rgb.dtype == np.uint16:
        return _LIN16[rgb]
    v = np.clip(rgb.astype(np.float32, copy=False), 0.0, 1.0)
    out = np.where(v <= 0.04045, v * (1 / 12.92), np.power((v + 0.055) * (1 / 1.055), 2.4))
    return out.astype(np.float32, copy=False)


def _f(t: np.ndarray) -> np.ndarray:
    """CIE f(t), in place where possible."""
    small = t <= _EPS
    lin = t[small] * _KAPPA + _F_OFF
    np.cbrt(t, out=t)
    t[small] = lin
    return t


def _finv(f: np.ndarray) -> np.ndarray:
    small = f <= _F_EPS
    lin = (f[small] - _F_OFF) * (1 / _KAPPA)
    cube = f * f
    cube *= f
    cube[small] = lin
    return cube


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim < 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an RGB array of shape (..., 3), got shape {rgb.shape}")
    return rgb


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3) as uint8, uint16 or float in [0, 1] -> Lab float32 (..., 3)."""
    rgb = _check_rgb(rgb)
    src = _as_rows(rgb)
    out = np.empty(src.shape, dtype=np.float32)
    m = (RGB_TO_XYZ / WHITE_D65[:, None]).T.astype(np.float32)  # rows: r, g, b -> x, y, z

    def work(s, e):
        lin = _linear_rgb(src[s:e])
        xyz = lin @ m
        _f(xyz)
        o = out[s:e]
        o[..., 0] = xyz[..., 1] * 116.0 - 16.0
        o[..., 1] = (xyz[..., 0] - xyz[..., 1]) * 500.0
        o[..., 2] = (xyz[..., 1] - xyz[..., 2]) * 200.0

    _map_rows(work, src.shape[0], int(np.prod(src.shape[1:-1])))
    return out.reshape(rgb.shape)


def rgb_to_lightness(img: np.ndarray) -> np.ndarray:
    """L channel (float32, same leading shape) of an sRGB (..., 3) or gray (H, W) image.

    A gray image's value is its sRGB gray level (R = G = B). Cheaper than rgb_to_lab: only Y.
    """
    img = np.asarray(img)
    gray = img.ndim == 2
    if not gray:
        img = _check_rgb(img)
    src = _as_rows(img)
    out = np.empty(src.shape[:-1] if not gray else src.shape, dtype=np.float32)
    wy = RGB_TO_XYZ[1].astype(np.float32)
    luts = None
    if src.dtype == np.uint8:
        luts = [(_LIN8 * w).astype(np.float32) for w in wy]
    elif src.dtype == np.uint16:
        luts = [(_LIN16 * w).astype(np.float32) for w in wy]

    def work(s, e):
        block = src[s:e]
        if gray:
            y = _linear_rgb(block)
        elif luts is not None:
            y = luts[0][block[..., 0]]
            y += luts[1][block[..., 1]]
            y += luts[2][block[..., 2]]
        else:
            y = _linear_rgb(block) @ wy
        _f(y)
        y *= 116.0
        y -= 16.0
        out[s:e] = y

    _map_rows(work, src.shape[0], int(np.prod(src.shape[1:-1] if not gray else src.shape[1:])))
    return out.reshape(img.shape if gray else img.shape[:-1])


def _lab_to_linear(lab_block: np.ndarray | None, L=None, a=None, b=None) -> np.ndarray:
    """Lab -> linear RGB float32 (..., 3), unclipped."""
    if lab_block is not None:
        L, a, b = lab_block[..., 0], lab_block[..., 1], lab_block[..., 2]
    fy = L * (1 / 116.0) + _F_OFF
    fx = a * (1 / 500.0) + fy
    fz = fy - b * (1 / 200.0)
    fxyz = np.stack([fx, fy, fz], axis=-1)
    xyz = _finv(fxyz)
    m = (XYZ_TO_RGB * WHITE_D65[None, :]).T.astype(np.float32)  # x, y, z rows -> r, g, b
    return xyz @ m


def _encode(lin: np.ndarray, out: np.ndarray) -> None:
    """Linear RGB -> gamma-encoded output (uint8 or float32) through the lookup table."""
    np.clip(lin, 0.0, 1.0, out=lin)
    lin *= _GAMMA_LUT_SIZE - 1
    lin += 0.5
    idx = lin.astype(np.uint16)
    lut = _GAMMA_LUT8 if out.dtype == np.uint8 else _GAMMA_LUTF
    np.take(lut, idx, out=out)


def lab_to_rgb(lab: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Lab (..., 3) -> sRGB (..., 3): float32 in [0, 1] (default) or uint8. Out-of-gamut clips."""
    lab = np.asarray(lab, dtype=np.float32)
    if lab.ndim < 3 or lab.shape[-1] != 3:
        raise ValueError(f"expected a Lab array of shape (..., 3), got shape {lab.shape}")
    src = _as_rows(lab)
    out = np.empty(src.shape, dtype=np.dtype(dtype))

    def work(s, e):
        _encode(_lab_to_linear(src[s:e]), out[s:e])

    _map_rows(work, src.shape[0], int(np.prod(src.shape[1:-1])))
    return out.reshape(lab.shape)


def l_ab_to_rgb_uint8(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Full-resolution L (H, W) and ab (H, W, 2) or (2, H, W) -> sRGB uint8 (H, W, 3).

    Separate planes avoid building an H x W x 3 Lab array for 12-megapixel photos.
    """
    L = np.asarray(L, dtype=np.float32)
    ab = np.asarray(ab, dtype=np.float32)
    if ab.ndim == 3 and ab.shape[0] == 2 and ab.shape[1:] == L.shape:
        a_pl, b_pl = ab[0], ab[1]
    elif ab.shape == L.shape + (2,):
        a_pl, b_pl = ab[..., 0], ab[..., 1]
    else:
        raise ValueError(f"L of shape {L.shape} and ab of shape {ab.shape} do not match")
    out = np.empty(L.shape + (3,), dtype=np.uint8)

    def work(s, e):
        _encode(_lab_to_linear(None, L[s:e], a_pl[s:e], b_pl[s:e]), out[s:e])

    _map_rows(work, L.shape[0], int(np.prod(L.shape[1:])))
    return out


def gray_rgb_from_lightness(L: np.ndarray) -> np.ndarray:
    """The gray sRGB uint8 image (H, W, 3) whose Lab is (L, 0, 0): what a B&W photo looks like."""
    L = np.asarray(L, dtype=np.float32)
    return l_ab_to_rgb_uint8(L, np.zeros(L.shape + (2,), np.float32))
