"""The Colorize tab's layout: one builder per panel and the wiring of their events.

Every event keeps its api_name, its queue group (HEAVY_GROUP with COLORIZER_CONCURRENCY places,
for everything that works on a full-resolution photo) and its inputs and outputs; the page's own
controls are private events. Imports gradio.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ..registry import DEFAULT_MODEL, REGISTRY
from ..settings import settings
from ..uploads import ZIP_MAX_FILES, max_pixels_from_env
from .batch import run_batch
from .compare import run_compare
from .components import help_line, photo_input, setting_slider
from .files import example_photos
from .hint_events import (adopt_hints, render_hint_panel, render_keep_picker, run_hint_clear,
                          run_hint_click, run_hint_color, run_hint_swatch, run_hint_undo,
                          run_suggest_colors)
from .hint_geometry import HINT_SUGGESTIONS, hint_list_html
from .models import api_models, model_choices
from .one_photo import metrics_if_new, run_colorize, run_colorize_hints, run_metrics, shows_metrics
from .running import HEAVY_GROUP
from .state import (INPUT_SIZE_DEFAULT, INPUT_SIZE_MAX, INPUT_SIZE_MIN, VIVIDNESS_MAX, VIVIDNESS_MIN,
                    HintState)
from .variations import SEED_MAX, VARIATIONS_DEFAULT, VARIATIONS_MAX, VARIATIONS_MIN, run_pick_variation, run_variations

PRIVATE = dict(api_visibility="private")


def heavy_queue() -> dict:
    """The queue of every event that colorizes or measures a full-resolution photo: one group, so
    that at most COLORIZER_CONCURRENCY of them run at once whatever the endpoint (the Turing
    test's events are not in it and never wait behind them)."""
    return dict(concurrency_id=HEAVY_GROUP, concurrency_limit=settings().concurrency)


@dataclass
class PhotoInputs:
    photo: gr.Image
    model: gr.Dropdown
    go: gr.Button
    input_size: gr.Slider
    vividness: gr.Slider
    reference: gr.Image


@dataclass
class ResultPanel:
    slider: gr.ImageSlider
    download: gr.File
    message: gr.Markdown
    metrics_box: gr.Column
    metrics_md: gr.Markdown
    heatmap: gr.Image
    metrics_json: gr.JSON


@dataclass
class HintPanel:
    hint_image: gr.Image
    hint_list: gr.HTML
    hint_color: gr.ColorPicker
    swatches: gr.Gallery
    undo: gr.Button
    clear: gr.Button
    hints_json: gr.Textbox
    apply_json: gr.Button
    hint_x: gr.Number
    hint_y: gr.Number
    suggest: gr.Button
    suggest_json: gr.JSON


@dataclass
class VariationsPanel:
    n: gr.Slider
    seed: gr.Number
    go: gr.Button
    gallery: gr.Gallery
    message: gr.Markdown
    files: gr.File
    state: gr.State


@dataclass
class OnePhotoTab:
    """The One photo tab's components, and the lists its events take and give."""
    inputs: PhotoInputs
    result: ResultPanel
    hints: HintPanel
    variations: VariationsPanel
    last: gr.State  # this user's last result (state.Result)
    hint_state: gr.State  # this user's color hints (state.HintState)
    measured: gr.State  # the result the metrics shown belong to

    @property
    def request(self) -> list:
        i = self.inputs
        return [i.photo, i.model, i.input_size, i.vividness, i.reference]

    @property
    def result_outputs(self) -> list:
        return [self.result.download, self.result.slider, self.result.message, self.last]

    @property
    def panel(self) -> list:
        h = self.hints
        return [h.hint_image, h.hint_list, h.hints_json, h.swatches, h.hint_color, h.hint_x,
                h.hint_y, h.suggest_json]

    @property
    def metrics_outputs(self) -> list:
        return [self.result.metrics_json, self.result.metrics_md, self.result.heatmap]


# --- the panels -----------------------------------------------------------------------------------

def _examples(examples: list[str], photo, label: str) -> None:
    gr.Examples(examples=[[p] for p in examples], inputs=[photo],
                example_labels=[Path(p).stem.replace("_", " ") for p in examples],
                cache_examples=False, label=label)


def _photo_and_settings(choices, default, examples) -> PhotoInputs:
    photo = photo_input(label="Photo: upload, drag or paste", sources=["upload", "clipboard"],
                        height=380, elem_id="photo-input")
    model = gr.Dropdown(choices=choices, value=default, label="Model", allow_custom_value=True,
                        elem_id="model-choice")
    go = gr.Button("Colorize", variant="primary", elem_id="colorize-button")
    with gr.Accordion("Settings", open=False):
        input_size = setting_slider(INPUT_SIZE_MIN, INPUT_SIZE_MAX, value=INPUT_SIZE_DEFAULT, step=32,
                                    what="the working resolution (px)", label="Working resolution (px)")
        help_line("The size the network sees: higher gives finer color detail but takes "
                  "longer; the result always keeps your photo's full resolution.")
        vividness = setting_slider(VIVIDNESS_MIN, VIVIDNESS_MAX, value=1.0, step=0.05, label="Vividness")
        help_line("Scales the predicted colors' chroma (a, b) in Lab: 1 is as predicted, "
                  "above 1 more saturated (clipped where the screen cannot show it), 0 gray.")
        reference = photo_input(label="Color reference (optional)", sources=["upload", "clipboard"],
                                height=160, elem_id="reference-input")
        help_line("Borrow the palette of a color photo: the result's a and b get the "
                  "reference's mean and spread (Reinhard-style transfer in Lab).")
    _examples(examples, photo, "Examples (scikit-image sample photos)")
    return PhotoInputs(photo, model, go, input_size, vividness, reference)


def _result_panel() -> ResultPanel:
    slider = gr.ImageSlider(label="Before / after (drag the handle)", type="filepath",
                            interactive=False, max_height=560, elem_id="result-slider")
    download = gr.File(label="Full-resolution PNG", interactive=False, elem_id="result-file")
    message = gr.Markdown(label="message", elem_id="result-message")
    with gr.Column(visible=False) as metrics_box:  # shown for color uploads
        metrics_md = gr.Markdown(label="metrics table", elem_id="metrics-table")
        heatmap = gr.Image(label="Delta E 2000 heat map", type="filepath", interactive=False,
                           height=300, elem_id="heatmap")
        with gr.Accordion("Metrics as JSON", open=False):
            metrics_json = gr.JSON(label="metrics")
    return ResultPanel(slider, download, message, metrics_box, metrics_md, heatmap, metrics_json)


def _hints_as_json() -> tuple:
    """The accordion with the hints as JSON and the suggestions at a point (as the API takes them)."""
    with gr.Accordion("Hints as JSON, exact points (as the API takes them)", open=False):
        hints_json = gr.Textbox(value="", label="Hints (JSON; x, y in pixels of the full photo)", lines=2,
                                placeholder='[{"x": 120, "y": 80, "color": "#3a7bd5"}]',
                                elem_id="hints-json")
        apply_json = gr.Button("Colorize with these hints", elem_id="hints-apply")
        with gr.Row():
            hint_x = gr.Number(label="x (px)", precision=0, minimum=0, elem_id="hint-x")
            hint_y = gr.Number(label="y (px)", precision=0, minimum=0, elem_id="hint-y")
            suggest = gr.Button("Suggest colors at x, y", size="sm", elem_id="suggest-button")
        suggest_json = gr.JSON(label="suggested colors", elem_id="suggest-json")
    return hints_json, apply_json, hint_x, hint_y, suggest, suggest_json


def _hint_panel() -> HintPanel:
    with gr.Accordion("Color hints: click on the photo to choose its colors", open=False,
                      elem_id="hints-panel"):
        help_line("Colorize first, then click on the photo below: a hint is placed there "
                  "with the model's most likely color, and the photo is colorized again. "
                  "Click a suggested color or pick any color to change the selected hint; "
                  "click a marker to select it.")
        hint_image = gr.Image(label="Click to place a hint", type="filepath", interactive=False,
                              buttons=["download", "fullscreen"], elem_id="hint-image")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=200):
                hint_list = gr.HTML(hint_list_html(HintState(), None), elem_id="hint-list")
            with gr.Column(scale=2, min_width=160):
                hint_color = gr.ColorPicker(value="#3a7bd5", elem_id="hint-color",
                                            label="Any color for the selected hint")
        help_line("The model's suggested colors for the selected hint, most likely first: click one.")
        swatches = gr.Gallery(label="Suggested colors", show_label=False, columns=HINT_SUGGESTIONS,
                              height=110, allow_preview=False, object_fit="cover", interactive=False,
                              buttons=[], elem_id="hint-suggestions")
        with gr.Row():
            undo = gr.Button("Undo last hint", size="sm", elem_id="hint-undo")
            clear = gr.Button("Clear hints", size="sm", elem_id="hint-clear")
        as_json = _hints_as_json()
    return HintPanel(hint_image, hint_list, hint_color, swatches, undo, clear, *as_json)


