"""The Colorize tab of the web app (Gradio): one photo, compare models, batch.

This is the only module of the package that imports gradio; app.py at the repository root puts
the tab into the whole app. What lives where:

* models: loaded once per process and shared by every user, in a small cache keyed by model name
  and weights file, behind a lock (`get_model`);
* per-user data: each user's last result (the metrics step reads it), color hints and
  variations are gr.State;
* every event has an api_name, so gradio_client can call the app like any Gradio Space:
  `colorize`, `metrics`, `compare`, `batch`, `colorize_hints`, `suggest_colors`, `variations`,
  and the API-only `models`; the page's own controls (hint clicks, undo, picking a variation)
  are private events.

Every bad input ends in a gr.Error whose message says what is wrong (never a traceback), and an
error in one user's request does not touch anyone else's. Each request is priced before any work
starts (colorizer/budget.py); the events that work on full-resolution photos share one queue
group (HEAVY_GROUP) and run on their own lower-priority threads (`heavy`), and what a large
request allocated is handed back to the system afterwards (colorizer/memory.py).
"""
from __future__ import annotations

import contextvars
import functools
import html
import io
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw

from . import adjust, lab, memory, metrics
from .budget import BatchMeter, Budget, BudgetError, output_cost
from .errors import ColorizerError, ImageError
from .hints import ab_to_hex, colour_to_ab, parse_hints
from .pipeline import Colorizer, load_image
from .registry import DEFAULT_MODEL, REGISTRY, list_models, resolve
from .settings import settings
from .uploads import (IMAGE_SUFFIXES, ZIP_MAX_FILES, InflateBudget, ZipImages, inspect_image,
                      max_pixels_from_env, shown_name)

log = logging.getLogger("colorizer.app")

PREVIEW_SIDE = 1600  # longest side of the before/after preview (the download is full size)
COMPARE_SIDE = 1024  # longest side of each image in the compare gallery
COMPARE_MAX_MODELS = 12  # different models in one comparison (every shipped model fits)
HEAVY_GROUP = "colorize"  # the queue group of every event that does full-resolution work
METRICS_MAX_PIXELS = 2_000_000  # metrics of larger photos are measured on a reduced copy
HEATMAP_SIDE = 800
PNG_LEVEL = 1  # zlib level of the full-resolution PNGs: lossless either way, level 1 is fastest
OUTPUT_TTL_S = 3 * 3600  # result files older than this are removed
INPUT_SIZE_DEFAULT = 256
# the settings' ranges: the sliders show them and the handlers check them (API calls too)
INPUT_SIZE_MIN, INPUT_SIZE_MAX = 128, 1024
VIVIDNESS_MIN, VIVIDNESS_MAX = 0.0, 2.0


def setting_slider(minimum, maximum, *, label: str, what: str = "", **kw) -> gr.Slider:
    """A gr.Slider whose value, from the page or the API, must be a finite number: anything else
    gets a message that names the setting (`what`, default the label) and its range, instead of
    Gradio's internal error for a value it cannot compare. (The check is set on the instance: a
    subclass of a Gradio component makes Gradio write a .pyi stub beside this module.)"""
    slider = gr.Slider(minimum, maximum, label=label, **kw)
    slider.preprocess = functools.partial(_checked_setting, slider, what or label.lower(), slider.preprocess)
    return slider


def _checked_setting(slider, what: str, preprocess, payload):
    try:
        v = float(payload)
        ok = math.isfinite(v) and not isinstance(payload, bool)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        shown = repr(payload)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise gr.Error(f"{what} must be a number from {slider.minimum:g} to {slider.maximum:g}, got {shown}")
    return preprocess(payload if isinstance(payload, (int, float)) else v)

EXAMPLES = [  # (file name, scikit-image sample, gray?) written at start-up, see example_photos()
    ("cameraman_gray.png", "camera", True),
    ("chelsea_gray.jpg", "chelsea", True),
    ("astronaut.jpg", "astronaut", False),
    ("coffee.jpg", "coffee", False),
    ("rocket.jpg", "rocket", False),
]

CSS = """
#colorize-button {min-height: 48px; font-size: 1.05em}
.help-line, .help-line p {color: var(--body-text-color-subdued) !important; font-size: 0.88em !important}
#hint-image img {cursor: crosshair}
#hint-list .hint-swatch {display: inline-block; width: 1em; height: 1em; border: 1px solid #0008;
  border-radius: 3px; vertical-align: -0.15em}
#hint-list ol {margin: 0.3em 0 0.5em 1.4em; padding: 0}
#hint-list .hint-empty {color: var(--body-text-color-subdued); font-size: 0.9em}
#hint-suggestions .grid-container {grid-template-columns: repeat(6, minmax(0, 1fr)) !important}
"""


def theme() -> gr.themes.Base:
    """The app's look; system fonts only, so a machine without internet fetches nothing."""
    sans = ["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Consolas", "monospace"]
    return gr.themes.Soft(primary_hue="amber", secondary_hue="sky", neutral_hue="stone",
                          font=sans, font_mono=mono)


# --- folders --------------------------------------------------------------------------------------

def cache_root() -> Path:
    """Where the app writes examples and results: $COLORIZER_APP_CACHE, else <tmp>/colorizer-app
    (inside the system temp folder, which Gradio serves files from)."""
    d = settings().app_cache
    d.mkdir(parents=True, exist_ok=True)
    return d


def _new_output_dir() -> Path:
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


# --- models: loaded once per process, shared by all users --------------------------------------

_MODELS: dict[str, Colorizer] = {}
_MODELS_LOCK = threading.Lock()


def get_model(name: str | None) -> Colorizer:
    """The loaded model of that name (or alias), loading it on first use."""
    entry = resolve(name if name and str(name).strip() else "default")
    key = f"{entry.name}|{entry.path}"
    with _MODELS_LOCK:
        c = _MODELS.get(key)
        if c is None:
            from . import load_colorizer
            t = time.perf_counter()
            c = load_colorizer(entry.name)
            log.info("loaded model %s (%s, working size %d px) from %s in %.1f s", entry.name,
                     entry.arch, c.input_size, entry.path, time.perf_counter() - t)
            _MODELS[key] = c
    return c


def loaded_models() -> list[str]:
    return [k.split("|", 1)[0] for k in _MODELS]


def model_choices() -> list[tuple[str, str]]:
    """(label, value) for the models whose weights are present; the default first."""
    rows = list_models()
    rows.sort(key=lambda r: (r["name"] != DEFAULT_MODEL, r["name"]))
    return [(model_label(r), r["name"]) for r in rows]


def model_label(row: dict) -> str:
    """A model's menu line: its name (and whether it is the default), then what it is."""
    name = f"{row['name']} (default)" if row["name"] == DEFAULT_MODEL else row["name"]
    return f"{name}: {row['summary']}" if row.get("summary") else name


def preload(names=None) -> list[str]:
    """Load the default model (or `names`) at start-up and log what was loaded."""
    available = [v for _, v in model_choices()]
    if not available:
        log.warning("no model weights found in %s: the app starts, but colorizing needs a model "
                    "(see README: Models)", settings().weights_dir)
        return []
    names = names or ([DEFAULT_MODEL] if DEFAULT_MODEL in available else available[:1])
    done = []
    for n in names:
        try:
            c = get_model(n)
            t = time.perf_counter()
            c.colorize(np.full((64, 64), 128, np.uint8))  # the first forward pass sets things up
            log.info("warmed up %s in %.1f s", c.name, time.perf_counter() - t)
            done.append(n)
        except ColorizerError as exc:
            log.error("could not load model %s: %s", n, exc)
    log.info("models available: %s; loaded: %s", ", ".join(available), ", ".join(done) or "none")
    return done


# --- errors ------------------------------------------------------------------------------------------

def hide_server_paths(message: str) -> str:
    """A message without the server's folders: the weights folder reads `weights`, the
    repository's folder `.` (users need the file's name, not where the server keeps it)."""
    from .registry import PACKAGE_DIR, weights_dir
    wd = weights_dir()
    for folder, shown in ((wd.resolve(), "weights"), (wd, "weights"), (PACKAGE_DIR.parent, ".")):
        message = message.replace(str(folder), shown)
    return message


