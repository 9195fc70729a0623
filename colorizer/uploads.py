"""Checks on user uploads before anything is decoded (used by the web app; no gradio here).

`inspect_image` reads only an image's header: it refuses empty files, files that are not images,
decompression bombs (more pixels than a stated limit), files of more than MAX_FRAMES frames or
pages (counted up to the cap, never walked to the end), images too small or too elongated to
colorize, and says what it will do with the rest (EXIF rotation, 16 bits, CMYK, transparency,
animation). `ZipImages` lists the images of a zip archive from its central directory and reads
them one at a time as streams, counting the bytes actually inflated (not what a header says)
against a cap per image and an InflateBudget per request; `read_zip_images` is the same as a
list. Archive paths are never written to disk. `shown_name` cuts a name from an upload or an
archive to a length fit for a message.

PIL and the standard library only (no torch work, no gradio); never writes to disk.
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

from .data import IMAGE_EXTENSIONS
from .errors import ImageError
from .settings import settings

MIN_SIDE = 8  # smaller images carry no usable structure for the network
MAX_ASPECT = 100.0  # longest side / shortest side (a 360-degree panorama is about 10 to 20)
MAX_FRAMES = 1000  # frames of an animation or pages of a TIFF; only the first is colorized
ZIP_MAX_FILES = 500
NAME_MAX_CHARS = 80  # a file name longer than this is cut in messages
ZIP_MAX_MEMBER_BYTES = 200 * 2**20  # one image inside an archive, as inflated
ZIP_MAX_TOTAL_BYTES = 1 * 2**30  # all the images of one request, as inflated
_CHUNK = 1 << 20
# An upload may be anything a user's camera or browser saves: the photo suffixes that training
# reads (IMAGE_EXTENSIONS) plus GIF (animations: the first frame is colorized) and JFIF (JPEG as
# some browsers save it). Training folders keep to IMAGE_EXTENSIONS.
UPLOAD_EXTRA_SUFFIXES = frozenset({".gif", ".jfif"})
IMAGE_SUFFIXES = set(IMAGE_EXTENSIONS) | UPLOAD_EXTRA_SUFFIXES  # suffixes taken from an upload or archive

_EXIF_ORIENTATION = 0x0112
_READABLE = "PNG, JPEG, TIFF, WebP, BMP or GIF"


def max_pixels_from_env() -> int:
    """The pixel limit: $COLORIZER_MAX_MEGAPIXELS (megapixels) or MAX_MEGAPIXELS."""
    return settings().max_pixels


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
                frames = _count_frames(im, MAX_FRAMES)
                transparent = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
                try:
                    orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
                except Exception:  # a broken EXIF block: the pixels are used as stored
                    orientation = 1
    except _TooManyFrames as exc:
        raise ImageError(f"{name} has more than {MAX_FRAMES:,} frames or pages: only files of at most "
                         f"{MAX_FRAMES:,} are accepted (the first frame is colorized); save that frame "
                         "alone and try again") from exc
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
    if orientation in range(2, 9):
        notes.append("turned upright as its EXIF orientation says")
    elif orientation != 1:
        notes.append(f"its EXIF orientation ({orientation}) is not a valid one: the pixels are used as stored")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        notes.append("16-bit image: its lightness is read at full precision; the PNG you get is 8-bit")
    elif mode == "F":
        notes.append("32-bit floating-point image: read as values from 0 to 1 (brighter values show "
                     "as white); the PNG you get is 8-bit")
    if mode == "CMYK":
        notes.append("CMYK image: converted to RGB before its lightness is taken")
    if transparent:
        notes.append("transparency is not kept: the colorized PNG is opaque")
    if frames > 1:
        notes.append(f"animated {fmt}: the first of its {frames} frames is colorized")
    if _ends_early(source, fmt):
        notes.append(f"the file ends before its {fmt} end marker, so it may be cut short: what it "
                     "holds was colorized, check the bottom of the result")
    return ImageInfo(width=w, height=h, format=fmt, mode=mode, frames=frames,
                     orientation=orientation, notes=notes)


_TAIL = 64 * 1024  # JPEG writers may put a little data after the end marker


def _ends_early(source, fmt: str) -> bool:
    """True if a PNG has no IEND chunk or a JPEG no end-of-image marker near its end, or a WebP
    is shorter than its RIFF header says: the file was cut (Pillow decodes what it can of it)."""
    if fmt not in ("PNG", "JPEG", "WEBP"):
        return False
    try:
        if isinstance(source, (bytes, bytearray)):
            size, head, tail = len(source), bytes(source[:12]), bytes(source[-_TAIL:])
        else:
            with open(source, "rb") as f:
                head = f.read(12)
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - _TAIL))
                tail = f.read()
    except OSError:
        return False
    if fmt == "PNG":
        return b"IEND" not in tail[-1024:]
    if fmt == "JPEG":
        return b"\xff\xd9" not in tail
    return head[:4] == b"RIFF" and int.from_bytes(head[4:8], "little") + 8 > size


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


class _TooManyFrames(Exception):
    pass


def _count_frames(im, cap: int) -> int:
    """Frames (pages) of an open image, counted by seeking one at a time up to cap (Pillow's
    n_frames walks a TIFF's every page, in time that grows with the square of their number)."""
    if not getattr(im, "is_animated", False):
        return 1
    n = 1
    try:
        while True:
            im.seek(n)
            n += 1
            if n > cap:
                raise _TooManyFrames(n)
    except EOFError:
        pass
    finally:
        try:
            im.seek(0)
        except (EOFError, OSError, ValueError):
            pass
    return n


@dataclass
class InflateBudget:
    """Bytes that the archives of one request may inflate to, counted as they are inflated."""
    total: int = ZIP_MAX_TOTAL_BYTES
    used: int = 0  # inflated so far
    declared: int = 0  # what the archives listed so far declare

    @property
    def left(self) -> int:
        return self.total - self.used


class ZipImages:
    """The image files of a zip archive: listed from its central directory (nothing inflated), then
    read one at a time, as a stream, while iterating: (file name, bytes) or (file name, ImageError).

    A member is stopped as soon as what it inflates to passes its header's size, the per-image cap,
    or what is left of the request's budget; only the member being read is in memory. Refused at
    once (ImageError) when the file is not a zip, holds more than max_files images, or its images
    declare more bytes than the budget holds.
    """

    def __init__(self, path, max_files: int = ZIP_MAX_FILES, budget: InflateBudget | None = None,
                 max_member_bytes: int = ZIP_MAX_MEMBER_BYTES):
        self.path, self.name = path, Path(path).name
        self.budget = budget or InflateBudget()
        self.max_member = max_member_bytes
        self.skipped: list[str] = []
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ImageError(f"{self.name} is not a zip archive that can be read ({exc})") from exc
        with zf:
            infos = zf.infolist()
        self.members = []
        for info in infos:
            base = info.filename.replace("\\", "/").rsplit("/", 1)[-1]
            if info.is_dir() or not base:
                continue
            if base.startswith(".") or "__MACOSX/" in info.filename:
                continue
            if Path(base).suffix.lower() not in IMAGE_SUFFIXES:
                self.skipped.append(f"{shown_name(info.filename)}: not an image file name")
                continue
            self.members.append((info, shown_name(base)))
        if len(self.members) > max_files:
            raise ImageError(f"{self.name} holds {len(self.members)} images; at most {max_files} "
                             "are colorized at once: split the archive")
        declared = sum(i.file_size for i, _ in self.members)
        if self.budget.declared + declared > self.budget.total:
            raise ImageError(f"{self.name} would unpack to {_size(declared)} of images"
                             + (f" (with the other archives, {_size(self.budget.declared + declared)})"
                                if self.budget.declared else "")
                             + f"; at most {_size(self.budget.total)} are accepted per request")
        self.budget.declared += declared

    def __len__(self) -> int:
        return len(self.members)

    def _read(self, zf, info) -> bytes:
        limit = min(info.file_size, self.max_member, self.budget.left)
        parts, got = [], 0
        with zf.open(info) as f:
            while True:
                chunk = f.read(min(_CHUNK, limit + 1 - got))
                if not chunk:
                    break
                got += len(chunk)
                self.budget.used += len(chunk)
                if got > limit:
                    parts.clear()  # the error must not keep what was inflated alive
                    name = shown_name(info.filename)
                    if got > info.file_size:
                        raise ImageError(f"{name}: inflates to more than the {info.file_size:,} "
                                         "bytes its header declares (a damaged or hostile archive)")
                    if got > self.max_member:
                        raise ImageError(f"{name}: more than {self.max_member / 2**20:.0f} MB "
                                         "unpacked, over the limit for one image")
                    raise ImageError(f"{name}: the archives of this request would unpack to "
                                     f"more than {_size(self.budget.total)}")
                parts.append(chunk)
        return b"".join(parts)

    def __iter__(self):
        with zipfile.ZipFile(self.path) as zf:
            for info, base in self.members:
                # an error is handed on without its traceback, whose frames would hold the
                # member's bytes for as long as the error is kept (it ends up in a report)
                try:
                    data = self._read(zf, info)
                except ImageError as exc:
                    data = exc.with_traceback(None)
                except Exception as exc:  # damaged member, unsupported compression, bad CRC
                    data = ImageError(f"{shown_name(info.filename)}: cannot be unpacked ({exc})")
                yield base, data
                del data


def shown_name(name, limit: int = NAME_MAX_CHARS) -> str:
    """A file name from a user or an archive, fit to put into a message: unprintable characters
    become '?', and a name longer than `limit` characters is cut (an ellipsis marks the cut).
    Where a message is shown as HTML or Markdown, the app escapes it as a whole."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(name))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def read_zip_images(path, max_files: int = ZIP_MAX_FILES,
                    max_total_bytes: int = ZIP_MAX_TOTAL_BYTES) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The image files inside a zip archive as (file name, bytes), and lines about what was skipped
    (ZipImages, read in full: for archives known to be small; the app streams them)."""
    z = ZipImages(path, max_files, InflateBudget(max_total_bytes))
    out, skipped = [], list(z.skipped)
    for base, data in z:
        if isinstance(data, ImageError):
            skipped.append(str(data))
        else:
            out.append((base, data))
    return out, skipped