def _variations_panel() -> VariationsPanel:
    with gr.Accordion("Variations: several plausible colorizations", open=False,
                      elem_id="variations-panel"):
        with gr.Row():
            n = setting_slider(VARIATIONS_MIN, VARIATIONS_MAX, value=VARIATIONS_DEFAULT,
                               what="the number of variations", step=1, label="Number of variations")
            seed = gr.Number(value=0, precision=0, minimum=0, maximum=SEED_MAX, label="Seed")
        go = gr.Button(f"Show {VARIATIONS_DEFAULT} variations", variant="secondary",
                       elem_id="variations-button")
        help_line("The model's colors where it is unsure are sampled several ways (your "
                  "hints and settings apply). Click one to make it the result.")
        gallery = gr.Gallery(label="Variations (click one to use it)", columns=4, height=360,
                             object_fit="contain", interactive=False, elem_id="variations-gallery")
        message = gr.Markdown(label="variations message", elem_id="variations-message")
        files = gr.File(label="Full-resolution PNGs of the variations", file_count="multiple",
                        interactive=False, elem_id="variations-files")
        state = gr.State(None)  # this user's last variations (state.Variations)
    return VariationsPanel(n, seed, go, gallery, message, files, state)


# --- the events ------------------------------------------------------------------------------------

