"""Image-quality metrics for colorization: PSNR/MSE, SSIM, Delta E maps, colorfulness, heatmaps.

Pure numpy (scipy.ndimage for the SSIM window). Lab conversions go through colorizer.lab.

Conventions
-----------
* RGB images are H x W x 3. uint8 is the native scale (0..255); uint16 is rescaled to 0..255;
  float images are taken as sRGB in [0, 1] (the colorizer.lab convention) and scaled by 255.
* Delta E functions take Lab arrays of shape (..., 3) and return a map of shape (...), float64.
* Dataset numbers in /work/shared/data/README.md are means over photos of the per-photo values
  (``evaluate_pair``); PSNR is averaged in dB, photo by photo.

SSIM variant: the table in the data README is reproduced by a 7 x 7 uniform window with sample
(N/(N-1)) local variances and covariance, K1 = 0.01, K2 = 0.03, L = 255, reflect padding, the
map averaged over the interior (a 3-pixel border left out), per RGB channel, then over channels
(the scikit-image default). The Wang et al. 11 x 11 Gaussian (sigma 1.5) variant reads about
0.003 higher on these photos and does not match the table; it is available as
``ssim(..., gaussian=True)``.

numpy, scipy.ndimage and colorizer.lab only.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy import ndimage

from .lab import rgb_to_lab

__all__ = [
    "mse",
    "psnr",
    "ssim",
    "delta_e_76",
    "delta_e_94",
    "delta_e_2000",
    "delta_e_map",
    "colorfulness",
    "evaluate_pair",
    "render_heatmap",
    "robust_vmax",
    "colormap",
]

_CHUNK = 1 << 20  # pixels per block in the Delta E formulas (bounds temporaries on big photos)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _to_255(img: np.ndarray) -> np.ndarray:
    """An image as float64 on the 0..255 scale (see the module conventions)."""
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img.astype(np.float64)
    if img.dtype == np.uint16:
        return img.astype(np.float64) * (255.0 / 65535.0)
    if np.issubdtype(img.dtype, np.integer) or img.dtype == np.bool_:
        raise TypeError(f"unsupported integer image dtype {img.dtype}; use uint8 or uint16")
    return img.astype(np.float64) * 255.0


def _check_pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"shapes differ: pred {pred.shape} vs truth {truth.shape}")
    return pred, truth


def _check_rgb(img: np.ndarray, name: str) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"{name}: expected an H x W x 3 RGB image, got shape {img.shape}")
    return img


def _check_lab(lab1, lab2) -> tuple[np.ndarray, np.ndarray]:
    lab1 = np.asarray(lab1, dtype=np.float64)
    lab2 = np.asarray(lab2, dtype=np.float64)
    if lab1.shape[-1:] != (3,) or lab2.shape[-1:] != (3,):
        raise ValueError(f"expected Lab arrays of shape (..., 3), got {lab1.shape} and {lab2.shape}")
    lab1, lab2 = np.broadcast_arrays(lab1, lab2)
    return lab1, lab2


def _blockwise(fn, lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """Apply fn(block1, block2) -> (n,) to flattened (n, 3) blocks; returns the map (...)."""
    lead = lab1.shape[:-1]
    a = lab1.reshape(-1, 3)
    b = lab2.reshape(-1, 3)
    n = a.shape[0]
    if n <= _CHUNK:
        return fn(a, b).reshape(lead)
    out = np.empty(n, dtype=np.float64)
    for s in range(0, n, _CHUNK):
        out[s:s + _CHUNK] = fn(a[s:s + _CHUNK], b[s:s + _CHUNK])
    return out.reshape(lead)


# --------------------------------------------------------------------------------------------
# pixel-error metrics
# --------------------------------------------------------------------------------------------
def mse(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean squared error over all pixels and channels, on the 0..255 scale."""
    pred, truth = _check_pair(pred, truth)
    d = _to_255(pred) - _to_255(truth)
    return float(np.mean(d * d))


