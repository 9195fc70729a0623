"""The Colorize tab of the web app (Gradio): one photo, compare models, batch.

This is the only module of the package that imports gradio; app.py at the repository root puts
the tab into the whole app. What lives where:

* models: loaded once per process and shared by every user, in a small cache keyed by model name
  and weights file, behind a lock (`get_model`);
* per-user data: the last result of each user is a gr.State (the metrics step reads it);
* every event has an api_name, so gradio_client can call the app like any Gradio Space:
  `colorize`, `metrics`, `compare`, `batch`, and the API-only `models`.

Every bad input ends in a gr.Error whose message says what is wrong (never a traceback), and an
error in one user's request does not touch anyone else's.
"""
from __future__ import annotations

import functools
import html
import io
import logging
import math
import os
import shutil
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from . import adjust, lab, metrics
from .errors import ColorizerError, ImageError
from .pipeline import Colorizer, load_image
from .registry import DEFAULT_MODEL, list_models, resolve
from .uploads import (IMAGE_SUFFIXES, ZIP_MAX_FILES, inspect_image, max_pixels_from_env,
                      read_zip_images)

log = logging.getLogger("colorizer.app")

PREVIEW_SIDE = 1600  # longest side of the before/after preview (the download is full size)
COMPARE_SIDE = 1024  # longest side of each image in the compare gallery
METRICS_MAX_PIXELS = 2_000_000  # metrics of larger photos are measured on a reduced copy
HEATMAP_SIDE = 800
PNG_LEVEL = 1  # zlib level of the full-resolution PNGs: lossless either way, level 1 is fastest
OUTPUT_TTL_S = 3 * 3600  # result files older than this are removed
INPUT_SIZE_DEFAULT = 256

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
    d = Path(os.environ.get("COLORIZER_APP_CACHE") or Path(tempfile.gettempdir()) / "colorizer-app")
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
    return [(f"{r['name']} (default)" if r["name"] == DEFAULT_MODEL else r["name"], r["name"])
            for r in rows]


def preload(names=None) -> list[str]:
    """Load the default model (or `names`) at start-up and log what was loaded."""
    available = [v for _, v in model_choices()]
    if not available:
        log.warning("no model weights found in %s: the app starts, but colorizing needs a model "
                    "(see README: Models)", os.environ.get("COLORIZER_WEIGHTS_DIR") or "weights/")
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

