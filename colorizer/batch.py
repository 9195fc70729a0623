"""Colorizing many photos into a folder: listing the inputs, naming the outputs, writing them,
and the `colorize --workers N` process pool.

Shared by `python -m colorizer colorize` (one process or N) and `colorize-ray` (colorizer/scale.py),
so that every path gives the same output names and the same bytes. It reads the input photos,
writes only the output files it names (each through a temporary file in the output folder, renamed
into place when complete, so a stopped run never leaves a half-written output) and, with
--workers N, starts N local processes (multiprocessing, spawn) and sets their torch thread count.
"""
from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ColorizerError

FORMATS = {"png": ".png", "jpeg": ".jpg"}
DEFAULT_JPEG_QUALITY = 90


@dataclass(frozen=True)
class Listing:
    """The photos found in the inputs (folders walked recursively, in sorted order) and the inputs
    that do not exist."""
    files: list[Path]
    missing: list[Path]


@dataclass(frozen=True)
class OutputFormat:
    """How outputs are encoded: PNG (lossless, the default) or JPEG with a quality of 1..95."""
    kind: str = "png"
    quality: int = DEFAULT_JPEG_QUALITY

    def __post_init__(self):
        if self.kind not in FORMATS:
            raise ValueError(f"unknown output format {self.kind!r}: use " + " or ".join(FORMATS))
        if not 1 <= int(self.quality) <= 95:
            raise ValueError(f"JPEG quality must be from 1 to 95, not {self.quality}")

    @property
    def suffix(self) -> str:
        return FORMATS[self.kind]


@dataclass
class Outcome:
    """What a run did: how many photos were written, and (input, reason) for each one skipped."""
    total: int
    done: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None  # set when the run stopped early (a worker died, the model did not load)


def find_photos(inputs) -> Listing:
    """Image files among `inputs` (files as given; folders: their image files, recursively)."""
    from .data import IMAGE_EXTENSIONS
    files, missing = [], []
    for p in map(Path, inputs):
        if p.is_dir():
            files += [q for q in sorted(p.rglob("*")) if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS]
        elif p.is_file():
            files.append(p)
        else:
            missing.append(p)
    return Listing(files, missing)


def output_names(files, out_dir: Path, suffix: str = ".png") -> list[Path]:
    """OUT_DIR/<stem><suffix>, with a numeric suffix where two inputs share a stem."""
    used, names = set(), []
    for f in files:
        name, k = f"{f.stem}{suffix}", 1
        while name in used:
            k += 1
            name = f"{f.stem}_{k}{suffix}"
        used.add(name)
        names.append(Path(out_dir) / name)
    return names


def save_output(rgb, dst: Path, fmt: OutputFormat = OutputFormat()) -> None:
    """Write one colorized photo (uint8 H x W x 3) to dst: complete or not at all."""
    from PIL import Image
    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.part")
    try:
        if fmt.kind == "png":
            Image.fromarray(rgb).save(tmp, format="PNG")
        else:
            Image.fromarray(rgb).save(tmp, format="JPEG", quality=int(fmt.quality))
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_model(name: str) -> str:
    """The registered name of model `name`, without loading it; the same errors as load_colorizer
    (unknown name, weights missing) with their messages."""
    from .registry import resolve
    entry = resolve(name)
    if not entry.available:
        from . import load_colorizer
        load_colorizer(name, device="cpu")  # raises WeightsError, saying how to get the weights
    return entry.name


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# --- one process ---------------------------------------------------------------------------------

def colorize_serial(c, pairs, quiet: bool = False, fmt: OutputFormat = OutputFormat()) -> Outcome:
    """Colorize (src, dst) pairs one after the other with the loaded Colorizer c; photos that
    cannot be read are reported on stderr and skipped while the rest go on."""
    from tqdm import tqdm
    out = Outcome(total=len(pairs))
    t0 = time.perf_counter()
    bar = tqdm(pairs, unit="img", desc=f"colorize ({c.name})", disable=quiet or None)
    for src, dst in bar:
        try:
            rgb = c.colorize(src)
        except ColorizerError as exc:
            out.failed.append((src, str(exc)))
            tqdm.write(f"skipped {src}: {exc}", file=sys.stderr)
            continue
        save_output(rgb, dst, fmt)
        out.done += 1
    bar.close()
    out.seconds = time.perf_counter() - t0
    return out


# --- N processes ---------------------------------------------------------------------------------

_worker = None  # (Colorizer or None, load error or None, OutputFormat) of this pool process


def _init_worker(model: str, device, input_size, threads: int, fmt: OutputFormat) -> None:
    global _worker
    import torch
    torch.set_num_threads(threads)
    from . import load_colorizer
    try:
        _worker = (load_colorizer(model, device=device, input_size=input_size), None, fmt)
    except ColorizerError as exc:
        _worker = (None, str(exc), fmt)


def _colorize_one(index: int, src: str, dst: str) -> tuple[int, str | None, str | None]:
    """(index, reason the photo was skipped or None, fatal error or None)."""
    c, load_error, fmt = _worker
    if c is None:
        return index, None, load_error
    try:
        rgb = c.colorize(src)
    except ColorizerError as exc:
        return index, str(exc), None
    save_output(rgb, Path(dst), fmt)
    return index, None, None


def colorize_parallel(pairs, workers: int, model: str, device=None, input_size=None,
                      quiet: bool = False, fmt: OutputFormat = OutputFormat(),
                      label: str = "") -> Outcome:
    """Colorize (src, dst) pairs with `workers` processes, each with cores() // workers torch
    threads and the model loaded once; a process takes the next photo when it is free. Each
    process writes its outputs itself, so those written stay written whatever happens later."""
    import multiprocessing
    from tqdm import tqdm
    out = Outcome(total=len(pairs))
    threads = max(1, cores() // workers)
    t0 = time.perf_counter()
    bar = tqdm(total=len(pairs), unit="img", desc=f"colorize ({label or model}, {workers} processes)",
               disable=quiet or None)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker,
                               initargs=(model, device, input_size, threads, fmt))
    failed: dict[int, str] = {}
    try:
        futures = [pool.submit(_colorize_one, i, str(src), str(dst)) for i, (src, dst) in enumerate(pairs)]
        for fut in as_completed(futures):
            index, reason, fatal = fut.result()
            if fatal:
                out.error = fatal
                break
            if reason is not None:
                failed[index] = reason
                tqdm.write(f"skipped {pairs[index][0]}: {reason}", file=sys.stderr)
            else:
                out.done += 1
            bar.update(1)
    except BrokenProcessPool as exc:
        out.error = f"a worker process died ({exc or 'killed'}); the outputs written so far are kept"
    finally:
        bar.close()
        pool.shutdown(wait=True, cancel_futures=True)
    out.failed = [(pairs[i][0], failed[i]) for i in sorted(failed)]
    out.seconds = time.perf_counter() - t0
    return out
