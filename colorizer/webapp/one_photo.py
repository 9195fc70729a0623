"""One photo: the /colorize and /colorize_hints handlers (and what turns a prepared photo into a
result), the /metrics step, and the metrics after the hint and variation controls.

Imports gradio (handlers).
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from .. import metrics
from ..hints import parse_hints
from ..pipeline import load_image
from .files import PNG_LEVEL, PREVIEW_SIDE, WRITER, display_name, new_output_dir, preview, to_uint8
from .request import Work, colorize_array, prepare, require_hints, require_photo
from .running import heavy, user_errors
from .state import INPUT_SIZE_DEFAULT, HintState, RequestSettings, Result, has_output, hint_tuples

log = logging.getLogger("colorizer.app")

METRICS_MAX_PIXELS = 2_000_000  # metrics of larger photos are measured on a reduced copy
HEATMAP_SIDE = 800


def _result_message(w: Work, name: str, wd: int, h: int, seconds: float, t_net: float, hints,
                    notes) -> str:
    c = w.c
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
    return "\n\n".join(lines)


def finish(w: Work, hints=(), progress=None, notes=()) -> tuple:
    """Colorize a prepared photo (with hints, if any). Returns (full-res PNG, (before, after)
    previews, message, Result)."""
    progress = progress or (lambda *a, **k: None)
    c = w.c
    progress(0.45, desc=f"Colorizing with {c.name}" + (f" and {len(hints)} hints" if hints else ""))
    rgb, t_net = colorize_array(c, w.arr, w.size, w.vivid, w.ref_stats, hints=list(hints))
    progress(0.8, desc="Writing the PNG")
    out = new_output_dir()
    name = display_name(w.photo)
    png = out / f"{name}_colorized.png"
    # the PNG encoder releases the GIL: write it while the previews are made
    writing = WRITER.submit(Image.fromarray(rgb).save, png, format="PNG", compress_level=PNG_LEVEL)
    before = preview(w.arr, out / "before.jpg", PREVIEW_SIDE)
    after = preview(rgb, out / "after.jpg", PREVIEW_SIDE)
    writing.result()
    seconds = time.perf_counter() - w.t0
    h, wd = rgb.shape[:2]
    message = _result_message(w, name, wd, h, seconds, t_net, hints, notes)
    state = Result(input=w.photo, output=str(png), color=w.color, name=name, model=c.name,
                   input_size=w.size, vividness=w.vivid, seconds=round(seconds, 3), width=wd,
                   height=h, before=before, after=after,
                   hints=[[round(float(v), 2) for v in hint] for hint in hints])
    log.info("colorized %s (%d x %d) with %s at %d px%s in %.2f s", name, wd, h, c.name, w.size,
             f" and {len(hints)} hints" if hints else "", seconds)
    return str(png), (before, after), message, state


@user_errors
@heavy
def run_colorize(photo, model_name, input_size=INPUT_SIZE_DEFAULT, vividness=1.0, reference=None,
                 hint_state: HintState | None = None, progress=gr.Progress()):
    """Colorize one photo. Returns (full-res PNG, (before, after) previews, message, Result).

    hint_state: the page's color hints (a gr.State, so not part of the /colorize API): the
    Colorize button keeps the hints a user placed; a model that takes no hints ignores them."""
    w = prepare(RequestSettings(photo, model_name, input_size, vividness, reference), progress)
    hints = parse_hints(hint_tuples(hint_state), w.width, w.height)
    notes = []
    if hints and not w.c.accepts_hints:
        notes.append(f"**{w.c.name}** does not take color hints: your {len(hints)} hint(s) were not "
                     "used (pick a model that takes them, such as the default, or clear them).")
        hints = []
    return finish(w, hints, progress, notes)


@user_errors
@heavy
def run_colorize_hints(photo, model_name, hints="", input_size=INPUT_SIZE_DEFAULT, vividness=1.0,
                       reference=None, progress=gr.Progress()):
    """Colorize one photo with color hints given as JSON (any form colorizer.hints.parse_hints
    takes, e.g. [{"x": 120, "y": 80, "color": "#3a7bd5"}] in full-resolution pixels).
    Returns (full-res PNG, (before, after) previews, message, Result), as /colorize."""
    require_photo(photo)
    parse_hints(hints)  # bad JSON is reported before the photo is read
    w = prepare(RequestSettings(photo, model_name, input_size, vividness, reference), progress)
    points = parse_hints(hints, w.width, w.height)
    if points:
        require_hints(w.c)
    return finish(w, points, progress)


def _reduce(a: np.ndarray, factor: int) -> np.ndarray:
    if factor <= 1:
        return a
    im = Image.fromarray(a)
    return np.asarray(im.reduce(factor))


def _metrics_table(res: dict, factor: int, vmax: float) -> str:
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
    return md


@user_errors
@heavy
def run_metrics(state: Result | None, progress=gr.Progress()):
    """Metrics of the user's last result against the original, for color uploads only.

    Returns (metrics dict or None, markdown, heat map path or None)."""
    if not has_output(state):
        raise gr.Error("colorize a photo first: the metrics compare your last result with its original")
    if not state.color:
        return {"photo": "gray", "metrics": None}, "", None
    progress(0.1, desc="Reading the original and the result")
    truth = to_uint8(load_image(state.input))
    pred = np.asarray(Image.open(state.output).convert("RGB"))
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
    heat_path = Path(state.output).with_name("delta_e_2000.png")
    metrics.render_heatmap(small, vmax=vmax, path=heat_path, label="dE00")
    return {"photo": "color", "metrics": res}, _metrics_table(res, factor, vmax), str(heat_path)


def metrics_if_new(last: Result | None, measured):
    """The metrics step after the hint and variation controls: skipped when the result did not change."""
    if not has_output(last) or last.output == measured:
        return gr.skip(), gr.skip(), gr.skip(), measured
    return (*run_metrics(last), last.output)


def shows_metrics(last: Result | None):
    """The metrics box is shown for results of color photos."""
    return gr.update(visible=bool(last is not None and last.color))