def user_errors(fn):
    """Turn every failure of an event handler into a gr.Error with a message for users."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except BudgetError as exc:  # says what to lower: a warning-like refusal, no traceback
            raise gr.Error(html.escape(str(exc), quote=False), print_exception=False) from exc
        except (ColorizerError, ValueError) as exc:  # ImageError, ModelNotFoundError, WeightsError
            # the page shows messages as HTML, and they can hold a user's file name
            raise gr.Error(html.escape(hide_server_paths(str(exc)), quote=False), print_exception=False) from exc
        except MemoryError as exc:
            raise gr.Error("the server ran out of memory for this photo: try a smaller one") from exc
        except Exception as exc:  # a bug: logged with its traceback, the user gets one line
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"something went wrong on the server ({type(exc).__name__}); it was "
                           "logged. Other photos still work.") from exc
        finally:  # what a large job allocated goes back to the system (colorizer/memory.py)
            memory.release()
    return wrapper


HEAVY_NICE = 10  # CPU priority of colorization work, below the server's (the survey's votes)
_heavy_pool: ThreadPoolExecutor | None = None
_heavy_lock = threading.Lock()


def _lower_this_thread() -> None:
    """Lower the calling thread's CPU priority (on Linux a thread has its own nice value, and the
    threads it starts, such as torch's and the PNG writer's, inherit it). Lowering needs no
    privilege; elsewhere this does nothing."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HEAVY_NICE)
    except (AttributeError, OSError):
        pass


def heavy(fn):
    """Run a handler's full-resolution work on the colorization threads: COLORIZER_CONCURRENCY
    of them (the queue group HEAVY_GROUP already lets no more in at once), at nice HEAVY_NICE,
    so that a vote (which runs on Gradio's own threads at the server's priority) gets the CPU
    first. The handler's context (Gradio's progress bar) goes along."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        global _heavy_pool
        with _heavy_lock:
            if _heavy_pool is None:
                _heavy_pool = ThreadPoolExecutor(max_workers=settings().concurrency + 1,
                                                 thread_name_prefix="colorize",
                                                 initializer=_lower_this_thread)
        ctx = contextvars.copy_context()
        return _heavy_pool.submit(ctx.run, fn, *args, **kwargs).result()
    return wrapper


def photo_input(**kwargs) -> gr.Image:
    """A gr.Image whose upload reaches the handler as the uploaded file, unopened.

    A stock gr.Image opens every upload with PIL before the handler runs, which fails with an
    opaque error on a non-image and checks nothing we state. Here the handler inspects the header
    itself (colorizer.uploads.inspect_image) and decodes with the pipeline. (Gradio has already
    checked that the file is one uploaded to this server.) The override is set on the instance:
    a subclass of a Gradio component would make Gradio write a .pyi file into this package.
    """
    comp = gr.Image(type="filepath", image_mode=None, **kwargs)
    stock = comp.preprocess

    def preprocess(payload):
        if payload is None:
            return None
        if payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        return stock(payload)

    comp.preprocess = preprocess
    return comp


# --- the work ----------------------------------------------------------------------------------------

_WRITER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="png")


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """load_image's output (uint8, uint16 or float in [0, 1]) as uint8 for display and metrics."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        return ((arr.astype(np.float32) + 128.5) / 257.0).clip(0, 255).astype(np.uint8)
    return (np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)


def _preview(arr: np.ndarray, path: Path, side: int) -> str:
    im = Image.fromarray(_to_uint8(arr))
    if max(im.size) > side:
        s = side / max(im.size)
        im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS,
                       reducing_gap=2.0)
    if im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    im.save(path, format="JPEG", quality=90)
    return str(path)


def _input_size(value) -> int:
    try:
        v = int(float(value))
    except (TypeError, ValueError):
        raise gr.Error(f"the working resolution must be a number of pixels, got {value!r}")
    if not INPUT_SIZE_MIN <= v <= INPUT_SIZE_MAX:
        raise gr.Error(f"the working resolution must lie between {INPUT_SIZE_MIN} and {INPUT_SIZE_MAX} "
                       f"pixels, got {v}")
    return v


def _vividness(value) -> float:
    try:
        v = float(1.0 if value is None else value)
    except (TypeError, ValueError):
        raise gr.Error(f"vividness must be a number, got {value!r}")
    if not (math.isfinite(v) and VIVIDNESS_MIN <= v <= VIVIDNESS_MAX):
        raise gr.Error(f"vividness must lie between {VIVIDNESS_MIN:g} and {VIVIDNESS_MAX:g}, got {v}")
    return v


def _reference_stats(path) -> tuple[np.ndarray, np.ndarray] | None:
    if not path:
        return None
    name = f"the color reference {shown_name(Path(str(path)).name)}"
    inspect_image(path, name=name)
    ref = _load(path, name)
    if not adjust.is_color(ref):
        raise gr.Error("the color reference is a gray photo: pick a color photo whose colors "
                       "you want to borrow, or clear it")
    return adjust.ab_stats(ref)


def colorize_array(c: Colorizer, arr: np.ndarray, input_size: int, vividness: float = 1.0,
                   ref_stats=None, hints=None) -> tuple[np.ndarray, float]:
    """One photo (load_image output) -> (uint8 RGB, seconds in the network step).
    hints: [(x, y, a, b), ...] in full-resolution pixels (models that take hints)."""
    L = lab.rgb_to_lightness(arr)
    t = time.perf_counter()
    ab = c.predict_ab(L, hints=hints or None, input_size=input_size)
    t_net = time.perf_counter() - t
    if ref_stats is not None:
        ab = adjust.transfer_chroma(ab, *ref_stats)
    ab = adjust.scale_chroma(ab, vividness)
    return lab.l_ab_to_rgb_uint8(L, ab), t_net


def _load(path, name: str) -> np.ndarray:
    """load_image with messages that name the user's file, not the server's copy of it."""
    try:
        return load_image(path)
    except ImageError as exc:
        if isinstance(path, (str, os.PathLike)):
            raise ImageError(str(exc).replace(str(path), name)) from exc
        raise


def _display_name(path) -> str:
    stem = Path(str(path)).stem or "photo"
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem)[:80] or "photo"


@dataclass
class _Work:
    """One request's photo, model and settings, checked and loaded (see _prepare)."""
    photo: str
    upload_name: str
    info: object
    c: Colorizer
    size: int
    vivid: float
    ref_stats: tuple | None
    arr: np.ndarray
    color: bool
    t0: float

    @property
    def width(self) -> int:
        return int(self.arr.shape[1])

    @property
    def height(self) -> int:
        return int(self.arr.shape[0])


def request_budget() -> Budget:
    """The work one request may cost (COLORIZER_MAX_REQUEST_UNITS, COLORIZER_MAX_BATCH_UNITS)."""
    s = settings()
    return Budget(request_units=s.max_request_units, batch_units=s.max_batch_units)


def _prepare(photo, model_name, input_size, vividness, reference, progress, outputs: int = 1,
             what: str = "outputs", least: int = 1) -> _Work:
    """Check the settings, the upload and the request's cost (`outputs` full-resolution
    results, named `what` in the message), then load the model and the photo."""
    if not photo:
        raise gr.Error("upload a photo first (or pick one of the examples)")
    t0 = time.perf_counter()
    size = _input_size(input_size)
    vivid = _vividness(vividness)
    progress(0.05, desc="Checking the photo")
    upload_name = shown_name(Path(str(photo)).name)
    info = inspect_image(photo, name=upload_name)
    request_budget().check(info.width, info.height, size, outputs, what, least)
    progress(0.15, desc="Loading the model")
    c = get_model(model_name)
    ref_stats = _reference_stats(reference)
    progress(0.25, desc=f"Reading {info.width} x {info.height} pixels")
    arr = _load(photo, upload_name)
    return _Work(str(photo), upload_name, info, c, size, vivid, ref_stats, arr, adjust.is_color(arr), t0)


