"""One request's work before and at its heart: checking its settings and what it will cost
(`request_budget`), loading the model and the photo (`prepare`, giving a `Work`), and
colorizing an array (`colorize_array`).

Imports gradio (a bad setting is a gr.Error).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np

from .. import adjust, lab
from ..budget import Budget
from ..errors import ImageError
from ..pipeline import Colorizer, load_image
from ..settings import settings
from ..uploads import inspect_image, shown_name
from .models import get_model
from .state import INPUT_SIZE_MAX, INPUT_SIZE_MIN, VIVIDNESS_MAX, VIVIDNESS_MIN, RequestSettings

NO_PHOTO = "upload a photo first (or pick one of the examples)"


def require_photo(photo) -> None:
    if not photo:
        raise gr.Error(NO_PHOTO)


def check_input_size(value) -> int:
    try:
        v = int(float(value))
    except (TypeError, ValueError):
        raise gr.Error(f"the working resolution must be a number of pixels, got {value!r}")
    if not INPUT_SIZE_MIN <= v <= INPUT_SIZE_MAX:
        raise gr.Error(f"the working resolution must lie between {INPUT_SIZE_MIN} and {INPUT_SIZE_MAX} "
                       f"pixels, got {v}")
    return v


def check_vividness(value) -> float:
    try:
        v = float(1.0 if value is None else value)
    except (TypeError, ValueError):
        raise gr.Error(f"vividness must be a number, got {value!r}")
    if not (math.isfinite(v) and VIVIDNESS_MIN <= v <= VIVIDNESS_MAX):
        raise gr.Error(f"vividness must lie between {VIVIDNESS_MIN:g} and {VIVIDNESS_MAX:g}, got {v}")
    return v


def load(path, name: str) -> np.ndarray:
    """load_image with messages that name the user's file, not the server's copy of it."""
    try:
        return load_image(path)
    except ImageError as exc:
        if isinstance(path, (str, os.PathLike)):
            raise ImageError(str(exc).replace(str(path), name)) from exc
        raise


def reference_stats(path) -> tuple[np.ndarray, np.ndarray] | None:
    """The mean and spread of a and b of the color reference photo (None without one)."""
    if not path:
        return None
    name = f"the color reference {shown_name(Path(str(path)).name)}"
    inspect_image(path, name=name)
    ref = load(path, name)
    if not adjust.is_color(ref):
        raise gr.Error("the color reference is a gray photo: pick a color photo whose colors "
                       "you want to borrow, or clear it")
    return adjust.ab_stats(ref)


def no_hints_message(c: Colorizer) -> str:
    return (f"model {c.name!r} does not take color hints: pick a model that does (the default "
            "model does), then place the hints again")


def require_hints(c: Colorizer) -> None:
    if not c.accepts_hints:
        raise gr.Error(no_hints_message(c))


@dataclass
class Work:
    """One request's photo, model and settings, checked and loaded (see prepare)."""
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


def prepare(req: RequestSettings, progress, outputs: int = 1, what: str = "outputs",
            least: int = 1) -> Work:
    """Check the settings, the upload and the request's cost (`outputs` full-resolution
    results, named `what` in the message), then load the model and the photo."""
    photo = req.photo
    require_photo(photo)
    t0 = time.perf_counter()
    size = check_input_size(req.input_size)
    vivid = check_vividness(req.vividness)
    progress(0.05, desc="Checking the photo")
    upload_name = shown_name(Path(str(photo)).name)
    info = inspect_image(photo, name=upload_name)
    request_budget().check(info.width, info.height, size, outputs, what, least)
    progress(0.15, desc="Loading the model")
    c = get_model(req.model_name)
    ref_stats = reference_stats(req.reference)
    progress(0.25, desc=f"Reading {info.width} x {info.height} pixels")
    arr = load(photo, upload_name)
    return Work(str(photo), upload_name, info, c, size, vivid, ref_stats, arr, adjust.is_color(arr), t0)


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
