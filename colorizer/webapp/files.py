"""The app's files: its cache folder, each request's result folder, the example photos, the
previews and PNGs of results, the swatches of suggested colors.

Gradio-free (PIL and numpy only).
"""
from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from .. import lab
from ..settings import settings

PREVIEW_SIDE = 1600  # longest side of the before/after preview (the download is full size)
PNG_LEVEL = 1  # zlib level of the full-resolution PNGs: lossless either way, level 1 is fastest
OUTPUT_TTL_S = 3 * 3600  # result files older than this are removed
SWATCH_SIDE = 48

EXAMPLES = [  # (file name, scikit-image sample, gray?) written at start-up, see example_photos()
    ("cameraman_gray.png", "camera", True),
    ("chelsea_gray.jpg", "chelsea", True),
    ("astronaut.jpg", "astronaut", False),
    ("coffee.jpg", "coffee", False),
    ("rocket.jpg", "rocket", False),
]

WRITER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="png")  # writes PNGs beside other work


def cache_root() -> Path:
    """Where the app writes examples and results: $COLORIZER_APP_CACHE, else <tmp>/colorizer-app
    (inside the system temp folder, which Gradio serves files from)."""
    d = settings().app_cache
    d.mkdir(parents=True, exist_ok=True)
    return d


def new_output_dir() -> Path:
    """A new folder for one request's results (removing earlier ones past OUTPUT_TTL_S)."""
    root = cache_root() / "results"
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in root.iterdir():  # results of earlier requests, past their time to live
        try:
            if now - old.stat().st_mtime > OUTPUT_TTL_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return Path(tempfile.mkdtemp(prefix="r", dir=root))


def example_photos() -> list[str]:
    """Sample photos shipped with scikit-image, written once to the cache folder (no downloads)."""
    from skimage import data

    d = cache_root() / "examples"
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, sample, gray in EXAMPLES:
        p = d / name
        if not p.is_file():
            arr = getattr(data, sample)()
            im = Image.fromarray(arr)
            if gray and im.mode != "L":
                im = Image.fromarray(lab.gray_rgb_from_lightness(lab.rgb_to_lightness(arr))).convert("L")
            tmp = p.with_suffix(".part" + p.suffix)
            im.save(tmp, quality=92) if p.suffix == ".jpg" else im.save(tmp)
            tmp.replace(p)
        paths.append(str(p))
    return paths


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """load_image's output (uint8, uint16 or float in [0, 1]) as uint8 for display and metrics."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        return ((arr.astype(np.float32) + 128.5) / 257.0).clip(0, 255).astype(np.uint8)
    return (np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)


def preview(arr: np.ndarray, path: Path, side: int) -> str:
    """A JPEG of the photo at most `side` px long, written to `path`."""
    im = Image.fromarray(to_uint8(arr))
    if max(im.size) > side:
        s = side / max(im.size)
        im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS,
                       reducing_gap=2.0)
    if im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    im.save(path, format="JPEG", quality=90)
    return str(path)


def display_name(path) -> str:
    """A file's stem, safe to use in the names of result files."""
    stem = Path(str(path)).stem or "photo"
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem)[:80] or "photo"


def swatch(hexcode: str) -> str:
    """A small square of one color, as a file (written once per color)."""
    d = cache_root() / "swatches"
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{hexcode.lstrip('#').lower()}.png"
    if not p.is_file():
        tmp = p.with_name(f"{p.stem}.{uuid.uuid4().hex[:8]}.part.png")
        Image.new("RGB", (SWATCH_SIDE, SWATCH_SIDE), hexcode).save(tmp)
        tmp.replace(p)
    return str(p)