def _finish(w: _Work, hints=(), progress=None, notes=()) -> tuple:
    """Colorize a prepared photo (with hints, if any). Returns (full-res PNG, (before, after)
    previews, message, state)."""
    progress = progress or (lambda *a, **k: None)
    c = w.c
    progress(0.45, desc=f"Colorizing with {c.name}" + (f" and {len(hints)} hints" if hints else ""))
    rgb, t_net = colorize_array(c, w.arr, w.size, w.vivid, w.ref_stats, hints=list(hints))
    progress(0.8, desc="Writing the PNG")
    out = _new_output_dir()
    name = _display_name(w.photo)
    png = out / f"{name}_colorized.png"
    # the PNG encoder releases the GIL: write it while the previews are made
    writing = _WRITER.submit(Image.fromarray(rgb).save, png, format="PNG", compress_level=PNG_LEVEL)
    before = _preview(w.arr, out / "before.jpg", PREVIEW_SIDE)
    after = _preview(rgb, out / "after.jpg", PREVIEW_SIDE)
    writing.result()
    seconds = time.perf_counter() - w.t0

    h, wd = rgb.shape[:2]
    lines = [f"**Colorized** `{name}` ({wd:,} x {h:,} px, {wd * h / 1e6:.1f} MP) with **{c.name}** "
             f"at {w.size} px in **{seconds:.2f} s** (network {t_net:.2f} s)."]
    if hints:
        lines.append(f"With **{len(hints)} color hint{'s' if len(hints) != 1 else ''}**.")
    lines += list(notes)
    if w.color:
        lines.append("This upload is already a **color photo**: only its lightness was colorized, "
                     "and the metrics below compare the result with the original colors.")
    else:
        lines.append("Gray photo: there are no true colors to compare with, so no metrics are shown.")
    if w.ref_stats is not None:
        lines.append("Colors transferred from the reference photo (mean and spread of a and b).")
    if w.vivid != 1.0:
        lines.append(f"Vividness x{w.vivid:g}.")
    if w.info.notes:
        lines.append("Notes: " + "; ".join(w.info.notes) + ".")
    if max(wd, h) > PREVIEW_SIDE:
        lines.append(f"The slider shows a preview {PREVIEW_SIDE} px wide at most; the PNG is full size.")
    state = {"input": w.photo, "output": str(png), "color": w.color, "name": name,
             "model": c.name, "input_size": w.size, "vividness": w.vivid, "seconds": round(seconds, 3),
             "width": wd, "height": h, "before": before, "after": after,
             "hints": [[round(float(v), 2) for v in hint] for hint in hints]}
    log.info("colorized %s (%d x %d) with %s at %d px%s in %.2f s", name, wd, h, c.name, w.size,
             f" and {len(hints)} hints" if hints else "", seconds)
    return str(png), (before, after), "\n\n".join(lines), state


@user_errors
@heavy
def run_colorize(photo, model_name, input_size=INPUT_SIZE_DEFAULT, vividness=1.0, reference=None,
                 hint_state=None, progress=gr.Progress()):
    """Colorize one photo. Returns (full-res PNG, (before, after) previews, message, state).

    hint_state: the page's color hints (a gr.State, so not part of the /colorize API): the
    Colorize button keeps the hints a user placed; a model that takes no hints ignores them."""
    w = _prepare(photo, model_name, input_size, vividness, reference, progress)
    hints = parse_hints(_hint_tuples(hint_state), w.width, w.height)
    notes = []
    if hints and not w.c.accepts_hints:
        notes.append(f"**{w.c.name}** does not take color hints: your {len(hints)} hint(s) were not "
                     "used (pick a model that takes them, such as the default, or clear them).")
        hints = []
    return _finish(w, hints, progress, notes)


@user_errors
@heavy
def run_colorize_hints(photo, model_name, hints="", input_size=INPUT_SIZE_DEFAULT, vividness=1.0,
                       reference=None, progress=gr.Progress()):
    """Colorize one photo with color hints given as JSON (any form colorizer.hints.parse_hints
    takes, e.g. [{"x": 120, "y": 80, "color": "#3a7bd5"}] in full-resolution pixels).
    Returns (full-res PNG, (before, after) previews, message, state), as /colorize."""
    if not photo:
        raise gr.Error("upload a photo first (or pick one of the examples)")
    parse_hints(hints)  # bad JSON is reported before the photo is read
    w = _prepare(photo, model_name, input_size, vividness, reference, progress)
    points = parse_hints(hints, w.width, w.height)
    if points:
        _require_hints(w.c)
    return _finish(w, points, progress)


def _reduce(a: np.ndarray, factor: int) -> np.ndarray:
    if factor <= 1:
        return a
    im = Image.fromarray(a)
    return np.asarray(im.reduce(factor))


@user_errors
@heavy
def run_metrics(state, progress=gr.Progress()):
    """Metrics of the user's last result against the original, for color uploads only.

    Returns (metrics dict or None, markdown, heat map path or None)."""
    if not state or not state.get("output"):
        raise gr.Error("colorize a photo first: the metrics compare your last result with its original")
    if not state.get("color"):
        return {"photo": "gray", "metrics": None}, "", None
    progress(0.1, desc="Reading the original and the result")
    truth = _to_uint8(load_image(state["input"]))
    pred = np.asarray(Image.open(state["output"]).convert("RGB"))
    if truth.ndim == 2 or truth.shape != pred.shape:
        raise gr.Error("the result and its original differ in size; colorize the photo again")
    h, w = pred.shape[:2]
    factor = max(1, math.ceil(math.sqrt(h * w / METRICS_MAX_PIXELS)))
    truth, pred = _reduce(truth, factor), _reduce(pred, factor)
    progress(0.3, desc="Delta E 2000")
    de = metrics.delta_e_map(pred, truth, "2000")
    progress(0.6, desc="PSNR and SSIM")
    res = {
        "psnr_db": round(metrics.psnr(pred, truth), 3),
        "ssim": round(metrics.ssim(pred, truth), 4) if min(pred.shape[:2]) >= 7 else None,
        "delta_e_2000_mean": round(float(de.mean()), 3),
        "colorfulness_result": round(metrics.colorfulness(pred), 2),
        "colorfulness_original": round(metrics.colorfulness(truth), 2),
        "measured_at": f"{pred.shape[1]} x {pred.shape[0]}",
    }
    progress(0.85, desc="Heat map")
    vmax = metrics.robust_vmax(de)
    hf = max(1, math.ceil(max(de.shape) / HEATMAP_SIDE))
    small = np.asarray(Image.fromarray(de.astype(np.float32), mode="F").reduce(hf)) if hf > 1 else de
    heat_path = Path(state["output"]).with_name("delta_e_2000.png")
    metrics.render_heatmap(small, vmax=vmax, path=heat_path, label="dE00")
    ssim_txt = "n/a (photo under 7 px)" if res["ssim"] is None else f"{res['ssim']:.3f}"
    md = "\n".join([
        "| metric | value | reads |",
        "|---|---|---|",
        f"| PSNR | {res['psnr_db']:.2f} dB | higher is closer to the original |",
        f"| SSIM | {ssim_txt} | structure; 1 is identical |",
        f"| Delta E 2000 (mean) | {res['delta_e_2000_mean']:.2f} | color difference; under 2 is hard to see |",
        f"| colorfulness | {res['colorfulness_result']:.1f} result / {res['colorfulness_original']:.1f} original | Hasler-Suesstrunk |",
    ])
    if factor > 1:
        md += f"\n\nMeasured on a copy reduced to {res['measured_at']} px (1/{factor} per side), for speed."
    md += f"\n\nHeat map: Delta E 2000 per pixel, scale 0 to {vmax:g} on its right (brighter = further off)."
    return {"photo": "color", "metrics": res}, md, str(heat_path)


@user_errors
@heavy
def run_compare(photo, model_names, input_size=INPUT_SIZE_DEFAULT, progress=gr.Progress()):
    """Several models on one photo: ([(preview, caption)], markdown table of timings)."""
    if not photo:
        raise gr.Error("upload a photo first (or pick one of the examples)")
    if isinstance(model_names, str):
        model_names = [model_names]
    names = [n for n in (model_names or []) if n]
    if not names:
        raise gr.Error("tick at least one model to compare")
    if not all(isinstance(n, str) for n in names):
        raise gr.Error("the models to compare are a list of model names")
    resolved = list(dict.fromkeys(resolve(n).name for n in names))  # a model named twice runs once
    if len(resolved) > COMPARE_MAX_MODELS:
        raise gr.Error(f"{len(resolved)} models were ticked; at most {COMPARE_MAX_MODELS} are compared at once")
    names = resolved
    size = _input_size(input_size)
    upload_name = shown_name(Path(str(photo)).name)
    info = inspect_image(photo, name=upload_name)
    request_budget().check(info.width, info.height, size, len(names), "models")
    arr = _load(photo, upload_name)
    out = _new_output_dir()
    gallery = [(_preview(arr, out / "input.jpg", COMPARE_SIDE), "input")]
    rows = ["| model | time (s) | network (s) |", "|---|---|---|"]
    for i, n in enumerate(names):
        progress((i, len(names)), desc=f"Colorizing with {n}", unit="models")
        c = get_model(n)
        t = time.perf_counter()
        rgb, t_net = colorize_array(c, arr, size)
        dt = time.perf_counter() - t
        gallery.append((_preview(rgb, out / f"{i}_{_display_name(c.name)}.jpg", COMPARE_SIDE),
                        f"{c.name} - {dt:.2f} s"))
        rows.append(f"| {c.name} | {dt:.2f} | {t_net:.2f} |")
    h, w = arr.shape[:2]
    return gallery, f"{w:,} x {h:,} px at {size} px working resolution:\n\n" + "\n".join(rows)


def _is_archive(p: Path) -> bool:
    return p.suffix.lower() == ".zip" or (p.suffix.lower() not in IMAGE_SUFFIXES and zipfile.is_zipfile(p))


