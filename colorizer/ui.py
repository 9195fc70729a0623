"""The Colorize tab of the web app (Gradio): one photo, compare models, batch.

The tab itself lives in the package colorizer/webapp/ (one module per feature; its docstring
says which modules may import gradio). This module keeps the names app.py and outside code
import, as re-exports:

* models: loaded once per process and shared by every user, in a small cache keyed by model name
  and weights file, behind a lock (`get_model`; webapp/models.py);
* per-user data: each user's last result (the metrics step reads it), color hints and
  variations are gr.State holding dataclasses (webapp/state.py);
* every event has an api_name, so gradio_client can call the app like any Gradio Space:
  `colorize`, `metrics`, `compare`, `batch`, `colorize_hints`, `suggest_colors`, `variations`,
  and the API-only `models`; the page's own controls (hint clicks, undo, picking a variation)
  are private events (webapp/layout.py).

Every bad input ends in a gr.Error whose message says what is wrong (never a traceback), and an
error in one user's request does not touch anyone else's. Each request is priced before any work
starts (colorizer/budget.py); the events that work on full-resolution photos share one queue
group (HEAVY_GROUP) and run on their own lower-priority threads (`heavy`), and what a large
request allocated is handed back to the system afterwards (colorizer/memory.py; webapp/running.py).
"""
from __future__ import annotations

from .webapp.batch import run_batch
from .webapp.compare import run_compare
from .webapp.components import CSS, photo_input, setting_slider, theme
from .webapp.files import cache_root, example_photos
from .webapp.hint_events import (render_hint_panel, run_hint_clear, run_hint_click, run_hint_color,
                                 run_hint_swatch, run_hint_undo, run_suggest_colors)
from .webapp.layout import build_colorize_tab, describe_limits, refresh_on_load, upload_limit
from .webapp.models import api_models, get_model, loaded_models, model_choices, preload
from .webapp.one_photo import run_colorize, run_colorize_hints, run_metrics
from .webapp.request import colorize_array, request_budget
from .webapp.running import HEAVY_GROUP, heavy, user_errors
from .webapp.variations import run_variations

__all__ = ["build_colorize_tab", "refresh_on_load", "preload", "get_model", "theme", "CSS",
           "upload_limit", "describe_limits", "run_colorize", "run_metrics", "run_compare",
           "run_batch", "api_models", "run_colorize_hints", "run_suggest_colors", "run_variations",
           # also used by app.py, scripts/ and tests/
           "cache_root", "colorize_array", "render_hint_panel", "run_hint_click", "run_hint_color",
           "run_hint_swatch", "run_hint_undo", "run_hint_clear",
           # the building blocks other tabs may reuse
           "example_photos", "loaded_models", "model_choices", "photo_input", "setting_slider",
           "request_budget", "HEAVY_GROUP", "heavy", "user_errors"]
