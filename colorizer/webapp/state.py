"""Typed per-user state of the Colorize tab and the settings of one request.

Gradio-free, no I/O: plain dataclasses that the gr.State components hold (a user's last result,
the page's color hints, the last variations) and the settings every one-photo handler gets as
positional gradio inputs. No API client sees these objects: gr.State is not part of the API.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

INPUT_SIZE_DEFAULT = 256
# the settings' ranges: the sliders show them and the handlers check them (API calls too)
INPUT_SIZE_MIN, INPUT_SIZE_MAX = 128, 1024
VIVIDNESS_MIN, VIVIDNESS_MAX = 0.0, 2.0


@dataclass(frozen=True)
class RequestSettings:
    """One request's photo and settings as the page (or the API) sent them, unchecked
    (request.prepare checks them): built once per handler from its positional inputs."""
    photo: object = None
    model_name: object = None
    input_size: object = INPUT_SIZE_DEFAULT
    vividness: object = 1.0
    reference: object = None


@dataclass
class Result:
    """A user's last result (the `last` gr.State): what the metrics step, the hint controls and
    the hint view read. hints: [[x, y, a, b], ...] in full-resolution pixels."""
    input: str
    output: str | None
    color: bool
    name: str
    model: str
    input_size: int
    vividness: float
    seconds: float | None
    width: int
    height: int
    before: str
    after: str | None
    hints: list[list[float]] = field(default_factory=list)
    variation: int | None = None  # which variation it is, for a picked variation


def has_output(last: Result | None) -> bool:
    """Whether there is a result with a file (something was colorized)."""
    return last is not None and bool(last.output)


@dataclass
class HintPoint:
    """One of the page's color hints: (x, y) in full-resolution pixels, (a, b) the Lab chroma
    asked for, hex that chroma at the photo's lightness there, picked the color picker's value
    that set it (if it did)."""
    x: int
    y: int
    a: float
    b: float
    hex: str
    picked: str | None = None

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.a, self.b)


@dataclass
class HintState:
    """The page's color hints (the hint gr.State): the points, the index of the one the swatches
    and the color picker act on, and the model's colors for that point's pixel
    ([{"a", "b", "probability", "hex"}, ...], as /suggest_colors returns them)."""
    points: list[HintPoint] = field(default_factory=list)
    selected: int | None = None
    suggestions: list[dict] = field(default_factory=list)

    @classmethod
    def of(cls, hs: HintState | None) -> HintState:
        """A fresh copy of a page's hint state (None: no hints yet)."""
        return cls() if hs is None else copy.deepcopy(hs)

    def tuples(self) -> list[tuple[float, float, float, float]]:
        return [p.as_tuple() for p in self.points]

    def selected_point(self) -> HintPoint | None:
        i = self.selected
        return self.points[i] if i is not None and 0 <= i < len(self.points) else None


def hint_tuples(hs: HintState | None) -> list[tuple[float, float, float, float]]:
    """[(x, y, a, b), ...] of a page's hints (none for None)."""
    return hs.tuples() if hs is not None else []


@dataclass
class Variations:
    """A user's last variations: the result they share (without output, after and seconds), the
    full-resolution PNGs, what the gallery shows of each, and the seed."""
    base: Result
    pngs: list[str]
    views: list[str]
    seed: int