def _check_batch_cost(files, size: int, budget: Budget) -> None:
    """Before any work: the photos uploaded as files (not inside archives, whose members are
    charged as they are read) must fit the batch's budget together; their headers say how big."""
    costs = []
    for f in files or []:
        p = Path(str(getattr(f, "name", f)))
        if _is_archive(p):
            continue
        try:
            info = inspect_image(p, name=shown_name(p.name))
        except ImageError:  # reported with its reason when the batch reaches it
            continue
        costs.append(output_cost(info.width, info.height, size))
    total = sum(costs)
    if total > budget.batch_units:
        fits, run = 0, 0.0
        for c in costs:
            if run + c > budget.batch_units:
                break
            fits, run = fits + 1, run + c
        raise BudgetError(f"these {len(costs)} photos would cost {total:.0f} units of work at {size} px "
                          f"working resolution; the limit of one batch is {budget.batch_units:.0f}: send "
                          f"at most {fits} of them at a time, or use a lower working resolution")


def _batch_items(files):
    """Uploaded files and zip archives -> (how many photos, an iterator of (name, path, bytes or
    ImageError), [skip reasons]). Archives are listed first (nothing inflated) and read one
    member at a time while iterating, all of them against one InflateBudget for the request."""
    sources, skipped, count = [], [], 0
    budget = InflateBudget()
    for f in files or []:
        p = Path(str(getattr(f, "name", f)))
        if _is_archive(p):
            z = ZipImages(p, budget=budget)
            sources.append(z)
            skipped += z.skipped
            count += len(z)
        else:
            sources.append([(shown_name(p.name), str(p))])
            count += 1
    if count > ZIP_MAX_FILES:
        raise gr.Error(f"{count} photos were sent; at most {ZIP_MAX_FILES} are colorized at once")

    def items():
        for src in sources:
            yield from src
    return count, items(), skipped


@user_errors
@heavy
def run_batch(files, model_name, input_size=INPUT_SIZE_DEFAULT, vividness=1.0,
              progress=gr.Progress()):
    """Many photos (and zips of photos) -> (zip of colorized PNGs, markdown summary)."""
    if not files:
        raise gr.Error("upload some photos or a zip of photos first")
    size = _input_size(input_size)
    vivid = _vividness(vividness)
    budget = request_budget()
    _check_batch_cost(files, size, budget)
    meter = BatchMeter(budget, size)
    progress(0, desc="Unpacking")
    count, items, problems = _batch_items(files)
    if not count:
        raise gr.Error(html.escape("no photos found in the upload" + (": " + "; ".join(problems[:5]) if problems else ""),
                                   quote=False), print_exception=False)
    c = get_model(model_name)
    out = _new_output_dir()
    zpath = out / f"colorized_{count}_photos.zip"
    used: set[str] = set()
    done = 0
    t0 = time.perf_counter()
    with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_STORED) as zf:
        for i, (name, src) in enumerate(items):
            progress((i, count), desc=f"Colorizing {name}", unit="photos")
            try:
                if isinstance(src, ImageError):  # an archive member that could not be unpacked
                    raise src
                info = inspect_image(src, name=name)
                meter.charge(info.width, info.height, name)
                rgb, _ = colorize_array(c, _load(src, name), size, vivid)
            except ColorizerError as exc:
                problems.append(str(exc))
                src = None  # nothing of a refused member is kept either
                continue
            except Exception as exc:  # one bad photo never stops the batch
                log.exception("batch: %s failed", name)
                problems.append(f"{name}: could not be colorized ({type(exc).__name__})")
                continue
            stem = _display_name(name)
            out_name, k = f"{stem}.png", 1
            while out_name in used:
                k += 1
                out_name = f"{stem}_{k}.png"
            used.add(out_name)
            buf = io.BytesIO()
            Image.fromarray(rgb).save(buf, format="PNG", compress_level=3)
            zf.writestr(out_name, buf.getvalue())
            done += 1
            del src, rgb, buf  # nothing of a photo is kept once it is written
        report = [f"{done} of {count} photos colorized with {c.name} at {size} px"]
        report += [f"skipped: {p}" for p in problems]
        zf.writestr("report.txt", "\n".join(report) + "\n")
    if done == 0:  # the page shows messages as HTML, and these hold names from the archive
        raise gr.Error(html.escape("none of the photos could be colorized: " + "; ".join(problems[:5]),
                                   quote=False), print_exception=False)
    progress((count, count), desc="Done", unit="photos")
    md = f"**{done} of {count}** photos colorized with {c.name} in {time.perf_counter() - t0:.1f} s."
    if problems:
        md += "\n\nSkipped (also listed in report.txt inside the zip):\n" + "\n".join(
            f"- {html.escape(p, quote=False)}" for p in problems[:50])
    return str(zpath), md


# --- color hints --------------------------------------------------------------------------------
#
# The page's hints live in a gr.State per user: {"points": [{x, y, a, b, hex}, ...] (x, y in
# full-resolution pixels, a, b the Lab chroma asked for, hex that chroma at the photo's lightness
# there), "selected": index of the hint the swatches and the color picker act on, "suggestions":
# the model's colors for the selected hint's point}. The result is shown on an image that the
# user clicks (the "hint view": the result at HINT_VIEW_MIN..HINT_VIEW_MAX px, markers drawn on it).

HINT_VIEW_MAX = 1024  # longest side of the clickable hint view
HINT_VIEW_MIN = 640  # small photos are shown enlarged, so a click maps onto one pixel
HINT_SUGGESTIONS = 6
SWATCH_SIDE = 48


def _no_hints_message(c: Colorizer) -> str:
    return (f"model {c.name!r} does not take color hints: pick a model that does (the default "
            "model does), then place the hints again")


def _require_hints(c: Colorizer) -> None:
    if not c.accepts_hints:
        raise gr.Error(_no_hints_message(c))


def _hint_state(hs) -> dict:
    """A fresh copy of a page's hint state (None: no hints yet)."""
    hs = hs or {}
    return {"points": [dict(p) for p in hs.get("points") or []], "selected": hs.get("selected"),
            "suggestions": list(hs.get("suggestions") or [])}


def _hint_tuples(hs) -> list[tuple[float, float, float, float]]:
    return [(p["x"], p["y"], p["a"], p["b"]) for p in _hint_state(hs)["points"]]


def _view_size(width: int, height: int) -> tuple[int, int]:
    side = max(width, height)
    s = min(max(side, HINT_VIEW_MIN), HINT_VIEW_MAX) / side
    return max(1, round(width * s)), max(1, round(height * s))


def _view_to_full(vx, vy, width: int, height: int) -> tuple[int, int]:
    """A pixel of the hint view -> the full-resolution pixel under it."""
    vw, vh = _view_size(width, height)
    x = int((float(vx) + 0.5) * width / vw)
    y = int((float(vy) + 0.5) * height / vh)
    return min(max(x, 0), width - 1), min(max(y, 0), height - 1)


def _full_to_view(x, y, width: int, height: int) -> tuple[float, float]:
    vw, vh = _view_size(width, height)
    return (x + 0.5) * vw / width - 0.5, (y + 0.5) * vh / height - 0.5


def _marker_radius(width: int, height: int) -> int:
    return max(6, round(max(_view_size(width, height)) * 0.013))


def _hint_at(points, vx, vy, width: int, height: int) -> int | None:
    """The index of the hint whose marker lies under a click on the view (the nearest), or None."""
    r = _marker_radius(width, height) + 2
    best, best_d = None, float("inf")
    for i, p in enumerate(points):
        px, py = _full_to_view(p["x"], p["y"], width, height)
        d = math.hypot(px - float(vx), py - float(vy))
        if d <= r and d < best_d:
            best, best_d = i, d
    return best


def _hex_at(arr: np.ndarray, x: int, y: int, a: float, b: float) -> str:
    """The color (a, b) at the photo's own lightness at pixel (x, y)."""
    L = lab.rgb_to_lightness(arr[int(y):int(y) + 1, int(x):int(x) + 1])
    return ab_to_hex(float(L.reshape(-1)[0]), float(a), float(b))


def _can_suggest(c: Colorizer) -> bool:
    return bool(c.predicts_distribution or hasattr(c.model, "suggest_colors"))


def _suggest(w: _Work, x: int, y: int, others) -> list[dict]:
    """The model's likely colors at (x, y) given the other hints ([] for a model that cannot tell)."""
    if not _can_suggest(w.c):
        return []
    rows = w.c.suggest_colors(w.arr, x, y, k=HINT_SUGGESTIONS, hints=list(others) or None,
                              input_size=w.size)
    return [{"a": round(float(r["a"]), 2), "b": round(float(r["b"]), 2),
             "probability": round(float(r["probability"]), 4), "hex": r["hex"]} for r in rows]