def user_errors(fn):
    """Turn every failure of an event handler into a gr.Error with a message for users."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ColorizerError, ValueError) as exc:  # ImageError, ModelNotFoundError, WeightsError
            # the page shows messages as HTML, and they can hold a user's file name
            raise gr.Error(html.escape(str(exc), quote=False), print_exception=False) from exc
        except MemoryError as exc:
            raise gr.Error("the server ran out of memory for this photo: try a smaller one") from exc
        except Exception as exc:  # a bug: logged with its traceback, the user gets one line
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"something went wrong on the server ({type(exc).__name__}); it was "
                           "logged. Other photos still work.") from exc
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
    if not 64 <= v <= 2048:
        raise gr.Error(f"the working resolution must lie between 64 and 2048 pixels, got {v}")
    return v


def _vividness(value) -> float:
    try:
        v = float(1.0 if value is None else value)
    except (TypeError, ValueError):
        raise gr.Error(f"vividness must be a number, got {value!r}")
    if not (math.isfinite(v) and 0.0 <= v <= 3.0):
        raise gr.Error(f"vividness must lie between 0 and 3, got {v}")
    return v


def _reference_stats(path) -> tuple[np.ndarray, np.ndarray] | None:
    if not path:
        return None
    name = f"the color reference {Path(str(path)).name}"
    inspect_image(path, name=name)
    ref = _load(path, name)
    if not adjust.is_color(ref):
        raise gr.Error("the color reference is a gray photo: pick a color photo whose colors "
                       "you want to borrow, or clear it")
    return adjust.ab_stats(ref)


def colorize_array(c: Colorizer, arr: np.ndarray, input_size: int, vividness: float = 1.0,
                   ref_stats=None) -> tuple[np.ndarray, float]:
    """One photo (load_image output) -> (uint8 RGB, seconds in the network step)."""
    L = lab.rgb_to_lightness(arr)
    t = time.perf_counter()
    ab = c.predict_ab(L, input_size=input_size)
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


@user_errors
def run_colorize(photo, model_name, input_size=INPUT_SIZE_DEFAULT, vividness=1.0, reference=None,
                 progress=gr.Progress()):
    """Colorize one photo. Returns (full-res PNG, (before, after) previews, message, state)."""
    if not photo:
        raise gr.Error("upload a photo first (or pick one of the examples)")
    t0 = time.perf_counter()
    size = _input_size(input_size)
    vivid = _vividness(vividness)
    progress(0.05, desc="Checking the photo")
    upload_name = Path(str(photo)).name
    info = inspect_image(photo, name=upload_name)
    progress(0.15, desc="Loading the model")
    c = get_model(model_name)
    ref_stats = _reference_stats(reference)
    progress(0.25, desc=f"Reading {info.width} x {info.height} pixels")
    arr = _load(photo, upload_name)
    color = adjust.is_color(arr)
    progress(0.45, desc=f"Colorizing with {c.name}")
    rgb, t_net = colorize_array(c, arr, size, vivid, ref_stats)
    progress(0.8, desc="Writing the PNG")
    out = _new_output_dir()
    name = _display_name(photo)
    png = out / f"{name}_colorized.png"
    # the PNG encoder releases the GIL: write it while the previews are made
    writing = _WRITER.submit(Image.fromarray(rgb).save, png, format="PNG", compress_level=PNG_LEVEL)
    before = _preview(arr, out / "before.jpg", PREVIEW_SIDE)
    after = _preview(rgb, out / "after.jpg", PREVIEW_SIDE)
    writing.result()
    seconds = time.perf_counter() - t0

    h, w = rgb.shape[:2]
    lines = [f"**Colorized** `{name}` ({w:,} x {h:,} px, {w * h / 1e6:.1f} MP) with **{c.name}** "
             f"at {size} px in **{seconds:.2f} s** (network {t_net:.2f} s)."]
    if color:
        lines.append("This upload is already a **color photo**: only its lightness was colorized, "
                     "and the metrics below compare the result with the original colors.")
    else:
        lines.append("Gray photo: there are no true colors to compare with, so no metrics are shown.")
    if ref_stats is not None:
        lines.append("Colors transferred from the reference photo (mean and spread of a and b).")
    if vivid != 1.0:
        lines.append(f"Vividness x{vivid:g}.")
    if info.notes:
        lines.append("Notes: " + "; ".join(info.notes) + ".")
    if max(w, h) > PREVIEW_SIDE:
        lines.append(f"The slider shows a preview {PREVIEW_SIDE} px wide at most; the PNG is full size.")
    state = {"input": str(photo), "output": str(png), "color": color, "name": name,
             "model": c.name, "input_size": size, "vividness": vivid, "seconds": round(seconds, 3),
             "width": w, "height": h}
    log.info("colorized %s (%d x %d) with %s at %d px in %.2f s", name, w, h, c.name, size, seconds)
    return str(png), (before, after), "\n\n".join(lines), state


def _reduce(a: np.ndarray, factor: int) -> np.ndarray:
    if factor <= 1:
        return a
    im = Image.fromarray(a)
    return np.asarray(im.reduce(factor))


@user_errors
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
def run_compare(photo, model_names, input_size=INPUT_SIZE_DEFAULT, progress=gr.Progress()):
    """Several models on one photo: ([(preview, caption)], markdown table of timings)."""
    if not photo:
        raise gr.Error("upload a photo first (or pick one of the examples)")
    if isinstance(model_names, str):
        model_names = [model_names]
    names = [n for n in (model_names or []) if n]
    if not names:
        raise gr.Error("tick at least one model to compare")
    size = _input_size(input_size)
    upload_name = Path(str(photo)).name
    inspect_image(photo, name=upload_name)
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


def _batch_items(files) -> tuple[list[tuple[str, object]], list[str]]:
    """Uploaded files and zip archives -> [(name, path or bytes)], [skip reasons]."""
    items, skipped = [], []
    for f in files or []:
        p = Path(str(getattr(f, "name", f)))
        if p.suffix.lower() == ".zip" or (p.suffix.lower() not in IMAGE_SUFFIXES and zipfile.is_zipfile(p)):
            members, skip = read_zip_images(p)
            items += members
            skipped += skip
        else:
            items.append((p.name, str(p)))
    if len(items) > ZIP_MAX_FILES:
        raise gr.Error(f"{len(items)} photos were sent; at most {ZIP_MAX_FILES} are colorized at once")
    return items, skipped


@user_errors
def run_batch(files, model_name, input_size=INPUT_SIZE_DEFAULT, vividness=1.0,
              progress=gr.Progress()):
    """Many photos (and zips of photos) -> (zip of colorized PNGs, markdown summary)."""
    if not files:
        raise gr.Error("upload some photos or a zip of photos first")
    size = _input_size(input_size)
    vivid = _vividness(vividness)
    progress(0, desc="Unpacking")
    items, problems = _batch_items(files)
    if not items:
        raise gr.Error("no photos found in the upload" + (": " + "; ".join(problems[:5]) if problems else ""))
    c = get_model(model_name)
    out = _new_output_dir()
    zpath = out / f"colorized_{len(items)}_photos.zip"
    used: set[str] = set()
    done = 0
    t0 = time.perf_counter()
    with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_STORED) as zf:
        for i, (name, src) in enumerate(items):
            progress((i, len(items)), desc=f"Colorizing {name}", unit="photos")
            try:
                inspect_image(src, name=name)
                rgb, _ = colorize_array(c, _load(src, name), size, vivid)
            except ColorizerError as exc:
                problems.append(str(exc))
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
        report = [f"{done} of {len(items)} photos colorized with {c.name} at {size} px"]
        report += [f"skipped: {p}" for p in problems]
        zf.writestr("report.txt", "\n".join(report) + "\n")
    if done == 0:
        raise gr.Error("none of the photos could be colorized: " + "; ".join(problems[:5]))
    progress((len(items), len(items)), desc="Done", unit="photos")
    md = f"**{done} of {len(items)}** photos colorized with {c.name} in {time.perf_counter() - t0:.1f} s."
    if problems:
        md += "\n\nSkipped (also listed in report.txt inside the zip):\n" + "\n".join(f"- {p}" for p in problems[:50])
    return str(zpath), md


def api_models() -> list[dict]:
    """The models whose weights are present (name, description, working size, loaded)."""
    loaded = set(loaded_models())
    return [{"name": r["name"], "aliases": r["aliases"], "description": r["description"],
             "input_size": r["input_size"], "loaded": r["name"] in loaded} for r in list_models()]


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
            "`weights/lite0_cls.pt`; `git lfs pull` in a clone that uses LFS) or fetch the official "
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
                        input_size = gr.Slider(128, 1024, value=INPUT_SIZE_DEFAULT, step=32,
                                               label="Working resolution (px)")
                        _help("The size the network sees: higher gives finer color detail but takes "
                              "longer; the result always keeps your photo's full resolution.")
                        vividness = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Vividness")
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
            done = go.click(run_colorize, inputs=[photo, model, input_size, vividness, reference],
                            outputs=[download, slider, message, last], api_name="colorize",
                            concurrency_limit=2)
            done.success(lambda st: gr.update(visible=bool(st and st.get("color"))), [last],
                         [metrics_box], api_visibility="private", show_progress="hidden", queue=False)
            done.success(run_metrics, inputs=[last], outputs=[metrics_json, metrics_md, heatmap],
                         api_name="metrics", show_progress="minimal")
            photo.change(lambda: (None, None, "", None, "", None, gr.update(visible=False), None),
                         None, [download, slider, message, metrics_json, metrics_md, heatmap,
                                metrics_box, last],
                         api_visibility="private", show_progress="hidden", queue=False)

        with gr.Tab("Compare models", id="compare"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=4):
                    c_photo = photo_input(label="Photo", sources=["upload", "clipboard"],
                                          height=300)
                    c_models = gr.CheckboxGroup(choices=choices, value=values[:2], label="Models")
                    c_size = gr.Slider(128, 1024, value=INPUT_SIZE_DEFAULT, step=32,
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
                       api_name="compare")

        with gr.Tab("Batch", id="batch"):
            with gr.Row(equal_height=False):
                with gr.Column():
                    b_files = gr.File(label="Photos, or zip archives of photos", file_count="multiple",
                                      file_types=["image", ".zip"], type="filepath")
                    b_model = gr.Dropdown(choices=choices, value=default, label="Model",
                                          allow_custom_value=True)
                    with gr.Row():
                        b_size = gr.Slider(128, 1024, value=INPUT_SIZE_DEFAULT, step=32,
                                           label="Working resolution (px)")
                        b_vivid = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Vividness")
                    b_go = gr.Button("Colorize all", variant="primary", elem_id="batch-button")
                    _help(f"Up to {ZIP_MAX_FILES} photos; files that cannot be read are skipped and "
                          "listed in report.txt inside the zip you get back.")
                with gr.Column():
                    b_zip = gr.File(label="Colorized PNGs (zip)", interactive=False)
                    b_summary = gr.Markdown(label="summary")
            b_go.click(run_batch, inputs=[b_files, b_model, b_size, b_vivid],
                       outputs=[b_zip, b_summary], api_name="batch")

    gr.api(api_models, api_name="models")
    return model, c_models, b_model


def refresh_on_load(demo: gr.Blocks, dropdowns) -> None:
    """Refresh the model lists when a page loads (weights added after start-up appear)."""
    demo.load(_refresh_choices, None, list(dropdowns), api_visibility="private",
              show_progress="hidden", queue=False)


def upload_limit() -> str:
    """max_file_size for launch(): $COLORIZER_MAX_UPLOAD_MB megabytes, 100 MB by default."""
    try:
        mb = float(os.environ.get("COLORIZER_MAX_UPLOAD_MB", 100))
    except ValueError:
        mb = 100.0
    return f"{max(1, int(mb))}mb"


def describe_limits() -> str:
    return (f"Uploads up to {upload_limit().upper().replace('MB', ' MB')} and "
            f"{max_pixels_from_env() / 1e6:g} megapixels.")


__all__ = ["build_colorize_tab", "refresh_on_load", "preload", "get_model", "theme", "CSS",
           "upload_limit", "describe_limits", "run_colorize", "run_metrics", "run_compare",
           "run_batch", "api_models"]