def _after_result(t: OnePhotoTab, event, render=render_hint_panel) -> None:
    """What follows a new result from the page's controls: metrics (color photos) and the hint view."""
    event.success(shows_metrics, [t.last], [t.result.metrics_box], show_progress="hidden",
                  queue=False, **PRIVATE)
    event.success(metrics_if_new, [t.last, t.measured], t.metrics_outputs + [t.measured],
                  show_progress="minimal", **heavy_queue(), **PRIVATE)
    event.success(render, [t.last, t.hint_state], t.panel, show_progress="hidden",
                  concurrency_limit=4, **PRIVATE)


def _cleared(t: OnePhotoTab) -> dict:
    """What a new photo clears: the last result and its metrics, the hints and the variations."""
    r, h, v = t.result, t.hints, t.variations
    return {r.download: None, r.slider: None, r.message: "", r.metrics_json: None, r.metrics_md: "",
            r.heatmap: None, r.metrics_box: gr.update(visible=False), t.last: None, t.measured: None,
            t.hint_state: None, h.hint_image: None, h.hint_list: hint_list_html(HintState(), None),
            h.hints_json: "", h.swatches: [], h.hint_x: None, h.hint_y: None, h.suggest_json: None,
            v.gallery: [], v.message: "", v.files: None, v.state: None}


def _wire_colorize(t: OnePhotoTab) -> None:
    done = t.inputs.go.click(run_colorize, inputs=t.request + [t.hint_state],
                             outputs=t.result_outputs, api_name="colorize", **heavy_queue())
    done.success(shows_metrics, [t.last], [t.result.metrics_box], api_visibility="private",
                 show_progress="hidden", queue=False)
    done.success(run_metrics, inputs=[t.last], outputs=t.metrics_outputs, api_name="metrics",
                 show_progress="minimal", **heavy_queue())
    done.success(render_hint_panel, [t.last, t.hint_state], t.panel, show_progress="hidden",
                 concurrency_limit=4, **PRIVATE)
    t.inputs.photo.change(lambda: _cleared(t), None, list(_cleared(t)), api_visibility="private",
                          show_progress="hidden", queue=False)