def _result_ab(last: dict, x: int, y: int) -> tuple[float, float]:
    """The chroma of the current result at (x, y): a new hint's color where there are no suggestions."""
    with Image.open(last["output"]) as im:
        px = np.asarray(im.convert("RGB").crop((x, y, x + 1, y + 1)))
    ab = lab.rgb_to_lab(px)[0, 0, 1:]
    return float(ab[0]), float(ab[1])


def _recolor(w: _Work, hs: dict, progress, strict: bool = True) -> tuple:
    """Colorize with the page's hints: (PNG, (before, after), message, state, hint state)."""
    hints = _hint_tuples(hs)
    notes = []
    if hints and not w.c.accepts_hints:
        if strict:
            _require_hints(w.c)
        notes.append(f"**{w.c.name}** does not take color hints: the hints were not used.")
        hints = []
    return (*_finish(w, hints, progress, notes), hs)


def _no_change(hs) -> tuple:
    return gr.skip(), gr.skip(), gr.skip(), gr.skip(), hs


@user_errors
@heavy
def run_hint_click(photo, model_name, input_size, vividness, reference, last, hs,
                   evt: gr.SelectData, progress=gr.Progress()):
    """A click on the hint view: on a marker, select that hint; elsewhere, place a new hint
    there with the model's most likely color and colorize again.
    Returns (PNG, (before, after), message, state, hint state)."""
    if not photo:
        raise gr.Error("upload a photo first (or pick one of the examples)")
    if not last or not last.get("output"):
        raise gr.Error("colorize the photo first, then click on the result to place color hints")
    hs = _hint_state(hs)
    index = evt.index if evt is not None else None
    if not (isinstance(index, (list, tuple)) and len(index) == 2 and None not in index):
        return _no_change(hs)  # a click beside the picture
    c = get_model(model_name)
    _require_hints(c)
    W, H = int(last["width"]), int(last["height"])
    near = _hint_at(hs["points"], index[0], index[1], W, H)
    w = _prepare(photo, model_name, input_size, vividness, reference, progress)
    if (w.width, w.height) != (W, H):
        raise gr.Error("the photo changed since it was colorized: press Colorize again")
    points = hs["points"]
    if near is not None:  # select that hint: its color can be changed below
        p = points[near]
        hs["selected"] = near
        others = [(q["x"], q["y"], q["a"], q["b"]) for i, q in enumerate(points) if i != near]
        hs["suggestions"] = _suggest(w, p["x"], p["y"], others)
        return _no_change(hs)
    x, y = _view_to_full(index[0], index[1], W, H)
    progress(0.35, desc="Suggesting colors")
    suggestions = _suggest(w, x, y, _hint_tuples(hs))
    if suggestions:
        a, b = suggestions[0]["a"], suggestions[0]["b"]
    else:
        a, b = _result_ab(last, x, y)
    points.append({"x": x, "y": y, "a": round(a, 2), "b": round(b, 2), "hex": _hex_at(w.arr, x, y, a, b)})
    hs["selected"] = len(points) - 1
    hs["suggestions"] = suggestions
    return _recolor(w, hs, progress)


def _set_selected_color(photo, model_name, input_size, vividness, reference, last, hs, ab, progress):
    hs = _hint_state(hs)
    i = hs["selected"]
    if i is None or not 0 <= i < len(hs["points"]):
        raise gr.Error("click on the colorized photo to place a hint (or on a hint to select it) first")
    if not last or not last.get("output"):
        raise gr.Error("colorize the photo first, then click on the result to place color hints")
    w = _prepare(photo, model_name, input_size, vividness, reference, progress)
    _require_hints(w.c)
    p = hs["points"][i]
    a, b = float(ab[0]), float(ab[1])
    p.update(a=round(a, 2), b=round(b, 2), hex=_hex_at(w.arr, p["x"], p["y"], a, b))
    return _recolor(w, hs, progress)


@user_errors
@heavy
def run_hint_swatch(photo, model_name, input_size, vividness, reference, last, hs,
                    evt: gr.SelectData, progress=gr.Progress()):
    """A click on one of the suggested colors: the selected hint takes it."""
    sugg = _hint_state(hs)["suggestions"]
    i = evt.index if evt is not None else None
    if not isinstance(i, int) or not 0 <= i < len(sugg):
        raise gr.Error("click on the colorized photo to place a hint first; its suggested colors appear here")
    return _set_selected_color(photo, model_name, input_size, vividness, reference, last, hs,
                               (sugg[i]["a"], sugg[i]["b"]), progress)


@user_errors
@heavy
def run_hint_color(photo, model_name, input_size, vividness, reference, last, hs, colour,
                   progress=gr.Progress()):
    """A color from the color picker for the selected hint (only its chroma is used)."""
    state = _hint_state(hs)
    i = state["selected"]
    if i is not None and 0 <= i < len(state["points"]):
        p = state["points"][i]
        if str(colour or "").lower() in (p["hex"].lower(), str(p.get("picked", "")).lower()):
            return _no_change(state)  # the color shown already (the picker lost focus unchanged)
    if not colour:
        return _no_change(state)
    out = _set_selected_color(photo, model_name, input_size, vividness, reference, last, hs,
                              colour_to_ab(colour), progress)
    new_state = out[-1]
    new_state["points"][new_state["selected"]]["picked"] = str(colour)
    return out


def _edit_hints(photo, model_name, input_size, vividness, reference, last, hs, keep: int, progress):
    hs = _hint_state(hs)
    hs["points"] = hs["points"][:max(0, keep)]
    hs["selected"] = len(hs["points"]) - 1 if hs["points"] else None
    hs["suggestions"] = []
    if not photo or not last or not last.get("output"):
        return _no_change(hs)  # nothing colorized yet: only the list changes
    w = _prepare(photo, model_name, input_size, vividness, reference, progress)
    return _recolor(w, hs, progress, strict=False)


@user_errors
@heavy
def run_hint_undo(photo, model_name, input_size, vividness, reference, last, hs, progress=gr.Progress()):
    """Remove the last hint placed and colorize again."""
    n = len(_hint_state(hs)["points"])
    if n == 0:
        raise gr.Error("there are no hints to undo")
    return _edit_hints(photo, model_name, input_size, vividness, reference, last, hs, n - 1, progress)


@user_errors
@heavy
def run_hint_clear(photo, model_name, input_size, vividness, reference, last, hs, progress=gr.Progress()):
    """Remove every hint and colorize again without them."""
    if not _hint_state(hs)["points"]:
        return _no_change(_hint_state(None))
    return _edit_hints(photo, model_name, input_size, vividness, reference, last, hs, 0, progress)


def _adopt_hints(last, hs) -> dict:
    """After /colorize_hints from the page: its hints become the page's hints."""
    if not last or not last.get("input"):
        return _hint_state(hs)
    hints = last.get("hints") or []
    if [list(t) for t in _hint_tuples(hs)] == [list(h) for h in hints]:
        return _hint_state(hs)
    arr = None
    points = []
    for x, y, a, b in hints:
        xi, yi = int(x), int(y)
        try:
            if arr is None:
                arr = load_image(last["input"])
            hx = _hex_at(arr, xi, yi, a, b)
        except (ColorizerError, IndexError):
            hx = ab_to_hex(50.0, a, b)
        points.append({"x": xi, "y": yi, "a": a, "b": b, "hex": hx})
    return {"points": points, "selected": len(points) - 1 if points else None, "suggestions": []}


@user_errors
@heavy
def run_suggest_colors(photo, model_name, x, y, hints="", input_size=INPUT_SIZE_DEFAULT,
                       progress=gr.Progress()):
    """The model's most likely colors at pixel (x, y) of the photo (full-resolution pixels, x to
    the right and y down from the top-left corner), most likely first, given optional other
    hints (JSON, as /colorize_hints): [{"a", "b", "probability", "hex"}, ...]."""
    if not photo:
        raise gr.Error("upload a photo first (or pick one of the examples)")
    if x is None or y is None:
        raise gr.Error("give the point's x and y in pixels of the photo")
    try:
        xf, yf = float(x), float(y)
    except (TypeError, ValueError):
        raise gr.Error(f"x and y must be numbers of pixels, got {x!r} and {y!r}") from None
    if not (math.isfinite(xf) and math.isfinite(yf)):
        raise gr.Error(f"x and y must be finite numbers of pixels, got {x!r} and {y!r}")
    others = parse_hints(hints)
    w = _prepare(photo, model_name, input_size, 1.0, None, progress)
    if not (0 <= xf < w.width and 0 <= yf < w.height):
        raise gr.Error(f"point ({xf:g}, {yf:g}) lies outside the {w.width} x {w.height} photo "
                       f"(x must lie in 0..{w.width - 1}, y in 0..{w.height - 1})")
    others = parse_hints(hints, w.width, w.height)
    if others:
        _require_hints(w.c)
    if not _can_suggest(w.c):
        raise gr.Error(f"model {w.c.name!r} cannot suggest colors (it predicts one color per "
                       "pixel): pick the default model")
    return _suggest(w, int(xf), int(yf), others)


