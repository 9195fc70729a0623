"""The tab's own kinds of components (sliders and photo inputs that check what they get, a help
line), its theme and CSS.

Imports gradio.
"""
from __future__ import annotations

import functools
import math

import gradio as gr

CSS = """
#colorize-button {min-height: 48px; font-size: 1.05em}
.help-line, .help-line p {color: var(--body-text-color-subdued) !important; font-size: 0.88em !important}
#hint-image img {cursor: crosshair}
#hint-list .hint-swatch {display: inline-block; width: 1em; height: 1em; border: 1px solid #0008;
  border-radius: 3px; vertical-align: -0.15em}
#hint-list ol {margin: 0.3em 0 0.5em 1.4em; padding: 0}
#hint-list .hint-empty {color: var(--body-text-color-subdued); font-size: 0.9em}
#hint-suggestions .grid-container {grid-template-columns: repeat(6, minmax(0, 1fr)) !important}
"""


def theme() -> gr.themes.Base:
    """The app's look; system fonts only, so a machine without internet fetches nothing."""
    sans = ["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Consolas", "monospace"]
    return gr.themes.Soft(primary_hue="amber", secondary_hue="sky", neutral_hue="stone",
                          font=sans, font_mono=mono)


def setting_slider(minimum, maximum, *, label: str, what: str = "", **kw) -> gr.Slider:
    """A gr.Slider whose value, from the page or the API, must be a finite number: anything else
    gets a message that names the setting (`what`, default the label) and its range, instead of
    Gradio's internal error for a value it cannot compare. (The check is set on the instance: a
    subclass of a Gradio component makes Gradio write a .pyi stub beside this module.)"""
    slider = gr.Slider(minimum, maximum, label=label, **kw)
    slider.preprocess = functools.partial(_checked_setting, slider, what or label.lower(), slider.preprocess)
    return slider


def _checked_setting(slider, what: str, preprocess, payload):
    try:
        v = float(payload)
        ok = math.isfinite(v) and not isinstance(payload, bool)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        shown = repr(payload)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise gr.Error(f"{what} must be a number from {slider.minimum:g} to {slider.maximum:g}, got {shown}")
    return preprocess(payload if isinstance(payload, (int, float)) else v)


def photo_input(**kwargs) -> gr.Image:
    """A gr.Image whose upload reaches the handler as the uploaded file, unopened.

    A stock gr.Image opens every upload with PIL before the handler runs, which fails with an
    opaque error on a non-image and checks nothing we state. Here the handler inspects the header
    itself (colorizer.uploads.inspect_image) and decodes with the pipeline. (Gradio has already
    checked that the file is one uploaded to this server.) The override is set on the instance:
    a subclass of a Gradio component would make Gradio write a .pyi file into this package.
    """
    comp = gr.Image(type="filepath", image_mode=None, **kwargs)
    stock = comp.preprocess

    def preprocess(payload):
        if payload is None:
            return None
        if payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        return stock(payload)

    comp.preprocess = preprocess
    return comp


def help_line(text: str):
    """A line of help under a control."""
    gr.Markdown(text, elem_classes=["help-line"])
