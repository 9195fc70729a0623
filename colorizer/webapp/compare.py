"""Compare models: several models on one photo, side by side (/compare).

Imports gradio (handler).
"""
from __future__ import annotations

import time
from pathlib import Path

import gradio as gr

from ..registry import resolve
from ..uploads import inspect_image, shown_name
from .files import display_name, new_output_dir, preview
from .models import get_model
from .request import check_input_size, colorize_array, load, request_budget, require_photo
from .running import heavy, user_errors
from .state import INPUT_SIZE_DEFAULT

COMPARE_SIDE = 1024  # longest side of each image in the compare gallery
COMPARE_MAX_MODELS = 12  # different models in one comparison (every shipped model fits)


def _model_names(model_names) -> list[str]:
    """The distinct models ticked (a model named twice runs once), checked."""
    if isinstance(model_names, str):
        model_names = [model_names]
    names = [n for n in (model_names or []) if n]
    if not names:
        raise gr.Error("tick at least one model to compare")
    if not all(isinstance(n, str) for n in names):
        raise gr.Error("the models to compare are a list of model names")
    resolved = list(dict.fromkeys(resolve(n).name for n in names))
    if len(resolved) > COMPARE_MAX_MODELS:
        raise gr.Error(f"{len(resolved)} models were ticked; at most {COMPARE_MAX_MODELS} are compared at once")
    return resolved


@user_errors
@heavy
def run_compare(photo, model_names, input_size=INPUT_SIZE_DEFAULT, progress=gr.Progress()):
    """Several models on one photo: ([(preview, caption)], markdown table of timings)."""
    require_photo(photo)
    names = _model_names(model_names)
    size = check_input_size(input_size)
    upload_name = shown_name(Path(str(photo)).name)
    info = inspect_image(photo, name=upload_name)
    request_budget().check(info.width, info.height, size, len(names), "models")
    arr = load(photo, upload_name)
    out = new_output_dir()
    gallery = [(preview(arr, out / "input.jpg", COMPARE_SIDE), "input")]
    rows = ["| model | time (s) | network (s) |", "|---|---|---|"]
    for i, n in enumerate(names):
        progress((i, len(names)), desc=f"Colorizing with {n}", unit="models")
        c = get_model(n)
        t = time.perf_counter()
        rgb, t_net = colorize_array(c, arr, size)
        dt = time.perf_counter() - t
        gallery.append((preview(rgb, out / f"{i}_{display_name(c.name)}.jpg", COMPARE_SIDE),
                        f"{c.name} - {dt:.2f} s"))
        rows.append(f"| {c.name} | {dt:.2f} | {t_net:.2f} |")
    h, w = arr.shape[:2]
    return gallery, f"{w:,} x {h:,} px at {size} px working resolution:\n\n" + "\n".join(rows)
