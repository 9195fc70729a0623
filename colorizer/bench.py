"""Speed benchmark: network images per second at 256 x 256 for each architecture, and time and
peak extra memory to colorize a 12-megapixel photo end to end with the default model.

Models whose weights are missing are timed with random weights (speed does not depend on them).
Every network is timed as colorizer.load_colorizer serves it: BatchNorm folded where it follows a
convolution, channels_last layout (colorizer/models/inference.py).
"""
from __future__ import annotations

import io
import os
import statistics
import time

import numpy as np
import torch

from .models import build_model
from .models.inference import optimize_for_inference
from .pipeline import Colorizer
from .registry import all_entries, resolve

# architectures timed with random weights when no weights are present (name -> (arch, args))
RANDOM_ARCHS = {
    "eccv16": ("eccv16", {}),
    "siggraph17": ("siggraph17", {}),
}
EXTRA_ARCHS = {
    "unet (plain)": ("unet", {}),
    "efficientnet_lite0 U-Net": ("backbone_unet", {"encoder": "efficientnet_lite0"}),
    "efficientnet_lite1 U-Net": ("backbone_unet", {"encoder": "efficientnet_lite1"}),
    "efficientnet_lite2 U-Net": ("backbone_unet", {"encoder": "efficientnet_lite2"}),
    "resnet18 U-Net": ("backbone_unet", {"encoder": "resnet18"}),
    "vgg16 U-Net": ("backbone_unet", {"encoder": "vgg16"}),
}


def images_per_second(colorizers: list[Colorizer], size: int = 256, batch: int = 8,
                      min_seconds: float = 3.0, max_rounds: int = 50) -> list[float]:
    """Network throughput (normalization, forward, ab decoding) on batches of size x size, for
    several models at once: the models take turns, one batch each per round, and each gets the
    median of its rounds. Timing them one after the other let the machine's state (other load,
    the first model's warm-up) favour some of them by a third in our runs; taking turns gives
    every model the same conditions, which is what a ratio between them needs."""
    rng = np.random.default_rng(0)
    L = rng.uniform(0, 100, (batch, size, size)).astype(np.float32)
    for c in colorizers:  # warm-up
        for _ in range(2):
            c.predict_small(L)
    times: list[list[float]] = [[] for _ in colorizers]
    start = time.perf_counter()
    budget = min_seconds * len(colorizers)
    while len(times[0]) < max_rounds and (time.perf_counter() - start < budget or len(times[0]) < 3):
        for c, ts in zip(colorizers, times):
            t = time.perf_counter()
            c.predict_small(L)
            ts.append(time.perf_counter() - t)
    return [batch / statistics.median(ts) for ts in times]


def _colorizer_for(name: str) -> tuple[Colorizer, str]:
    """A registered model, loaded when its weights are present, else built with random weights."""
    from . import load_colorizer
    entry = resolve(name)
    if entry.available:
        return load_colorizer(entry.name, device="cpu"), "trained weights"
    arch, args = RANDOM_ARCHS.get(entry.name, (None, None))
    if arch is None:
        raise FileNotFoundError(entry.path)
    return _random_colorizer(arch, args, entry.name), "random weights"


def _random_colorizer(arch: str, args: dict, name: str) -> Colorizer:
    """An architecture with random weights, made ready for inference as load_colorizer makes
    trained ones (every model timed the same way)."""
    return Colorizer(optimize_for_inference(build_model(arch, **args)), name=name)


def test_photo(megapixels: float = 12.0) -> np.ndarray:
    """A natural photo (scikit-image's sample 'astronaut', upscaled) of about that many pixels."""
    from PIL import Image
    from skimage import data
    base = Image.fromarray(data.astronaut())
    w = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    h = int(round(w * 3 / 4))
    return np.asarray(base.resize((w, h), Image.BICUBIC))


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def big_photo_run(colorizer: Colorizer, photo: np.ndarray, repeats: int = 3) -> dict:
    """Time colorize() on an in-memory photo (median of repeats) and its peak extra memory;
    also the time including decoding the photo from a JPEG file in memory."""
    from PIL import Image
    colorizer.colorize(photo[:512, :512])  # warm-up at a small size
    can_peak = _reset_peak_rss()
    before = _rss_bytes()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = colorizer.colorize(photo)
        times.append(time.perf_counter() - t)
        del out
    peak = _peak_rss_bytes() if can_peak else None
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="JPEG", quality=92)
    data = buf.getvalue()
    t = time.perf_counter()
    colorizer.colorize(Image.open(io.BytesIO(data)))
    with_decode = time.perf_counter() - t
    return {
        "pixels": int(photo.shape[0] * photo.shape[1]),
        "size": f"{photo.shape[1]} x {photo.shape[0]}",
        "seconds_median": statistics.median(times),
        "seconds_all": times,
        "seconds_with_jpeg_decode": with_decode,
        "peak_extra_mb": None if peak is None else (peak - before) / 2**20,
    }


def run(models=None, extra_archs: bool = False, size: int = 256, batch: int = 8,
        min_seconds: float = 3.0, big: bool = True, megapixels: float = 12.0, threads=None,
        out=print) -> dict:
    if threads:
        torch.set_num_threads(threads)
    names = models or (["default"] + [n for n in RANDOM_ARCHS] +
                       [e.name for e in all_entries().values() if e.available and not e.official])
    seen, rows = set(), []
    out(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU count {os.cpu_count()}")
    out(f"network images per second at {size} x {size} (batch {batch}; the models take turns):")
    todo = []  # (label, name, colorizer, how)
    for name in names:
        entry = resolve(name)
        if entry.name in seen:
            continue
        seen.add(entry.name)
        try:
            c, how = _colorizer_for(entry.name)
        except (FileNotFoundError, Exception) as exc:  # report and go on with the others
            out(f"  {entry.name:<28} skipped: {exc}")
            continue
        label = entry.name + (" (default)" if resolve("default").name == entry.name else "")
        todo.append((label, entry.name, c, how))
    if extra_archs:
        for label, (arch, args) in EXTRA_ARCHS.items():
            try:
                c = _random_colorizer(arch, args, label)
            except Exception as exc:
                out(f"  {label:<28} skipped: {exc}")
                continue
            todo.append((label, label, c, "random weights"))
    speeds = images_per_second([t[2] for t in todo], size, batch, min_seconds) if todo else []
    for (label, name, _, how), ips in zip(todo, speeds):
        rows.append({"name": name, "images_per_s": ips, "weights": how})
        out(f"  {label:<28} {ips:8.2f} img/s   ({how})")
    result = {"throughput": rows, "size": size, "batch": batch, "threads": torch.get_num_threads()}
    by = {r["name"]: r["images_per_s"] for r in rows}
    default_name = resolve("default").name
    if default_name in by and "eccv16" in by:
        ratio = by[default_name] / by["eccv16"]
        result["default_vs_eccv16"] = ratio
        out(f"default ({default_name}) vs eccv16: {ratio:.1f}x the images per second")
    if big and default_name in by:
        from . import load_colorizer
        c = load_colorizer("default", device="cpu")
        r = big_photo_run(c, test_photo(megapixels))
        result["big_photo"] = r
        mem = "n/a" if r["peak_extra_mb"] is None else f"{r['peak_extra_mb']:.0f} MB"
        out(f"{megapixels:g} MP photo ({r['size']}), default model: {r['seconds_median']:.3f} s "
            f"(median of {len(r['seconds_all'])}: {', '.join(f'{t:.3f}' for t in r['seconds_all'])}), "
            f"peak extra memory {mem}; {r['seconds_with_jpeg_decode']:.3f} s including JPEG decoding")
    return result