def _wire_hints(t: OnePhotoTab) -> None:
    """Every hint control colorizes again and redraws the hint view."""
    h, heavy = t.hints, heavy_queue()
    edit = t.request + [t.last, t.hint_state]
    edited = t.result_outputs + [t.hint_state]
    _after_result(t, h.hint_image.select(run_hint_click, edit, edited, **heavy,
                                         show_progress="minimal", **PRIVATE))
    _after_result(t, h.swatches.select(run_hint_swatch, edit, edited, **heavy,
                                       show_progress="minimal", **PRIVATE))
    # dragging in the picker sends input events; a typed color arrives when it loses focus
    _after_result(t, gr.on([h.hint_color.input, h.hint_color.blur], run_hint_color,
                           edit + [h.hint_color], edited, **heavy,
                           trigger_mode="always_last", show_progress="minimal", **PRIVATE),
                  render=render_keep_picker)
    _after_result(t, h.undo.click(run_hint_undo, edit, edited, **heavy, **PRIVATE))
    _after_result(t, h.clear.click(run_hint_clear, edit, edited, **heavy, **PRIVATE))
    i = t.inputs
    applied = h.apply_json.click(run_colorize_hints, inputs=[i.photo, i.model, h.hints_json, i.input_size,
                                                            i.vividness, i.reference],
                                 outputs=t.result_outputs, api_name="colorize_hints", **heavy)
    _after_result(t, applied.success(adopt_hints, [t.last, t.hint_state], [t.hint_state],
                                     show_progress="hidden", **PRIVATE))
    h.suggest.click(run_suggest_colors, inputs=[i.photo, i.model, h.hint_x, h.hint_y, h.hints_json,
                                                i.input_size],
                    outputs=[h.suggest_json], api_name="suggest_colors", **heavy)


def _wire_variations(t: OnePhotoTab) -> None:
    v, i = t.variations, t.inputs
    v.n.change(lambda n: gr.update(value=f"Show {int(n)} variations"), [v.n], [v.go],
               show_progress="hidden", queue=False, **PRIVATE)
    v.go.click(run_variations, inputs=[i.photo, i.model, v.n, v.seed, t.hints.hints_json, i.input_size,
                                       i.vividness],
               outputs=[v.gallery, v.message, v.files, v.state], api_name="variations", **heavy_queue())
    _after_result(t, v.gallery.select(run_pick_variation, [v.state], t.result_outputs, **PRIVATE))


# --- the tabs ----------------------------------------------------------------------------------------

def _one_photo_tab(choices, default, examples) -> OnePhotoTab:
    last = gr.State(None)  # this user's last result (for the metrics step)
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            inputs = _photo_and_settings(choices, default, examples)
        with gr.Column(scale=6):
            result = _result_panel()
            hint_state = gr.State(None)  # this user's color hints (a state.HintState)
            measured = gr.State(None)  # the result the metrics shown belong to
            hints = _hint_panel()
            variations = _variations_panel()
    t = OnePhotoTab(inputs, result, hints, variations, last, hint_state, measured)
    _wire_colorize(t)
    _wire_hints(t)
    _wire_variations(t)
    return t


