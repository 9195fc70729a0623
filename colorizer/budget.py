"""What one request of the web app may cost, checked before any work starts (no gradio here).

A request's cost is counted in *units*: each full-resolution output (a colorized photo, one
variation, one compared model, one photo of a batch) costs its megapixels plus the network's
share, NET_WEIGHT per megapixel at the working resolution (the network runs on the photo reduced
to `input_size` on its longest side):

    cost = outputs x (megapixels + NET_WEIGHT x working megapixels)

On this project's 2-core machine a unit is about 0.05 s of work and at most 20 MB of peak memory
(`python scripts/bench_budget.py`; README: limits). A 4:3 photo of 40 MP at 1024 px costs
40 + 20 x 0.79 = 56 units: the default budget of 200 units per request (COLORIZER_MAX_REQUEST_UNITS)
lets it through with up to 3 outputs and refuses 8 variations of it (445 units) with a message
that says what to lower and to how much. A batch holds one photo at a time: each photo must fit
the request budget and the whole batch a larger one (COLORIZER_MAX_BATCH_UNITS, 4000): photos
uploaded as files are counted from their headers before any work starts, archive members are
charged as each is read and skipped once the budget is spent.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ColorizerError

NET_WEIGHT = 20.0  # cost of one megapixel at the working resolution, in full-resolution megapixels
REQUEST_UNITS = 200.0  # default budget of one request (colorizer.settings)
BATCH_UNITS = 4000.0  # default budget of one batch: 70 photos of 40 MP, 500 of 1 MP at 512 px


class BudgetError(ColorizerError):
    """A request that would cost more than its budget; the message says what to lower."""


def working_megapixels(width: int, height: int, input_size: int) -> float:
    """Pixels the network sees: the photo scaled so that its longest side is input_size
    (never enlarged past the photo itself)."""
    side = max(width, height)
    s = min(1.0, input_size / side) if side else 1.0
    return (width * s) * (height * s) / 1e6


def output_cost(width: int, height: int, input_size: int) -> float:
    """Units of one full-resolution output of a width x height photo at input_size."""
    return width * height / 1e6 + NET_WEIGHT * working_megapixels(width, height, input_size)


@dataclass(frozen=True)
class Budget:
    """The app's limits on work per request (from colorizer.settings)."""
    request_units: float = REQUEST_UNITS
    batch_units: float = BATCH_UNITS

    def check(self, width: int, height: int, input_size: int, outputs: int = 1,
              what: str = "outputs", least: int = 1) -> float:
        """Raise BudgetError if `outputs` outputs of this photo exceed the request budget;
        otherwise return their cost. `what` names the outputs in the message ("variations",
        "models"); `least` is the fewest the request can ask for (the advice never goes below)."""
        one = output_cost(width, height, input_size)
        total = one * outputs
        if total <= self.request_units:
            return total
        mp = width * height / 1e6
        head = (f"this request would cost {total:.0f} units of work ({outputs} x {mp:.1f} MP at "
                f"{input_size} px working resolution); the limit is {self.request_units:.0f} per request")
        fits = int(self.request_units // one) if one > 0 else outputs
        if outputs > 1 and fits >= max(1, least):
            name = what[:-1] if fits == 1 and what.endswith("s") else what
            raise BudgetError(f"{head}: ask for at most {fits} {name} for this photo ({one:.0f} units "
                              "each), or use a smaller photo or working resolution")
        # even one output is too much: say how small the photo has to be
        scale = _fitting_scale(width, height, input_size, self.request_units / max(1, least))
        raise BudgetError(f"{head}: use a photo of at most {mp * scale * scale:.1f} MP (about "
                          f"{int(width * scale):,} x {int(height * scale):,} px)"
                          + (f" or fewer {what}" if outputs > max(1, least) else "")
                          + " or a lower working resolution")


def _fitting_scale(width: int, height: int, input_size: int, units: float) -> float:
    """The largest factor s such that the photo scaled by s costs at most `units` (bisection;
    the cost grows with s)."""
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if output_cost(int(width * mid), int(height * mid), input_size) <= units:
            lo = mid
        else:
            hi = mid
    return lo


class BatchMeter:
    """A batch's running total against Budget.batch_units, charged one photo at a time."""

    def __init__(self, budget: Budget, input_size: int):
        self.budget = budget
        self.input_size = input_size
        self.spent = 0.0

    def charge(self, width: int, height: int, name: str) -> None:
        """Charge one photo; BudgetError (naming it) if it alone exceeds the request budget or
        if it does not fit in what is left of the batch's budget."""
        one = output_cost(width, height, self.input_size)
        if one > self.budget.request_units:
            try:
                self.budget.check(width, height, self.input_size)
            except BudgetError as exc:
                raise BudgetError(f"{name}: {exc}") from None
        if self.spent + one > self.budget.batch_units:
            raise BudgetError(f"{name}: not colorized, the batch's budget of "
                              f"{self.budget.batch_units:.0f} units is spent ({self.spent:.0f} used); "
                              "send the remaining photos in another batch")
        self.spent += one
