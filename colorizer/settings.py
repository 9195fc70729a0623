"""The colorizer package's settings, read from the environment in this one place.

    COLORIZER_WEIGHTS_DIR         where model weights are (default: the repository's weights/)
    COLORIZER_CACHE_DIR           decoded training photos (default: .cache/photos in the repository)
    COLORIZER_APP_CACHE           the app's examples and results (default: <tmp>/colorizer-app)
    COLORIZER_MAX_UPLOAD_MB       upload size limit of the app, megabytes (default 100)
    COLORIZER_MAX_MEGAPIXELS      pixel limit of one photo, megapixels (default 40)
    COLORIZER_MAX_REQUEST_UNITS   work one request may cost, colorizer/budget.py units (default 200)
    COLORIZER_MAX_BATCH_UNITS     work one batch may cost (default 4000)
    COLORIZER_CONCURRENCY         colorization jobs the app runs at once (default: one per 2 cores)

`Settings.from_env()` reads them (a value that is not a number, or out of range, is reported in
the log and the default is used); nothing else in the package reads os.environ for these, and
nothing writes it.
"""
from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .budget import BATCH_UNITS, REQUEST_UNITS

log = logging.getLogger("colorizer.settings")

REPO_DIR = Path(__file__).resolve().parent.parent

MAX_UPLOAD_MB = 100.0
MAX_MEGAPIXELS = 40.0  # a 12 MP photo is well inside it
MAX_REQUEST_UNITS = REQUEST_UNITS  # about 10 s of work on a 2-core machine
MAX_BATCH_UNITS = BATCH_UNITS
# one colorization per two cores: on 2 cores a second job at once slows the survey's votes
# (scripts/load_turing.py --colorize-mp 12: vote p95 234 ms with one, 373 ms with two)
CONCURRENCY = max(1, (os.cpu_count() or 2) // 2)


def _number(env, name: str, default: float, minimum: float, maximum: float = float("inf")) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        v = float(raw)
    except ValueError:
        v = float("nan")
    if not (minimum <= v <= maximum):  # NaN fails too
        log.warning("%s=%r is not a number from %g to %g: using %g", name, raw[:40], minimum,
                    maximum, default)
        return default
    return v


@dataclass(frozen=True)
class Settings:
    weights_dir: Path = REPO_DIR / "weights"
    cache_dir: Path = REPO_DIR / ".cache" / "photos"
    app_cache: Path = Path(tempfile.gettempdir()) / "colorizer-app"
    max_upload_mb: float = MAX_UPLOAD_MB
    max_megapixels: float = MAX_MEGAPIXELS
    max_request_units: float = MAX_REQUEST_UNITS
    max_batch_units: float = MAX_BATCH_UNITS
    concurrency: int = CONCURRENCY

    @property
    def max_pixels(self) -> int:
        return int(self.max_megapixels * 1_000_000)

    @classmethod
    def from_env(cls, env=None) -> "Settings":
        env = os.environ if env is None else env
        d = cls()
        return cls(
            weights_dir=Path(env.get("COLORIZER_WEIGHTS_DIR") or d.weights_dir),
            cache_dir=Path(env.get("COLORIZER_CACHE_DIR") or d.cache_dir),
            app_cache=Path(env.get("COLORIZER_APP_CACHE") or d.app_cache),
            max_upload_mb=_number(env, "COLORIZER_MAX_UPLOAD_MB", d.max_upload_mb, 1),
            max_megapixels=_number(env, "COLORIZER_MAX_MEGAPIXELS", d.max_megapixels, 0.0001),
            max_request_units=_number(env, "COLORIZER_MAX_REQUEST_UNITS", d.max_request_units, 1),
            max_batch_units=_number(env, "COLORIZER_MAX_BATCH_UNITS", d.max_batch_units, 1),
            concurrency=int(_number(env, "COLORIZER_CONCURRENCY", d.concurrency, 1, 64)),
        )


def settings() -> Settings:
    """The settings as the environment gives them now (cheap: read on each call, so a test or a
    launcher that sets a variable before starting the app is seen)."""
    return Settings.from_env()
