"""The one processing path of every stimulus, real, colorized or attention check.

A source photo becomes its real stimulus through load_source (EXIF rotation applied, center crop
to a square, Lanczos resize); every version then goes through the same function (`encode`): a
JPEG round trip at fixed quality, chroma subsampling and the standard Huffman tables (so that
every version carries the same compression artifacts), stored as an uncompressed PNG without any
metadata. The files of one pixel size are therefore byte for byte the same length, with the same
header, and hold no tables whose size tracks the color detail (optimized JPEG tables did: their
size alone told real from colorized with an AUC of 0.95).

May touch: pixels and bytes only, and the photo file that load_source is given (read); no
database, no other files.
"""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from .survey import SurveyError

JPEG_QUALITY = 90
JPEG_SUBSAMPLING = 2  # 4:2:0, what cameras and the web use
GRAY_CHROMA = 2.0  # mean |ab| below this: a gray photo, not usable as a real color photo


def to_rgb8(a: np.ndarray) -> np.ndarray:
    """gray or RGB, uint8 / uint16 / float in [0, 1] -> RGB uint8."""
    a = np.asarray(a)
    if a.dtype == np.uint16:
        a = (a.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float32), 0, 1) * 255.0 + 0.5).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return np.ascontiguousarray(a[..., :3])


def square_resize(rgb: np.ndarray, size: int) -> np.ndarray:
    """Center crop to a square, then Lanczos resize to size x size."""
    h, w = rgb.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    im = Image.fromarray(rgb[y:y + s, x:x + s])
    if s != size:
        im = im.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(im.convert("RGB"))


def encode(rgb: np.ndarray) -> bytes:
    """The encoder every stimulus goes through: a baseline JPEG round trip (fixed quality and
    subsampling, standard tables), then an uncompressed PNG of the decoded pixels with no
    metadata. Its length depends only on the pixel size."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB").save(
        buf, format="JPEG", quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING, optimize=False)
    buf.seek(0)
    with Image.open(buf) as im:
        pixels = np.asarray(im.convert("RGB"))
    return stored_png(pixels)


def pair_metrics(generated: bytes, real: bytes) -> dict:
    """PSNR, mean Delta E 2000 and the colorfulness ratio of a colorized stimulus against its real
    version, both as participants see them (decoded from the encoder's files)."""
    from colorizer import metrics
    g = np.asarray(Image.open(io.BytesIO(generated)).convert("RGB"))
    r = np.asarray(Image.open(io.BytesIO(real)).convert("RGB"))
    m = metrics.evaluate_pair(g, r)
    ratio = m["colorfulness_pred"] / m["colorfulness_truth"] if m["colorfulness_truth"] > 0 else None
    psnr = m["psnr"] if np.isfinite(m["psnr"]) else None
    return dict(psnr=psnr, de2000=m["de2000"], colorfulness=ratio)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def stored_png(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB PNG with no filtering (filter byte 0 on every row, where encoders choose a
    filter per row from its content) and no compression (stored deflate blocks), and only the
    IHDR, IDAT and IEND chunks: every byte outside the pixels is the same for one pixel size."""
    h, w = rgb.shape[:2]
    rows = np.zeros((h, 1 + 3 * w), dtype=np.uint8)
    rows[:, 1:] = np.ascontiguousarray(rgb, dtype=np.uint8).reshape(h, 3 * w)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 0)) + _chunk(b"IEND", b""))


def mean_chroma(rgb: np.ndarray) -> float:
    from colorizer import lab
    ab = lab.rgb_to_lab(rgb)[..., 1:]
    return float(np.sqrt((ab.astype(np.float32) ** 2).sum(-1)).mean())


def attention_version(rgb: np.ndarray) -> np.ndarray:
    """Hue turned by 180 degrees (a, b negated) and saturation raised: skies go orange, faces
    blue-green; unmistakably wrong for anyone who looks."""
    from colorizer import lab
    labim = lab.rgb_to_lab(rgb)
    ab = -1.6 * labim[..., 1:]
    return lab.l_ab_to_rgb_uint8(labim[..., 0], ab)


def load_source(path_or_image, size: int) -> np.ndarray:
    """A source photo -> the size x size RGB real stimulus. Raises ImageError (unreadable) or
    SurveyError (gray photo)."""
    from colorizer.pipeline import load_image
    rgb = square_resize(to_rgb8(load_image(path_or_image)), size)
    if mean_chroma(rgb) < GRAY_CHROMA:
        raise SurveyError("it is a gray (black-and-white) photo: the pool needs color photos")
    return rgb
