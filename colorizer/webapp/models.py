"""The shared model cache: models are loaded once per process and shared by every user, in a
small cache keyed by model name and weights file, behind a lock; the menu of models and the
API's list of them.

Gradio-free.
"""
from __future__ import annotations

import logging
import threading
import time

import numpy as np

from ..errors import ColorizerError
from ..pipeline import Colorizer
from ..registry import DEFAULT_MODEL, list_models, resolve
from ..settings import settings

log = logging.getLogger("colorizer.app")

_MODELS: dict[str, Colorizer] = {}
_MODELS_LOCK = threading.Lock()


def get_model(name: str | None) -> Colorizer:
    """The loaded model of that name (or alias), loading it on first use."""
    entry = resolve(name if name and str(name).strip() else "default")
    key = f"{entry.name}|{entry.path}"
    with _MODELS_LOCK:
        c = _MODELS.get(key)
        if c is None:
            from .. import load_colorizer
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
    return [(model_label(r), r["name"]) for r in rows]


def model_label(row: dict) -> str:
    """A model's menu line: its name (and whether it is the default), then what it is."""
    name = f"{row['name']} (default)" if row["name"] == DEFAULT_MODEL else row["name"]
    return f"{name}: {row['summary']}" if row.get("summary") else name


def preload(names=None) -> list[str]:
    """Load the default model (or `names`) at start-up and log what was loaded."""
    available = [v for _, v in model_choices()]
    if not available:
        log.warning("no model weights found in %s: the app starts, but colorizing needs a model "
                    "(see README: Models)", settings().weights_dir)
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


def api_models() -> list[dict]:
    """The models whose weights are present (name, description, one-line summary, working size, loaded)."""
    loaded = set(loaded_models())
    return [{"name": r["name"], "aliases": r["aliases"], "description": r["description"],
             "summary": r["summary"], "input_size": r["input_size"], "loaded": r["name"] in loaded}
            for r in list_models()]