def psnr(pred: np.ndarray, truth: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB on the 0..255 scale; inf for identical images."""
    err = mse(pred, truth)
    if err == 0.0:
        return math.inf
    return float(10.0 * math.log10(data_range * data_range / err))


def _ssim_channel(x: np.ndarray, y: np.ndarray, data_range: float, gaussian: bool,
                  sigma: float, win_size: int, sample_covariance: bool) -> float:
    if gaussian:
        truncate = 3.5
        radius = int(truncate * sigma + 0.5)
        size = 2 * radius + 1

        def filt(a):
            return ndimage.gaussian_filter(a, sigma=sigma, truncate=truncate, mode="reflect")
    else:
        size = win_size

        def filt(a):
            return ndimage.uniform_filter(a, size=size, mode="reflect")

    if min(x.shape) < size:
        raise ValueError(f"image of shape {x.shape} is smaller than the {size} x {size} SSIM window")
    n = size * size
    cov_norm = n / (n - 1.0) if sample_covariance else 1.0
    mx, my = filt(x), filt(y)
    vx = cov_norm * (filt(x * x) - mx * mx)
    vy = cov_norm * (filt(y * y) - my * my)
    cxy = cov_norm * (filt(x * y) - mx * my)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    num = (2.0 * mx * my + c1) * (2.0 * cxy + c2)
    den = (mx * mx + my * my + c1) * (vx + vy + c2)
    smap = num / den
    p = (size - 1) // 2
    return float(smap[p:smap.shape[0] - p, p:smap.shape[1] - p].mean())


def ssim(pred: np.ndarray, truth: np.ndarray, data_range: float = 255.0, *,
         gaussian: bool = False, sigma: float = 1.5, win_size: int = 7,
         sample_covariance: bool | None = None) -> float:
    """Mean structural similarity over RGB channels (images on the 0..255 scale).

    Default (the variant behind the data README's table): uniform ``win_size`` x ``win_size``
    (7 x 7) window, sample (N/(N-1)) local statistics, K1 = 0.01, K2 = 0.03, reflect padding,
    SSIM map averaged over the interior (a (size-1)/2 border dropped), then over channels.
    ``gaussian=True`` gives Wang et al. (2004): Gaussian window of ``sigma`` (1.5) truncated at
    3.5 sigma (11 x 11) with population statistics (unless ``sample_covariance`` says otherwise).
    A 2-D input is treated as one channel.
    """
    pred, truth = _check_pair(pred, truth)
    if sample_covariance is None:
        sample_covariance = not gaussian
    x = _to_255(pred)
    y = _to_255(truth)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    if x.ndim != 3:
        raise ValueError(f"expected H x W or H x W x C images, got shape {pred.shape}")
    vals = [
        _ssim_channel(x[..., c], y[..., c], data_range, gaussian, sigma, win_size, sample_covariance)
        for c in range(x.shape[-1])
    ]
    return float(np.mean(vals))


# --------------------------------------------------------------------------------------------
# Delta E
# --------------------------------------------------------------------------------------------
def delta_e_76(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIE 1976 color difference: Euclidean distance in Lab. Map of shape lab.shape[:-1]."""
    lab1, lab2 = _check_lab(lab1, lab2)
    d = lab1 - lab2
    return np.sqrt(np.einsum("...i,...i->...", d, d))


def delta_e_94(lab1: np.ndarray, lab2: np.ndarray, kL: float = 1.0, K1: float = 0.045,
               K2: float = 0.015) -> np.ndarray:
    """CIE 1994 color difference (graphic-arts constants by default; kC = kH = 1).

    Not symmetric: lab1 is the reference, whose chroma sets the weights S_C and S_H.
    """
    lab1, lab2 = _check_lab(lab1, lab2)

    def block(p, q):
        dL = p[:, 0] - q[:, 0]
        c1 = np.hypot(p[:, 1], p[:, 2])
        c2 = np.hypot(q[:, 1], q[:, 2])
        dC = c1 - c2
        da = p[:, 1] - q[:, 1]
        db = p[:, 2] - q[:, 2]
        dH2 = np.maximum(da * da + db * db - dC * dC, 0.0)
        sC = 1.0 + K1 * c1
        sH = 1.0 + K2 * c1
        return np.sqrt((dL / kL) ** 2 + (dC / sC) ** 2 + dH2 / (sH * sH))

    return _blockwise(block, lab1, lab2)


_POW25_7 = 25.0 ** 7


def delta_e_2000(lab1: np.ndarray, lab2: np.ndarray, kL: float = 1.0, kC: float = 1.0,
                 kH: float = 1.0) -> np.ndarray:
    """CIEDE2000 color difference (CIE 142-2001), following Sharma, Wu & Dalal (2005).

    Symmetric in its arguments. Hue angles in degrees; a zero-chroma color has hue 0, and then
    the hue difference is 0 and the mean hue is the sum of the hues, as the paper specifies.
    """
    lab1, lab2 = _check_lab(lab1, lab2)

    def block(p, q):
        L1, a1, b1 = p[:, 0], p[:, 1], p[:, 2]
        L2, a2, b2 = q[:, 0], q[:, 1], q[:, 2]
        # a' correction (G) from the mean C*ab
        cbar = 0.5 * (np.hypot(a1, b1) + np.hypot(a2, b2))
        cbar7 = cbar ** 7
        g = 0.5 * (1.0 - np.sqrt(cbar7 / (cbar7 + _POW25_7)))
        a1p = (1.0 + g) * a1
        a2p = (1.0 + g) * a2
        c1p = np.hypot(a1p, b1)
        c2p = np.hypot(a2p, b2)
        # hue angles in [0, 360); atan2(0, 0) = 0 gives hue 0 for neutral colors
        h1p = np.degrees(np.arctan2(b1, a1p)) % 360.0
        h2p = np.degrees(np.arctan2(b2, a2p)) % 360.0
        cprod = c1p * c2p
        neutral = cprod == 0.0
        # differences
        dLp = L2 - L1
        dCp = c2p - c1p
        dhp = h2p - h1p
        dhp = np.where(dhp > 180.0, dhp - 360.0, dhp)
        dhp = np.where(dhp < -180.0, dhp + 360.0, dhp)
        dhp = np.where(neutral, 0.0, dhp)
        dHp = 2.0 * np.sqrt(cprod) * np.sin(np.radians(0.5 * dhp))
        # means
        Lbp = 0.5 * (L1 + L2)
        Cbp = 0.5 * (c1p + c2p)
        hsum = h1p + h2p
        far = np.abs(h1p - h2p) > 180.0
        hbp = np.where(far, np.where(hsum < 360.0, hsum + 360.0, hsum - 360.0), hsum) * 0.5
        hbp = np.where(neutral, hsum, hbp)
        # weighting functions
        t = (1.0
             - 0.17 * np.cos(np.radians(hbp - 30.0))
             + 0.24 * np.cos(np.radians(2.0 * hbp))
             + 0.32 * np.cos(np.radians(3.0 * hbp + 6.0))
             - 0.20 * np.cos(np.radians(4.0 * hbp - 63.0)))
        dtheta = 30.0 * np.exp(-(((hbp - 275.0) / 25.0) ** 2))
        cbp7 = Cbp ** 7
        rC = 2.0 * np.sqrt(cbp7 / (cbp7 + _POW25_7))
        l50 = (Lbp - 50.0) ** 2
        sL = 1.0 + 0.015 * l50 / np.sqrt(20.0 + l50)
        sC = 1.0 + 0.045 * Cbp
        sH = 1.0 + 0.015 * Cbp * t
        rT = -np.sin(np.radians(2.0 * dtheta)) * rC
        tl = dLp / (kL * sL)
        tc = dCp / (kC * sC)
        th = dHp / (kH * sH)
        return np.sqrt(np.maximum(tl * tl + tc * tc + th * th + rT * tc * th, 0.0))

    return _blockwise(block, lab1, lab2)


_DELTA_E = {"76": delta_e_76, "94": delta_e_94, "2000": delta_e_2000}


def delta_e_map(pred_rgb: np.ndarray, truth_rgb: np.ndarray, kind: str = "2000") -> np.ndarray:
    """Per-pixel Delta E (H x W, float64) between two sRGB images; kind is "76", "94" or "2000".

    For the asymmetric "94", the truth is the reference color.
    """
    pred_rgb, truth_rgb = _check_pair(pred_rgb, truth_rgb)
    kind = str(kind).upper().removeprefix("CIE").removeprefix("DE")
    kind = {"1976": "76", "1994": "94", "00": "2000", "DE2000": "2000"}.get(kind, kind)
    if kind not in _DELTA_E:
        raise ValueError(f"unknown Delta E kind {kind!r}; use '76', '94' or '2000'")
    return _DELTA_E[kind](rgb_to_lab(truth_rgb), rgb_to_lab(pred_rgb))


# --------------------------------------------------------------------------------------------
# colorfulness and the per-pair summary
# --------------------------------------------------------------------------------------------
def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colorfulness on the 0..255 scale (0 for a gray image).

    rg = R - G, yb = (R + G) / 2 - B; M = sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2).
    """
    rgb = _to_255(_check_rgb(rgb, "colorfulness"))
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    std = math.sqrt(float(rg.var()) + float(yb.var()))
    mean = math.sqrt(float(rg.mean()) ** 2 + float(yb.mean()) ** 2)
    return std + 0.3 * mean


def evaluate_pair(pred_rgb: np.ndarray, truth_rgb: np.ndarray) -> dict[str, float]:
    """All metrics for one prediction: mse, psnr, ssim, de76/de94/de2000 (means over pixels),
    colorfulness_pred and colorfulness_truth."""
    pred_rgb = _check_rgb(pred_rgb, "pred")
    truth_rgb = _check_rgb(truth_rgb, "truth")
    pred_rgb, truth_rgb = _check_pair(pred_rgb, truth_rgb)
    lab_p = rgb_to_lab(pred_rgb)
    lab_t = rgb_to_lab(truth_rgb)
    err = mse(pred_rgb, truth_rgb)
    return {
        "mse": err,
        "psnr": math.inf if err == 0.0 else float(10.0 * math.log10(255.0 ** 2 / err)),
        "ssim": ssim(pred_rgb, truth_rgb),
        "de76": float(delta_e_76(lab_t, lab_p).mean()),
        "de94": float(delta_e_94(lab_t, lab_p).mean()),
        "de2000": float(delta_e_2000(lab_t, lab_p).mean()),
        "colorfulness_pred": colorfulness(pred_rgb),
        "colorfulness_truth": colorfulness(truth_rgb),
    }


# --------------------------------------------------------------------------------------------
# heatmap rendering
# --------------------------------------------------------------------------------------------
# Our own inferno-like ramp: black -> deep purple -> red -> orange -> pale yellow, piecewise
# linear between these anchors (position, R, G, B). Lightness increases monotonically.
_ANCHORS = np.array([
    [0.00, 0, 0, 4],
    [0.14, 30, 12, 70],
    [0.29, 85, 16, 110],
    [0.43, 136, 34, 106],
    [0.57, 186, 54, 85],
    [0.71, 227, 89, 51],
    [0.86, 249, 149, 10],
    [0.95, 246, 210, 60],
    [1.00, 252, 255, 164],
], dtype=np.float64)
_LUT = np.stack(
    [np.interp(np.linspace(0.0, 1.0, 256), _ANCHORS[:, 0], _ANCHORS[:, c]) for c in (1, 2, 3)],
    axis=-1,
).round().astype(np.uint8)


def colormap(values: np.ndarray, vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """Map values to uint8 RGB (shape + (3,)) through the inferno-like ramp; NaN maps to vmin."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=vmin)
    span = vmax - vmin if vmax > vmin else 1.0
    idx = np.clip((v - vmin) / span * 255.0 + 0.5, 0, 255).astype(np.intp)
    return _LUT[idx]


def _nice_step(vmax: float, n: int = 5) -> float:
    raw = vmax / n
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= m * mag:
            return m * mag
    return 10.0 * mag


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v - round(v)) > 1e-9 else str(int(round(v)))


