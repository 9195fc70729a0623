"""The color hints' geometry and drawing: clicks on the hint view to full-resolution points and
back, which marker a click is on, the hint view with its markers, the hint list, the hints as
JSON, and hints of a result turned back into the page's points.

The hint view is the result shown at HINT_VIEW_MIN..HINT_VIEW_MAX px (small photos enlarged, so a
click maps onto one pixel), with a marker drawn on each hint. Gradio-free (PIL and numpy only).
"""
from __future__ import annotations

import html
import json
import math
import uuid
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .. import lab
from ..errors import ColorizerError
from ..hints import ab_to_hex
from ..pipeline import load_image
from .state import HintPoint, HintState, Result, has_output

HINT_VIEW_MAX = 1024  # longest side of the clickable hint view
HINT_VIEW_MIN = 640  # small photos are shown enlarged, so a click maps onto one pixel
HINT_SUGGESTIONS = 6


def view_size(width: int, height: int) -> tuple[int, int]:
    side = max(width, height)
    s = min(max(side, HINT_VIEW_MIN), HINT_VIEW_MAX) / side
    return max(1, round(width * s)), max(1, round(height * s))


def view_to_full(vx, vy, width: int, height: int) -> tuple[int, int]:
    """A pixel of the hint view -> the full-resolution pixel under it."""
    vw, vh = view_size(width, height)
    x = int((float(vx) + 0.5) * width / vw)
    y = int((float(vy) + 0.5) * height / vh)
    return min(max(x, 0), width - 1), min(max(y, 0), height - 1)


def full_to_view(x, y, width: int, height: int) -> tuple[float, float]:
    vw, vh = view_size(width, height)
    return (x + 0.5) * vw / width - 0.5, (y + 0.5) * vh / height - 0.5


def marker_radius(width: int, height: int) -> int:
    return max(6, round(max(view_size(width, height)) * 0.013))


def hint_at(points: list[HintPoint], vx, vy, width: int, height: int) -> int | None:
    """The index of the hint whose marker lies under a click on the view (the nearest), or None."""
    r = marker_radius(width, height) + 2
    best, best_d = None, float("inf")
    for i, p in enumerate(points):
        px, py = full_to_view(p.x, p.y, width, height)
        d = math.hypot(px - float(vx), py - float(vy))
        if d <= r and d < best_d:
            best, best_d = i, d
    return best


def hex_at(arr: np.ndarray, x: int, y: int, a: float, b: float) -> str:
    """The color (a, b) at the photo's own lightness at pixel (x, y)."""
    L = lab.rgb_to_lightness(arr[int(y):int(y) + 1, int(x):int(x) + 1])
    return ab_to_hex(float(L.reshape(-1)[0]), float(a), float(b))


def result_ab(last: Result, x: int, y: int) -> tuple[float, float]:
    """The chroma of the current result at (x, y): a new hint's color where there are no suggestions."""
    with Image.open(last.output) as im:
        px = np.asarray(im.convert("RGB").crop((x, y, x + 1, y + 1)))
    ab = lab.rgb_to_lab(px)[0, 0, 1:]
    return float(ab[0]), float(ab[1])


def points_of_result(last: Result) -> HintState:
    """A result's hints ([[x, y, a, b], ...]) as the page's hint state, the last one selected;
    each colored at the photo's lightness (mid-gray where the photo cannot be read)."""
    arr = None
    points = []
    for x, y, a, b in last.hints or []:
        xi, yi = int(x), int(y)
        try:
            if arr is None:
                arr = load_image(last.input)
            hx = hex_at(arr, xi, yi, a, b)
        except (ColorizerError, IndexError):
            hx = ab_to_hex(50.0, a, b)
        points.append(HintPoint(x=xi, y=yi, a=a, b=b, hex=hx))
    return HintState(points=points, selected=len(points) - 1 if points else None, suggestions=[])


def hint_view(last: Result | None, hs: HintState) -> str | None:
    """The current result with a marker on each hint (the selected one ringed), as a file."""
    src = last.after if last is not None else None
    if not src or not Path(src).is_file():
        return None
    W, H = int(last.width), int(last.height)
    with Image.open(src) as im:
        view = im.convert("RGB").resize(view_size(W, H), Image.LANCZOS)
    draw = ImageDraw.Draw(view)
    r = marker_radius(W, H)
    for i, p in enumerate(hs.points):
        cx, cy = full_to_view(p.x, p.y, W, H)
        if i == hs.selected:
            R = r + 5
            draw.ellipse((cx - R, cy - R, cx + R, cy + R), outline="#f59e0b", width=3)
        draw.ellipse((cx - r - 1, cy - r - 1, cx + r + 1, cy + r + 1), fill="black")
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=p.hex, outline="white", width=2)
    path = Path(src).with_name(f"hints_{uuid.uuid4().hex[:10]}.jpg")  # a new name: no stale cache
    view.save(path, format="JPEG", quality=90)
    return str(path)


def hint_list_html(hs: HintState, last: Result | None) -> str:
    """The list of hints under the view (HTML): swatch, color and pixel of each."""
    points = hs.points
    if not points:
        if has_output(last):
            return ("<p class='hint-empty'>No hints yet: click on the photo above to place one.</p>")
        return "<p class='hint-empty'>Colorize a photo first, then click on it to place hints.</p>"
    rows = []
    for i, p in enumerate(points):
        sel = i == hs.selected
        hx = html.escape(p.hex)
        rows.append(f"<li class='{'hint-selected' if sel else ''}'><span class='hint-swatch' "
                    f"style='background:{hx}'></span> <code>{hx}</code> "
                    f"at ({int(p.x)}, {int(p.y)})" + (" <b>selected</b>" if sel else "") + "</li>")
    n = len(points)
    return (f"<div><b>{n} hint{'s' if n != 1 else ''}</b> (click a marker to select it)"
            f"<ol class='hint-rows'>{''.join(rows)}</ol></div>")


def hints_json_text(hs: HintState) -> str:
    """The hints as the JSON /colorize_hints takes ("" for none)."""
    return json.dumps([{"x": int(p.x), "y": int(p.y), "a": round(float(p.a), 1),
                        "b": round(float(p.b), 1)} for p in hs.points]) if hs.points else ""
