"""Checks on user uploads before anything is decoded (used by the web app; no gradio here).

`inspect_image` reads only an image's header: it refuses empty files, files that are not images,
decompression bombs (more pixels than a stated limit), images too small or too elongated to
colorize, and says what it will do with the rest (EXIF rotation, 16 bits, CMYK, transparency,
animation). `read_zip_images` takes the images out of a zip archive with limits on their number
and size, never writing archive paths to disk.
"""
from __future__ import annotations

import io
import os
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .errors import ImageError

MAX_MEGAPIXELS = 40.0  # default pixel limit of the app (a 12 MP photo is well inside it)
MIN_SIDE = 8  # smaller images carry no usable structure for the network
MAX_ASPECT = 100.0  # longest side / shortest side (a 360-degree panorama is about 10 to 20)
ZIP_MAX_FILES = 500
ZIP_MAX_TOTAL_BYTES = 2_000_000_000  # uncompressed
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".gif", ".jfif"}

_EXIF_ORIENTATION = 0x0112
_READABLE = "PNG, JPEG, TIFF, WebP, BMP or GIF"


def max_pixels_from_env() -> int:
    """The pixel limit: $COLORIZER_MAX_MEGAPIXELS (megapixels) or MAX_MEGAPIXELS."""
    try:
        mp = float(os.environ.get("COLORIZER_MAX_MEGAPIXELS", MAX_MEGAPIXELS))
    except ValueError:
        mp = MAX_MEGAPIXELS
    return int(mp * 1_000_000)


@dataclass
class ImageInfo:
    """What an image header says, with the sides as they will be after EXIF rotation."""
    width: int
    height: int
    format: str
    mode: str
    frames: int = 1
    orientation: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


def _claimed_pixels(exc: Exception) -> int | None:
    m = re.search(r"\((\d+) pixels\)", str(exc))
    return int(m.group(1)) if m else None


def inspect_image(source, name: str = "the image", max_pixels: int | None = None) -> ImageInfo:
    """Read an image's header (a path or bytes) without decoding its pixels.

    Raises ImageError with a message for users when the file is empty, not an image, over
    `max_pixels` (default: max_pixels_from_env()), smaller than MIN_SIDE or more elongated
    than MAX_ASPECT.
    """
    max_pixels = max_pixels_from_env() if max_pixels is None else int(max_pixels)
    limit = f"{max_pixels / 1e6:g} MP ({max_pixels:,} pixels)"
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise ImageError(f"{name} is empty (0 bytes)")
        opener = lambda: Image.open(io.BytesIO(source))  # noqa: E731
    else:
        p = Path(source)
        if not p.is_file():
            raise ImageError(f"{name} was not received (no file at {p.name})")
        if p.stat().st_size == 0:
            raise ImageError(f"{name} is empty (0 bytes)")
        opener = lambda: Image.open(p)  # noqa: E731
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with opener() as im:  # Image.open reads the header only
                w, h = im.size
                fmt = im.format or "?"
                mode = im.mode
                frames = int(getattr(im, "n_frames", 1) or 1)
                transparent = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
                try:
                    orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
                except Exception:  # a broken EXIF block: the pixels are used as stored
                    orientation = 1
    except Image.DecompressionBombError as exc:
        n = _claimed_pixels(exc)
        size = f"claims {n:,} pixels ({n / 1e6:.0f} MP)" if n else "claims far too many pixels"
        raise ImageError(f"{name} {size}: over the limit of {limit}. It was refused before "
                         "decoding; scale it down and try again.") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{name} is not an image file that can be read ({_READABLE})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name} is damaged or truncated and cannot be read ({exc})") from exc

    if w * h > max_pixels:
        raise ImageError(f"{name} is {w:,} x {h:,} pixels ({w * h / 1e6:.1f} MP): over the limit of "
                         f"{limit}. It was refused before decoding; scale it down and try again.")
    if min(w, h) < MIN_SIDE:
        raise ImageError(f"{name} is only {w} x {h} pixels: too small to colorize (at least "
                         f"{MIN_SIDE} x {MIN_SIDE} pixels are needed)")
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise ImageError(f"{name} is {w:,} x {h:,} pixels: more elongated than 1:{MAX_ASPECT:g}, "
                         "which the app does not colorize; crop it into parts")

    notes = []
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    if orientation != 1:
        notes.append("turned upright as its EXIF orientation says")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        notes.append("16-bit image: its lightness is read at full precision; the PNG you get is 8-bit")
    if mode == "CMYK":
        notes.append("CMYK image: converted to RGB before its lightness is taken")
    if transparent:
        notes.append("transparency is not kept: the colorized PNG is opaque")
    if frames > 1:
        notes.append(f"animated {fmt}: the first of its {frames} frames is colorized")
    return ImageInfo(width=w, height=h, format=fmt, mode=mode, frames=frames,
                     orientation=orientation, notes=notes)


def read_zip_images(path, max_files: int = ZIP_MAX_FILES,
                    max_total_bytes: int = ZIP_MAX_TOTAL_BYTES) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The image files inside a zip archive as (file name, bytes), and lines about what was skipped.

    Only names with an image suffix are read; folders, hidden files and macOS resource forks are
    skipped. The archive is refused (ImageError) when it is not a zip, holds more than max_files
    images, or its images would unpack to more than max_total_bytes.
    """
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImageError(f"{Path(path).name} is not a zip archive that can be read ({exc})") from exc
    skipped: list[str] = []
    with zf:
        members = []
        for info in zf.infolist():
            base = info.filename.replace("\\", "/").rsplit("/", 1)[-1]
            if info.is_dir() or not base:
                continue
            if base.startswith(".") or "__MACOSX/" in info.filename:
                continue
            if Path(base).suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append(f"{info.filename}: not an image file name")
                continue
            members.append((info, base))
        if len(members) > max_files:
            raise ImageError(f"{Path(path).name} holds {len(members)} images; at most {max_files} "
                             "are colorized at once: split the archive")
        total = sum(i.file_size for i, _ in members)
        if total > max_total_bytes:
            raise ImageError(f"{Path(path).name} would unpack to {total / 1e9:.1f} GB of images; at "
                             f"most {max_total_bytes / 1e9:g} GB are accepted")
        out = []
        for info, base in members:
            try:
                data = zf.read(info)
            except Exception as exc:  # damaged member, unsupported compression, bad CRC
                skipped.append(f"{info.filename}: cannot be unpacked ({exc})")
                continue
            out.append((base, data))
    return out, skipped
