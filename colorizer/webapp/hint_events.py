"""The color hints' handlers: the page's own controls (a click on the hint view, a suggested
color, the color picker, undo, clear; private events), the hints a /colorize_hints call from the
page leaves, the API's /suggest_colors, and what the page shows of the hint state.

The page's hints are a HintState in a gr.State per user (colorizer/webapp/state.py); the
geometry and drawing are in hint_geometry. Imports gradio (handlers).
"""
from __future__ import annotations

import math

import gradio as gr

from ..hints import color_to_ab, parse_hints
from ..pipeline import Colorizer
from .files import swatch
from .hint_geometry import (HINT_SUGGESTIONS, hex_at, hint_at, hint_list_html, hint_view,
                            hints_json_text, points_of_result, result_ab, view_to_full)
from .models import get_model
from .one_photo import finish
from .request import NO_PHOTO, Work, prepare, require_hints, require_photo
from .running import heavy, user_errors
from .state import INPUT_SIZE_DEFAULT, HintPoint, HintState, RequestSettings, Result, has_output

NOT_COLORIZED = "colorize the photo first, then click on the result to place color hints"


def can_suggest(c: Colorizer) -> bool:
    return bool(c.predicts_distribution or hasattr(c.model, "suggest_colors"))


def suggest(w: Work, x: int, y: int, others) -> list[dict]:
    """The model's likely colors at (x, y) given the other hints ([] for a model that cannot tell)."""
    if not can_suggest(w.c):
        return []
    rows = w.c.suggest_colors(w.arr, x, y, k=HINT_SUGGESTIONS, hints=list(others) or None,
                              input_size=w.size)
    return [{"a": round(float(r["a"]), 2), "b": round(float(r["b"]), 2),
             "probability": round(float(r["probability"]), 4), "hex": r["hex"]} for r in rows]


def recolor(w: Work, hs: HintState, progress, strict: bool = True) -> tuple:
    """Colorize with the page's hints: (PNG, (before, after), message, Result, HintState)."""
    hints = hs.tuples()
    notes = []
    if hints and not w.c.accepts_hints:
        if strict:
            require_hints(w.c)
        notes.append(f"**{w.c.name}** does not take color hints: the hints were not used.")
        hints = []
    return (*finish(w, hints, progress, notes), hs)


def no_change(hs: HintState) -> tuple:
    return gr.skip(), gr.skip(), gr.skip(), gr.skip(), hs


def _select(w: Work, hs: HintState, near: int) -> tuple:
    """A click on a marker: select that hint (its color can be changed below)."""
    p = hs.points[near]
    hs.selected = near
    others = [q.as_tuple() for i, q in enumerate(hs.points) if i != near]
    hs.suggestions = suggest(w, p.x, p.y, others)
    return no_change(hs)


@user_errors
@heavy
def run_hint_click(photo, model_name, input_size, vividness, reference, last: Result | None,
                   hs: HintState | None, evt: gr.SelectData, progress=gr.Progress()):
    """A click on the hint view: on a marker, select that hint; elsewhere, place a new hint
    there with the model's most likely color and colorize again.
    Returns (PNG, (before, after), message, Result, HintState)."""
    req = RequestSettings(photo, model_name, input_size, vividness, reference)
    require_photo(req.photo)
    if not has_output(last):
        raise gr.Error(NOT_COLORIZED)
    hs = HintState.of(hs)
    index = evt.index if evt is not None else None
    if not (isinstance(index, (list, tuple)) and len(index) == 2 and None not in index):
        return no_change(hs)  # a click beside the picture
    require_hints(get_model(req.model_name))
    W, H = int(last.width), int(last.height)
    near = hint_at(hs.points, index[0], index[1], W, H)
    w = prepare(req, progress)
    if (w.width, w.height) != (W, H):
        raise gr.Error("the photo changed since it was colorized: press Colorize again")
    if near is not None:
        return _select(w, hs, near)
    x, y = view_to_full(index[0], index[1], W, H)
    progress(0.35, desc="Suggesting colors")
    suggestions = suggest(w, x, y, hs.tuples())
    if suggestions:
        a, b = suggestions[0]["a"], suggestions[0]["b"]
    else:
        a, b = result_ab(last, x, y)
    hs.points.append(HintPoint(x=x, y=y, a=round(a, 2), b=round(b, 2), hex=hex_at(w.arr, x, y, a, b)))
    hs.selected = len(hs.points) - 1
    hs.suggestions = suggestions
    return recolor(w, hs, progress)


def _set_selected_color(req: RequestSettings, last: Result | None, hs: HintState | None, ab,
                        progress) -> tuple:
    hs = HintState.of(hs)
    p = hs.selected_point()
    if p is None:
        raise gr.Error("click on the colorized photo to place a hint (or on a hint to select it) first")
    if not has_output(last):
        raise gr.Error(NOT_COLORIZED)
    w = prepare(req, progress)
    require_hints(w.c)
    a, b = float(ab[0]), float(ab[1])
    p.a, p.b, p.hex = round(a, 2), round(b, 2), hex_at(w.arr, p.x, p.y, a, b)
    return recolor(w, hs, progress)


@user_errors
@heavy
def run_hint_swatch(photo, model_name, input_size, vividness, reference, last: Result | None,
                    hs: HintState | None, evt: gr.SelectData, progress=gr.Progress()):
    """A click on one of the suggested colors: the selected hint takes it."""
    sugg = HintState.of(hs).suggestions
    i = evt.index if evt is not None else None
    if not isinstance(i, int) or not 0 <= i < len(sugg):
        raise gr.Error("click on the colorized photo to place a hint first; its suggested colors appear here")
    req = RequestSettings(photo, model_name, input_size, vividness, reference)
    return _set_selected_color(req, last, hs, (sugg[i]["a"], sugg[i]["b"]), progress)