# the hint panel: what the page shows of the hint state

def _swatch(hexcode: str) -> str:
    d = cache_root() / "swatches"
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{hexcode.lstrip('#').lower()}.png"
    if not p.is_file():
        tmp = p.with_name(f"{p.stem}.{uuid.uuid4().hex[:8]}.part.png")
        Image.new("RGB", (SWATCH_SIDE, SWATCH_SIDE), hexcode).save(tmp)
        tmp.replace(p)
    return str(p)


def _hint_view(last: dict, hs: dict) -> str | None:
    """The current result with a marker on each hint (the selected one ringed), as a file."""
    src = last.get("after") if last else None
    if not src or not Path(src).is_file():
        return None
    W, H = int(last["width"]), int(last["height"])
    with Image.open(src) as im:
        view = im.convert("RGB").resize(_view_size(W, H), Image.LANCZOS)
    draw = ImageDraw.Draw(view)
    r = _marker_radius(W, H)
    for i, p in enumerate(hs["points"]):
        cx, cy = _full_to_view(p["x"], p["y"], W, H)
        if i == hs["selected"]:
            R = r + 5
            draw.ellipse((cx - R, cy - R, cx + R, cy + R), outline="#f59e0b", width=3)
        draw.ellipse((cx - r - 1, cy - r - 1, cx + r + 1, cy + r + 1), fill="black")
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=p["hex"], outline="white", width=2)
    path = Path(src).with_name(f"hints_{uuid.uuid4().hex[:10]}.jpg")  # a new name: no stale cache
    view.save(path, format="JPEG", quality=90)
    return str(path)


def _hint_list_html(hs: dict, last) -> str:
    points = hs["points"]
    if not points:
        if last and last.get("output"):
            return ("<p class='hint-empty'>No hints yet: click on the photo above to place one.</p>")
        return "<p class='hint-empty'>Colorize a photo first, then click on it to place hints.</p>"
    rows = []
    for i, p in enumerate(points):
        sel = i == hs["selected"]
        hx = html.escape(p["hex"])
        rows.append(f"<li class='{'hint-selected' if sel else ''}'><span class='hint-swatch' "
                    f"style='background:{hx}'></span> <code>{hx}</code> "
                    f"at ({int(p['x'])}, {int(p['y'])})" + (" <b>selected</b>" if sel else "") + "</li>")
    n = len(points)
    return (f"<div><b>{n} hint{'s' if n != 1 else ''}</b> (click a marker to select it)"
            f"<ol class='hint-rows'>{''.join(rows)}</ol></div>")


def _hints_json_text(hs: dict) -> str:
    return json.dumps([{"x": int(p["x"]), "y": int(p["y"]), "a": round(float(p["a"]), 1),
                        "b": round(float(p["b"]), 1)} for p in hs["points"]]) if hs["points"] else ""


def render_hint_panel(last, hs, picker: bool = True) -> tuple:
    """(hint view, hint list, hints JSON, swatches, color picker, x, y, suggestions JSON)."""
    hs = _hint_state(hs)
    sel = hs["selected"]
    p = hs["points"][sel] if sel is not None and 0 <= sel < len(hs["points"]) else None
    swatches = [(_swatch(s["hex"]), f"{s['probability']:.0%}") for s in hs["suggestions"]]
    keep = gr.skip()
    return (_hint_view(last, hs) if last else None, _hint_list_html(hs, last), _hints_json_text(hs),
            gr.update(value=swatches, selected_index=None),
            p["hex"] if p and picker else keep, p["x"] if p else keep, p["y"] if p else keep,
            hs["suggestions"] if p else None)


def _render_keep_picker(last, hs) -> tuple:
    return render_hint_panel(last, hs, picker=False)


# --- diverse colorizations ------------------------------------------------------------------------

VARIATIONS_MIN, VARIATIONS_MAX, VARIATIONS_DEFAULT = 2, 8, 4
SEED_MAX = 2 ** 31 - 1


def _variation_count(n) -> int:
    try:
        v = float(n)
    except (TypeError, ValueError):
        raise gr.Error(f"the number of variations must be a whole number, got {n!r}") from None
    if not (math.isfinite(v) and v == int(v) and VARIATIONS_MIN <= v <= VARIATIONS_MAX):
        raise gr.Error(f"the number of variations must be a whole number from {VARIATIONS_MIN} "
                       f"to {VARIATIONS_MAX}, got {n!r}")
    return int(v)


def _seed(seed) -> tuple[int, bool]:
    """(seed, chosen at random?)"""
    if seed is None or (isinstance(seed, str) and not seed.strip()):
        return int.from_bytes(os.urandom(4), "little") & SEED_MAX, True
    try:
        v = float(seed)
    except (TypeError, ValueError):
        raise gr.Error(f"the seed must be a whole number, got {seed!r}") from None
    if not (math.isfinite(v) and v == int(v) and 0 <= v <= SEED_MAX):
        raise gr.Error(f"the seed must be a whole number from 0 to {SEED_MAX}, got {seed!r}")
    return int(v), False


@user_errors
@heavy
def run_variations(photo, model_name, n=VARIATIONS_DEFAULT, seed=0, hints="",
                   input_size=INPUT_SIZE_DEFAULT, vividness=1.0, progress=gr.Progress()):
    """n different plausible colorizations of one photo (optionally with hints, JSON as in
    /colorize_hints). Returns (gallery of the n results, message, their full-resolution PNGs,
    state); the gallery holds the PNGs themselves for photos up to 1600 px, previews above."""
    if not photo:
        raise gr.Error("upload a photo first (or pick one of the examples)")
    count = _variation_count(n)
    seed_value, random_seed = _seed(seed)
    parse_hints(hints)
    w = _prepare(photo, model_name, input_size, vividness, None, progress, outputs=count,
                 what="variations", least=VARIATIONS_MIN)
    c = w.c
    if not c.predicts_distribution:
        raise gr.Error(f"model {c.name!r} predicts one color per pixel, not a distribution of "
                       "colors, so it cannot make variations: pick the default model")
    points = parse_hints(hints, w.width, w.height)
    if points:
        _require_hints(c)
    progress(0.4, desc=f"Sampling {count} variations with {c.name}")
    t = time.perf_counter()
    rgbs = c.variations(w.arr, n=count, seed=seed_value, hints=points or None, input_size=w.size)
    t_net = time.perf_counter() - t
    if w.vivid != 1.0:
        L = lab.rgb_to_lightness(w.arr)
        rgbs = [lab.l_ab_to_rgb_uint8(L, adjust.scale_chroma(lab.rgb_to_lab(x)[..., 1:], w.vivid))
                for x in rgbs]
    progress(0.75, desc="Writing the PNGs")
    out = _new_output_dir()
    name = _display_name(photo)
    pngs = [out / f"{name}_variation_{i + 1}.png" for i in range(count)]
    jobs = [_WRITER.submit(Image.fromarray(x).save, p, format="PNG", compress_level=PNG_LEVEL)
            for x, p in zip(rgbs, pngs)]
    before = _preview(w.arr, out / "before.jpg", PREVIEW_SIDE)
    large = max(w.width, w.height) > PREVIEW_SIDE
    views = ([_preview(x, out / f"variation_{i + 1}.jpg", PREVIEW_SIDE) for i, x in enumerate(rgbs)]
             if large else [str(p) for p in pngs])
    for j in jobs:
        j.result()
    seconds = time.perf_counter() - w.t0
    gallery = [(v, f"variation {i + 1}") for i, v in enumerate(views)]
    lines = [f"**{count} variations** of `{name}` ({w.width:,} x {w.height:,} px) with **{c.name}** "
             f"at {w.size} px, seed {seed_value}{' (random)' if random_seed else ''}, in "
             f"**{seconds:.2f} s** (network and sampling {t_net:.2f} s)."]
    if points:
        lines.append(f"With **{len(points)} color hint{'s' if len(points) != 1 else ''}**.")
    if w.vivid != 1.0:
        lines.append(f"Vividness x{w.vivid:g}.")
    lines.append("Click one to make it the result above (slider and full-resolution PNG); the same "
                 "seed gives the same variations.")
    if large:
        lines.append(f"The gallery shows previews {PREVIEW_SIDE} px wide at most; the PNGs are full size.")
    base = {"input": w.photo, "color": w.color, "name": name, "model": c.name, "input_size": w.size,
            "vividness": w.vivid, "width": w.width, "height": w.height, "before": before,
            "hints": [[round(float(v), 2) for v in h] for h in points]}
    state = {"base": base, "pngs": [str(p) for p in pngs], "views": views, "seed": seed_value}
    log.info("%d variations of %s (%d x %d) with %s, seed %d, in %.2f s", count, name, w.width,
             w.height, c.name, seed_value, seconds)
    return gallery, "\n\n".join(lines), [str(p) for p in pngs], state