def robust_vmax(de_map: np.ndarray, floor: float = 10.0) -> float:
    """Default top of a Delta E color scale: the 99th percentile rounded up, at least ``floor``."""
    m = np.asarray(de_map, dtype=np.float64)
    finite = m[np.isfinite(m)]
    p99 = float(np.percentile(finite, 99)) if finite.size else 0.0
    return max(float(floor), float(math.ceil(p99)))


def render_heatmap(de_map: np.ndarray, vmax: float | None = None,
                   path: str | Path | None = None, label: str = "dE00") -> np.ndarray:
    """Colormapped Delta E map (uint8 RGB) with a color bar and tick labels on its right.

    vmax (the top of the scale) defaults to the 99th percentile rounded up, at least 10; values
    above it saturate. If path is given the image is also saved as PNG. The canvas is at least
    120 pixels tall so the scale stays readable for small maps (the map sits at the top left).
    """
    from PIL import Image, ImageDraw, ImageFont

    m = np.asarray(de_map, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"expected an H x W map, got shape {m.shape}")
    h, w = m.shape
    vmax = robust_vmax(m) if vmax is None else float(vmax)
    if not vmax > 0:
        raise ValueError(f"vmax must be positive, got {vmax}")
    m = np.where(np.isfinite(m), m, np.where(np.isnan(m), 0.0, vmax))
    body = colormap(m, 0.0, vmax)

    font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_size(s):
        x0, y0, x1, y1 = probe.textbbox((0, 0), s, font=font)
        return x1 - x0, y1 - y0

    step = _nice_step(vmax)
    ticks = [k * step for k in range(int(math.floor(vmax / step + 1e-9)) + 1)]
    if vmax - ticks[-1] > 0.35 * step:
        ticks.append(vmax)
    labels = [_fmt(t) for t in ticks]
    if abs(ticks[-1] - vmax) < 1e-9:
        labels[-1] += "+"  # values above vmax saturate
    text_h = max(text_size("0")[1], 8)
    label_w = max(text_size(s)[0] for s in labels + [label])

    gap, bar_w, tick_len, margin = 8, 16, 4, 4
    top = text_h + 2 * margin  # room for the caption above the bar
    canvas_h = max(h, 120)
    bar_x0 = w + gap
    bar_y0, bar_y1 = top, canvas_h - margin - text_h // 2 - 1
    bar_h = bar_y1 - bar_y0 + 1
    canvas_w = bar_x0 + bar_w + tick_len + 3 + label_w + margin

    canvas = np.full((canvas_h, canvas_w, 3), 255, dtype=np.uint8)
    canvas[:h, :w] = body
    ramp = np.linspace(vmax, 0.0, bar_h)[:, None].repeat(bar_w, axis=1)
    canvas[bar_y0:bar_y1 + 1, bar_x0:bar_x0 + bar_w] = colormap(ramp, 0.0, vmax)

    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    draw.rectangle([bar_x0 - 1, bar_y0 - 1, bar_x0 + bar_w, bar_y1 + 1], outline=(0, 0, 0))
    draw.text((bar_x0, margin), label, fill=(0, 0, 0), font=font)
    for t, s in zip(ticks, labels):
        y = bar_y1 - int(round(t / vmax * (bar_h - 1)))
        x = bar_x0 + bar_w
        draw.line([(x, y), (x + tick_len, y)], fill=(0, 0, 0))
        _, th = text_size(s)
        draw.text((x + tick_len + 3, y - th // 2 - 1), s, fill=(0, 0, 0), font=font)
    out = np.asarray(img, dtype=np.uint8).copy()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(out).save(path, format="PNG")
    return out