@user_errors
@heavy
def run_hint_color(photo, model_name, input_size, vividness, reference, last: Result | None,
                   hs: HintState | None, colour, progress=gr.Progress()):
    """A color from the color picker for the selected hint (only its chroma is used)."""
    state = HintState.of(hs)
    p = state.selected_point()
    if p is not None and str(colour or "").lower() in (p.hex.lower(), str(p.picked or "").lower()):
        return no_change(state)  # the color shown already (the picker lost focus unchanged)
    if not colour:
        return no_change(state)
    req = RequestSettings(photo, model_name, input_size, vividness, reference)
    out = _set_selected_color(req, last, hs, color_to_ab(colour), progress)
    new_state = out[-1]
    new_state.points[new_state.selected].picked = str(colour)
    return out


def _edit_hints(req: RequestSettings, last: Result | None, hs: HintState | None, keep: int,
                progress) -> tuple:
    hs = HintState.of(hs)
    hs.points = hs.points[:max(0, keep)]
    hs.selected = len(hs.points) - 1 if hs.points else None
    hs.suggestions = []
    if not req.photo or not has_output(last):
        return no_change(hs)  # nothing colorized yet: only the list changes
    w = prepare(req, progress)
    return recolor(w, hs, progress, strict=False)


@user_errors
@heavy
def run_hint_undo(photo, model_name, input_size, vividness, reference, last: Result | None,
                  hs: HintState | None, progress=gr.Progress()):
    """Remove the last hint placed and colorize again."""
    n = len(HintState.of(hs).points)
    if n == 0:
        raise gr.Error("there are no hints to undo")
    req = RequestSettings(photo, model_name, input_size, vividness, reference)
    return _edit_hints(req, last, hs, n - 1, progress)


@user_errors
@heavy
def run_hint_clear(photo, model_name, input_size, vividness, reference, last: Result | None,
                   hs: HintState | None, progress=gr.Progress()):
    """Remove every hint and colorize again without them."""
    if not HintState.of(hs).points:
        return no_change(HintState())
    req = RequestSettings(photo, model_name, input_size, vividness, reference)
    return _edit_hints(req, last, hs, 0, progress)


def adopt_hints(last: Result | None, hs: HintState | None) -> HintState:
    """After /colorize_hints from the page: its hints become the page's hints."""
    if last is None or not last.input:
        return HintState.of(hs)
    if [list(t) for t in HintState.of(hs).tuples()] == [list(h) for h in last.hints or []]:
        return HintState.of(hs)
    return points_of_result(last)


def _point(x, y) -> tuple[float, float]:
    if x is None or y is None:
        raise gr.Error("give the point's x and y in pixels of the photo")
    try:
        xf, yf = float(x), float(y)
    except (TypeError, ValueError):
        raise gr.Error(f"x and y must be numbers of pixels, got {x!r} and {y!r}") from None
    if not (math.isfinite(xf) and math.isfinite(yf)):
        raise gr.Error(f"x and y must be finite numbers of pixels, got {x!r} and {y!r}")
    return xf, yf


@user_errors
@heavy
def run_suggest_colors(photo, model_name, x, y, hints="", input_size=INPUT_SIZE_DEFAULT,
                       progress=gr.Progress()):
    """The model's most likely colors at pixel (x, y) of the photo (full-resolution pixels, x to
    the right and y down from the top-left corner), most likely first, given optional other
    hints (JSON, as /colorize_hints): [{"a", "b", "probability", "hex"}, ...]."""
    if not photo:
        raise gr.Error(NO_PHOTO)
    xf, yf = _point(x, y)
    others = parse_hints(hints)
    w = prepare(RequestSettings(photo, model_name, input_size, 1.0, None), progress)
    if not (0 <= xf < w.width and 0 <= yf < w.height):
        raise gr.Error(f"point ({xf:g}, {yf:g}) lies outside the {w.width} x {w.height} photo "
                       f"(x must lie in 0..{w.width - 1}, y in 0..{w.height - 1})")
    others = parse_hints(hints, w.width, w.height)
    if others:
        require_hints(w.c)
    if not can_suggest(w.c):
        raise gr.Error(f"model {w.c.name!r} cannot suggest colors (it predicts one color per "
                       "pixel): pick the default model")
    return suggest(w, int(xf), int(yf), others)


def render_hint_panel(last: Result | None, hs: HintState | None, picker: bool = True) -> tuple:
    """(hint view, hint list, hints JSON, swatches, color picker, x, y, suggestions JSON)."""
    hs = HintState.of(hs)
    p = hs.selected_point()
    swatches = [(swatch(s["hex"]), f"{s['probability']:.0%}") for s in hs.suggestions]
    keep = gr.skip()
    return (hint_view(last, hs) if last is not None else None, hint_list_html(hs, last),
            hints_json_text(hs), gr.update(value=swatches, selected_index=None),
            p.hex if p and picker else keep, p.x if p else keep, p.y if p else keep,
            hs.suggestions if p else None)


def render_keep_picker(last: Result | None, hs: HintState | None) -> tuple:
    """render_hint_panel, leaving the color picker as the user set it."""
    return render_hint_panel(last, hs, picker=False)