@user_errors
def run_pick_variation(vstate, evt: gr.SelectData):
    """A click on a variation: it becomes the result (slider, full-resolution PNG, metrics)."""
    if not vstate or not vstate.get("pngs"):
        raise gr.Error("make some variations first")
    i = evt.index if evt is not None else None
    if not isinstance(i, int) or not 0 <= i < len(vstate["pngs"]):
        raise gr.Error("pick one of the variations")
    png, view = vstate["pngs"][i], vstate["views"][i]
    n = len(vstate["pngs"])
    base = vstate["base"]
    last = dict(base, output=png, after=view, variation=i + 1, seconds=None)
    message = (f"**Variation {i + 1} of {n}** (seed {vstate['seed']}) of `{base['name']}` with "
               f"**{base['model']}** is the result now; the PNG is full size "
               f"({base['width']:,} x {base['height']:,} px). Placing a hint colorizes the photo "
               "again from the model's own prediction.")
    return png, (base["before"], view), message, last


def _metrics_if_new(last, measured):
    """The metrics step after the hint and variation controls: skipped when the result did not change."""
    if not last or not last.get("output") or last.get("output") == measured:
        return gr.skip(), gr.skip(), gr.skip(), measured
    return (*run_metrics(last), last["output"])


def api_models() -> list[dict]:
    """The models whose weights are present (name, description, one-line summary, working size, loaded)."""
    loaded = set(loaded_models())
    return [{"name": r["name"], "aliases": r["aliases"], "description": r["description"],
             "summary": r["summary"], "input_size": r["input_size"], "loaded": r["name"] in loaded}
            for r in list_models()]


def _refresh_choices():
    choices = model_choices()
    values = [v for _, v in choices]
    first = values[:1]
    return (gr.update(choices=choices, value=first[0] if first else None),
            gr.update(choices=choices, value=values[:2]),
            gr.update(choices=choices, value=first[0] if first else None))


def _no_models_note() -> str:
    if model_choices():
        return ""
    return ("**No model weights found.** Put a checkpoint into `weights/` (the shipped default is "
            f"`weights/{REGISTRY[DEFAULT_MODEL].weights}`; `git lfs pull` in a clone that uses LFS) or fetch the official "
            "ones with `python -m colorizer weights fetch eccv16 siggraph17`, then reload the page.")


# --- layout ---------------------------------------------------------------------------------------------

def _help(text: str):
    gr.Markdown(text, elem_classes=["help-line"])