def _compare_tab(choices, values, examples) -> gr.CheckboxGroup:
    with gr.Row(equal_height=False):
        with gr.Column(scale=4):
            c_photo = photo_input(label="Photo", sources=["upload", "clipboard"], height=300)
            c_models = gr.CheckboxGroup(choices=choices, value=values[:2], label="Models")
            c_size = setting_slider(INPUT_SIZE_MIN, INPUT_SIZE_MAX, value=INPUT_SIZE_DEFAULT, step=32,
                                    what="the working resolution (px)", label="Working resolution (px)")
            c_go = gr.Button("Compare", variant="primary", elem_id="compare-button")
            _examples(examples, c_photo, "Examples")
        with gr.Column(scale=7):
            c_gallery = gr.Gallery(label="Side by side (model - time)", columns=3, height=520,
                                   object_fit="contain", elem_id="compare-gallery")
            c_table = gr.Markdown(label="timings")
    c_go.click(run_compare, inputs=[c_photo, c_models, c_size], outputs=[c_gallery, c_table],
               api_name="compare", **heavy_queue())
    return c_models


def _batch_tab(choices, default) -> gr.Dropdown:
    with gr.Row(equal_height=False):
        with gr.Column():
            b_files = gr.File(label="Photos, or zip archives of photos", file_count="multiple",
                              file_types=["image", ".zip"], type="filepath")
            b_model = gr.Dropdown(choices=choices, value=default, label="Model", allow_custom_value=True)
            with gr.Row():
                b_size = setting_slider(INPUT_SIZE_MIN, INPUT_SIZE_MAX, value=INPUT_SIZE_DEFAULT, step=32,
                                        what="the working resolution (px)", label="Working resolution (px)")
                b_vivid = setting_slider(VIVIDNESS_MIN, VIVIDNESS_MAX, value=1.0, step=0.05, label="Vividness")
            b_go = gr.Button("Colorize all", variant="primary", elem_id="batch-button")
            help_line(f"Up to {ZIP_MAX_FILES} photos; files that cannot be read are skipped and "
                      "listed in report.txt inside the zip you get back.")
        with gr.Column():
            b_zip = gr.File(label="Colorized PNGs (zip)", interactive=False)
            b_summary = gr.Markdown(label="summary")
    b_go.click(run_batch, inputs=[b_files, b_model, b_size, b_vivid], outputs=[b_zip, b_summary],
               api_name="batch", **heavy_queue())
    return b_model


def no_models_note() -> str:
    if model_choices():
        return ""
    return ("**No model weights found.** Put a checkpoint into `weights/` (the shipped default is "
            f"`weights/{REGISTRY[DEFAULT_MODEL].weights}`; `git lfs pull` in a clone that uses LFS) or fetch the official "
            "ones with `python -m colorizer weights fetch eccv16 siggraph17`, then reload the page.")


def build_colorize_tab() -> tuple:
    """The Colorize tab's contents (call inside a gr.Tab of a gr.Blocks). Returns its model
    choosers (one photo, compare, batch) for refresh_on_load."""
    choices = model_choices()
    values = [v for _, v in choices]
    default = values[0] if values else None
    examples = example_photos()
    gr.Markdown(no_models_note())
    with gr.Tabs():
        with gr.Tab("One photo", id="one"):
            one = _one_photo_tab(choices, default, examples)
        with gr.Tab("Compare models", id="compare"):
            c_models = _compare_tab(choices, values, examples)
        with gr.Tab("Batch", id="batch"):
            b_model = _batch_tab(choices, default)
    gr.api(api_models, api_name="models")
    return one.inputs.model, c_models, b_model


def _refresh_choices():
    choices = model_choices()
    values = [v for _, v in choices]
    first = values[:1]
    return (gr.update(choices=choices, value=first[0] if first else None),
            gr.update(choices=choices, value=values[:2]),
            gr.update(choices=choices, value=first[0] if first else None))


def refresh_on_load(demo: gr.Blocks, dropdowns) -> None:
    """Refresh the model lists when a page loads (weights added after start-up appear)."""
    demo.load(_refresh_choices, None, list(dropdowns), api_visibility="private",
              show_progress="hidden", queue=False)


def upload_limit() -> str:
    """max_file_size for launch(): $COLORIZER_MAX_UPLOAD_MB megabytes, 100 MB by default."""
    return f"{max(1, int(settings().max_upload_mb))}mb"


def describe_limits() -> str:
    return (f"Uploads up to {upload_limit().upper().replace('MB', ' MB')} and "
            f"{max_pixels_from_env() / 1e6:g} megapixels.")
