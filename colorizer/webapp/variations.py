"""Variations: several plausible colorizations of one photo (/variations), and picking one to
make it the result (a private event).

Imports gradio (handlers).
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import replace

import gradio as gr
from PIL import Image

from .. import adjust, lab
from ..hints import parse_hints
from .files import PNG_LEVEL, PREVIEW_SIDE, WRITER, display_name, new_output_dir, preview
from .request import Work, prepare, require_hints, require_photo
from .running import heavy, user_errors
from .state import INPUT_SIZE_DEFAULT, RequestSettings, Result, Variations

log = logging.getLogger("colorizer.app")

VARIATIONS_MIN, VARIATIONS_MAX, VARIATIONS_DEFAULT = 2, 8, 4
SEED_MAX = 2 ** 31 - 1


def variation_count(n) -> int:
    try:
        v = float(n)
    except (TypeError, ValueError):
        raise gr.Error(f"the number of variations must be a whole number, got {n!r}") from None
    if not (math.isfinite(v) and v == int(v) and VARIATIONS_MIN <= v <= VARIATIONS_MAX):
        raise gr.Error(f"the number of variations must be a whole number from {VARIATIONS_MIN} "
                       f"to {VARIATIONS_MAX}, got {n!r}")
    return int(v)


def seed_of(seed) -> tuple[int, bool]:
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


def _variations_message(w: Work, name: str, count: int, seed_value: int, random_seed: bool,
                        seconds: float, t_net: float, points, large: bool) -> str:
    lines = [f"**{count} variations** of `{name}` ({w.width:,} x {w.height:,} px) with **{w.c.name}** "
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
    return "\n\n".join(lines)


def _sample(w: Work, count: int, seed_value: int, points) -> tuple[list, float]:
    """The model's `count` variations (at the request's vividness) and the seconds they took."""
    t = time.perf_counter()
    rgbs = w.c.variations(w.arr, n=count, seed=seed_value, hints=points or None, input_size=w.size)
    t_net = time.perf_counter() - t
    if w.vivid != 1.0:
        L = lab.rgb_to_lightness(w.arr)
        rgbs = [lab.l_ab_to_rgb_uint8(L, adjust.scale_chroma(lab.rgb_to_lab(x)[..., 1:], w.vivid))
                for x in rgbs]
    return rgbs, t_net


@user_errors
@heavy
def run_variations(photo, model_name, n=VARIATIONS_DEFAULT, seed=0, hints="",
                   input_size=INPUT_SIZE_DEFAULT, vividness=1.0, progress=gr.Progress()):
    """n different plausible colorizations of one photo (optionally with hints, JSON as in
    /colorize_hints). Returns (gallery of the n results, message, their full-resolution PNGs,
    Variations); the gallery holds the PNGs themselves for photos up to 1600 px, previews above."""
    require_photo(photo)
    count = variation_count(n)
    seed_value, random_seed = seed_of(seed)
    parse_hints(hints)
    w = prepare(RequestSettings(photo, model_name, input_size, vividness, None), progress,
                outputs=count, what="variations", least=VARIATIONS_MIN)
    c = w.c
    if not c.predicts_distribution:
        raise gr.Error(f"model {c.name!r} predicts one color per pixel, not a distribution of "
                       "colors, so it cannot make variations: pick the default model")
    points = parse_hints(hints, w.width, w.height)
    if points:
        require_hints(c)
    progress(0.4, desc=f"Sampling {count} variations with {c.name}")
    rgbs, t_net = _sample(w, count, seed_value, points)
    progress(0.75, desc="Writing the PNGs")
    out = new_output_dir()
    name = display_name(photo)
    pngs = [out / f"{name}_variation_{i + 1}.png" for i in range(count)]
    jobs = [WRITER.submit(Image.fromarray(x).save, p, format="PNG", compress_level=PNG_LEVEL)
            for x, p in zip(rgbs, pngs)]
    before = preview(w.arr, out / "before.jpg", PREVIEW_SIDE)
    large = max(w.width, w.height) > PREVIEW_SIDE
    views = ([preview(x, out / f"variation_{i + 1}.jpg", PREVIEW_SIDE) for i, x in enumerate(rgbs)]
             if large else [str(p) for p in pngs])
    for j in jobs:
        j.result()
    seconds = time.perf_counter() - w.t0
    gallery = [(v, f"variation {i + 1}") for i, v in enumerate(views)]
    message = _variations_message(w, name, count, seed_value, random_seed, seconds, t_net, points, large)
    base = Result(input=w.photo, output=None, color=w.color, name=name, model=c.name,
                  input_size=w.size, vividness=w.vivid, seconds=None, width=w.width,
                  height=w.height, before=before, after=None,
                  hints=[[round(float(v), 2) for v in h] for h in points])
    state = Variations(base=base, pngs=[str(p) for p in pngs], views=views, seed=seed_value)
    log.info("%d variations of %s (%d x %d) with %s, seed %d, in %.2f s", count, name, w.width,
             w.height, c.name, seed_value, seconds)
    return gallery, message, [str(p) for p in pngs], state


@user_errors
def run_pick_variation(vstate: Variations | None, evt: gr.SelectData):
    """A click on a variation: it becomes the result (slider, full-resolution PNG, metrics)."""
    if vstate is None or not vstate.pngs:
        raise gr.Error("make some variations first")
    i = evt.index if evt is not None else None
    if not isinstance(i, int) or not 0 <= i < len(vstate.pngs):
        raise gr.Error("pick one of the variations")
    png, view = vstate.pngs[i], vstate.views[i]
    n = len(vstate.pngs)
    base = vstate.base
    last = replace(base, output=png, after=view, variation=i + 1, seconds=None)
    message = (f"**Variation {i + 1} of {n}** (seed {vstate.seed}) of `{base.name}` with "
               f"**{base.model}** is the result now; the PNG is full size "
               f"({base.width:,} x {base.height:,} px). Placing a hint colorizes the photo "
               "again from the model's own prediction.")
    return png, (base.before, view), message, last