def build_colorize_tab() -> tuple:
    """The Colorize tab's contents (call inside a gr.Tab of a gr.Blocks)."""
    choices = model_choices()
    values = [v for _, v in choices]
    default = values[0] if values else None
    examples = example_photos()
    gr.Markdown(_no_models_note())
    with gr.Tabs():
        with gr.Tab("One photo", id="one"):
            last = gr.State(None)  # this user's last result (for the metrics step)
            with gr.Row(equal_height=False):
                with gr.Column(scale=5):
                    photo = photo_input(label="Photo: upload, drag or paste",
                                        sources=["upload", "clipboard"], height=380,
                                        elem_id="photo-input")
                    model = gr.Dropdown(choices=choices, value=default, label="Model",
                                        allow_custom_value=True, elem_id="model-choice")
                    go = gr.Button("Colorize", variant="primary", elem_id="colorize-button")
                    with gr.Accordion("Settings", open=False):
                        input_size = setting_slider(INPUT_SIZE_MIN, INPUT_SIZE_MAX, value=INPUT_SIZE_DEFAULT, step=32,
                                                   what="the working resolution (px)",
                                               label="Working resolution (px)")
                        _help("The size the network sees: higher gives finer color detail but takes "
                              "longer; the result always keeps your photo's full resolution.")
                        vividness = setting_slider(VIVIDNESS_MIN, VIVIDNESS_MAX, value=1.0, step=0.05,
                                                  label="Vividness")
                        _help("Scales the predicted colors' chroma (a, b) in Lab: 1 is as predicted, "
                              "above 1 more saturated (clipped where the screen cannot show it), 0 gray.")
                        reference = photo_input(label="Color reference (optional)",
                                                sources=["upload", "clipboard"], height=160,
                                                elem_id="reference-input")
                        _help("Borrow the palette of a color photo: the result's a and b get the "
                              "reference's mean and spread (Reinhard-style transfer in Lab).")
                    gr.Examples(examples=[[p] for p in examples], inputs=[photo],
                                example_labels=[Path(p).stem.replace("_", " ") for p in examples],
                                cache_examples=False, label="Examples (scikit-image sample photos)")
                with gr.Column(scale=6):
                    slider = gr.ImageSlider(label="Before / after (drag the handle)", type="filepath",
                                            interactive=False, max_height=560, elem_id="result-slider")
                    download = gr.File(label="Full-resolution PNG", interactive=False,
                                       elem_id="result-file")
                    message = gr.Markdown(label="message", elem_id="result-message")
                    with gr.Column(visible=False) as metrics_box:  # shown for color uploads
                        metrics_md = gr.Markdown(label="metrics table", elem_id="metrics-table")
                        heatmap = gr.Image(label="Delta E 2000 heat map", type="filepath",
                                           interactive=False, height=300, elem_id="heatmap")
                        with gr.Accordion("Metrics as JSON", open=False):
                            metrics_json = gr.JSON(label="metrics")
                    hint_state = gr.State(None)  # this user's color hints (see _hint_state)
                    measured = gr.State(None)  # the result the metrics shown belong to
                    with gr.Accordion("Color hints: click on the photo to choose its colors",
                                      open=False, elem_id="hints-panel"):
                        _help("Colorize first, then click on the photo below: a hint is placed there "
                              "with the model's most likely color, and the photo is colorized again. "
                              "Click a suggested color or pick any color to change the selected hint; "
                              "click a marker to select it.")
                        hint_image = gr.Image(label="Click to place a hint", type="filepath",
                                              interactive=False, buttons=["download", "fullscreen"],
                                              elem_id="hint-image")
                        with gr.Row(equal_height=False):
                            with gr.Column(scale=3, min_width=200):
                                hint_list = gr.HTML(_hint_list_html(_hint_state(None), None),
                                                    elem_id="hint-list")
                            with gr.Column(scale=2, min_width=160):
                                hint_color = gr.ColorPicker(value="#3a7bd5", elem_id="hint-color",
                                                            label="Any color for the selected hint")
                        _help("The model's suggested colors for the selected hint, most likely "
                              "first: click one.")
                        swatches = gr.Gallery(label="Suggested colors", show_label=False,
                                              columns=HINT_SUGGESTIONS, height=110, allow_preview=False,
                                              object_fit="cover", interactive=False, buttons=[],
                                              elem_id="hint-suggestions")
                        with gr.Row():
                            undo = gr.Button("Undo last hint", size="sm", elem_id="hint-undo")
                            clear = gr.Button("Clear hints", size="sm", elem_id="hint-clear")
                        with gr.Accordion("Hints as JSON, exact points (as the API takes them)",
                                          open=False):
                            hints_json = gr.Textbox(
                                value="", label="Hints (JSON; x, y in pixels of the full photo)", lines=2,
                                placeholder='[{"x": 120, "y": 80, "color": "#3a7bd5"}]',
                                elem_id="hints-json")
                            apply_json = gr.Button("Colorize with these hints", elem_id="hints-apply")
                            with gr.Row():
                                hint_x = gr.Number(label="x (px)", precision=0, minimum=0, elem_id="hint-x")
                                hint_y = gr.Number(label="y (px)", precision=0, minimum=0, elem_id="hint-y")
                                suggest = gr.Button("Suggest colors at x, y", size="sm",
                                                    elem_id="suggest-button")
                            suggest_json = gr.JSON(label="suggested colors", elem_id="suggest-json")
                    with gr.Accordion("Variations: several plausible colorizations", open=False,
                                      elem_id="variations-panel"):
                        with gr.Row():
                            var_n = setting_slider(VARIATIONS_MIN, VARIATIONS_MAX, value=VARIATIONS_DEFAULT,
                                                  what="the number of variations",
                                                  step=1, label="Number of variations")
                            var_seed = gr.Number(value=0, precision=0, minimum=0, maximum=SEED_MAX,
                                                 label="Seed")
                        var_go = gr.Button(f"Show {VARIATIONS_DEFAULT} variations", variant="secondary",
                                           elem_id="variations-button")
                        _help("The model's colors where it is unsure are sampled several ways (your "
                              "hints and settings apply). Click one to make it the result.")
                        var_gallery = gr.Gallery(label="Variations (click one to use it)", columns=4,
                                                 height=360, object_fit="contain", interactive=False,
                                                 elem_id="variations-gallery")
                        var_message = gr.Markdown(label="variations message",
                                                  elem_id="variations-message")
                        var_files = gr.File(label="Full-resolution PNGs of the variations",
                                            file_count="multiple", interactive=False,
                                            elem_id="variations-files")
                        var_state = gr.State(None)  # this user's last variations

            request = [photo, model, input_size, vividness, reference]
            result = [download, slider, message, last]
            panel = [hint_image, hint_list, hints_json, swatches, hint_color, hint_x, hint_y,
                     suggest_json]
            private = dict(api_visibility="private")
            # every event that colorizes or measures a full-resolution photo is in one queue group,
            # so that at most COLORIZER_CONCURRENCY of them run at once whatever the endpoint
            # (the Turing test's events are not in it and never wait behind them)
            heavy = dict(concurrency_id=HEAVY_GROUP, concurrency_limit=settings().concurrency)

            def after_result(event, render=render_hint_panel):
                """What follows a new result: metrics (color photos) and the hint view."""
                event.success(lambda st: gr.update(visible=bool(st and st.get("color"))), [last],
                              [metrics_box], show_progress="hidden", queue=False, **private)
                event.success(_metrics_if_new, [last, measured],
                              [metrics_json, metrics_md, heatmap, measured], show_progress="minimal",
                              **heavy, **private)
                event.success(render, [last, hint_state], panel, show_progress="hidden",
                              concurrency_limit=4, **private)

            done = go.click(run_colorize, inputs=request + [hint_state],
                            outputs=result, api_name="colorize", **heavy)
            done.success(lambda st: gr.update(visible=bool(st and st.get("color"))), [last],
                         [metrics_box], api_visibility="private", show_progress="hidden", queue=False)
            done.success(run_metrics, inputs=[last], outputs=[metrics_json, metrics_md, heatmap],
                         api_name="metrics", show_progress="minimal", **heavy)
            done.success(render_hint_panel, [last, hint_state], panel, show_progress="hidden",
                         concurrency_limit=4, **private)
            photo.change(lambda: (None, None, "", None, "", None, gr.update(visible=False), None,
                                  None, None, None, _hint_list_html(_hint_state(None), None), "", [],
                                  None, None, None, [], "", None, None),
                         None, [download, slider, message, metrics_json, metrics_md, heatmap,
                                metrics_box, last, measured, hint_state, hint_image, hint_list,
                                hints_json, swatches, hint_x, hint_y, suggest_json, var_gallery,
                                var_message, var_files, var_state],
                         api_visibility="private", show_progress="hidden", queue=False)

            # color hints: every control colorizes again and redraws the hint view
            edit = request + [last, hint_state]
            edited = result + [hint_state]
            after_result(hint_image.select(run_hint_click, edit, edited, **heavy,
                                           show_progress="minimal", **private))
            after_result(swatches.select(run_hint_swatch, edit, edited, **heavy,
                                         show_progress="minimal", **private))
            # dragging in the picker sends input events; a typed color arrives when it loses focus
            after_result(gr.on([hint_color.input, hint_color.blur], run_hint_color,
                               edit + [hint_color], edited, **heavy,
                               trigger_mode="always_last", show_progress="minimal", **private),
                         render=_render_keep_picker)
            after_result(undo.click(run_hint_undo, edit, edited, **heavy, **private))
            after_result(clear.click(run_hint_clear, edit, edited, **heavy, **private))
            applied = apply_json.click(run_colorize_hints, inputs=[photo, model, hints_json, input_size,
                                                                   vividness, reference],
                                       outputs=result, api_name="colorize_hints", **heavy)
            after_result(applied.success(_adopt_hints, [last, hint_state], [hint_state],
                                         show_progress="hidden", **private))
            suggest.click(run_suggest_colors, inputs=[photo, model, hint_x, hint_y, hints_json,
                                                      input_size],
                          outputs=[suggest_json], api_name="suggest_colors", **heavy)

            # variations
            var_n.change(lambda n: gr.update(value=f"Show {int(n)} variations"), [var_n], [var_go],
                         show_progress="hidden", queue=False, **private)
            var_go.click(run_variations, inputs=[photo, model, var_n, var_seed, hints_json, input_size,
                                                 vividness],
                         outputs=[var_gallery, var_message, var_files, var_state],
                         api_name="variations", **heavy)
            after_result(var_gallery.select(run_pick_variation, [var_state], result, **private))

        with gr.Tab("Compare models", id="compare"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=4):
                    c_photo = photo_input(label="Photo", sources=["upload", "clipboard"],
                                          height=300)
                    c_models = gr.CheckboxGroup(choices=choices, value=values[:2], label="Models")
                    c_size = setting_slider(INPUT_SIZE_MIN, INPUT_SIZE_MAX, value=INPUT_SIZE_DEFAULT, step=32,
                                           what="the working resolution (px)",
                                       label="Working resolution (px)")
                    c_go = gr.Button("Compare", variant="primary", elem_id="compare-button")
                    gr.Examples(examples=[[p] for p in examples], inputs=[c_photo],
                                example_labels=[Path(p).stem.replace("_", " ") for p in examples],
                                cache_examples=False, label="Examples")
                with gr.Column(scale=7):
                    c_gallery = gr.Gallery(label="Side by side (model - time)", columns=3,
                                           height=520, object_fit="contain", elem_id="compare-gallery")
                    c_table = gr.Markdown(label="timings")
            c_go.click(run_compare, inputs=[c_photo, c_models, c_size], outputs=[c_gallery, c_table],
                       api_name="compare", **heavy)

        with gr.Tab("Batch", id="batch"):
            with gr.Row(equal_height=False):
                with gr.Column():
                    b_files = gr.File(label="Photos, or zip archives of photos", file_count="multiple",
                                      file_types=["image", ".zip"], type="filepath")
                    b_model = gr.Dropdown(choices=choices, value=default, label="Model",
                                          allow_custom_value=True)
                    with gr.Row():
                        b_size = setting_slider(INPUT_SIZE_MIN, INPUT_SIZE_MAX, value=INPUT_SIZE_DEFAULT, step=32,
                                               what="the working resolution (px)",
                                           label="Working resolution (px)")
                        b_vivid = setting_slider(VIVIDNESS_MIN, VIVIDNESS_MAX, value=1.0, step=0.05,
                                                label="Vividness")
                    b_go = gr.Button("Colorize all", variant="primary", elem_id="batch-button")
                    _help(f"Up to {ZIP_MAX_FILES} photos; files that cannot be read are skipped and "
                          "listed in report.txt inside the zip you get back.")
                with gr.Column():
                    b_zip = gr.File(label="Colorized PNGs (zip)", interactive=False)
                    b_summary = gr.Markdown(label="summary")
            b_go.click(run_batch, inputs=[b_files, b_model, b_size, b_vivid],
                       outputs=[b_zip, b_summary], api_name="batch", **heavy)

    gr.api(api_models, api_name="models")
    return model, c_models, b_model


def refresh_on_load(demo: gr.Blocks, dropdowns) -> None:
    """Refresh the model lists when a page loads (weights added after start-up appear)."""
    demo.load(_refresh_choices, None, list(dropdowns), api_visibility="private",
              show_progress="hidden", queue=False)


def upload_limit() -> str:
    """max_file_size for launch(): $COLORIZER_MAX_UPLOAD_MB megabytes, 100 MB by default."""
    return f"{max(1, int(settings().max_upload_mb))}mb"


def describe_limits() -> str:
    return (f"Uploads up to {upload_limit().upper().replace('MB', ' MB')} and "
            f"{max_pixels_from_env() / 1e6:g} megapixels.")


__all__ = ["build_colorize_tab", "refresh_on_load", "preload", "get_model", "theme", "CSS",
           "upload_limit", "describe_limits", "run_colorize", "run_metrics", "run_compare",
           "run_batch", "api_models", "run_colorize_hints", "run_suggest_colors", "run_variations"]
