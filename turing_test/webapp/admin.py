"""The researcher's admin tab: its layout (one builder per panel), its handlers (dashboard,
settings, export, building a pool) and the check of the admin token.

Admin events are private (not in the API docs, not callable by the Gradio clients) and, since a
determined caller can still reach any event over HTTP, every admin handler checks the token
($TURING_ADMIN_TOKEN) itself: without the right token it raises an error and returns no data.
Wrong tokens are throttled per client address (turing_test/throttle.py) and logged in one line
with that address.
Without $TURING_ADMIN_TOKEN the admin tab only says how to set it and has no events at all.

What the dashboard and the export show is computed in report.py (gradio-free); this module
fetches the data from the store and hands the results to the components. Imports gradio.
"""
from __future__ import annotations

import base64
import hmac
import io
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ..pool import build_pool_from_zip
from ..settings import ADMIN_ENV
from ..survey import SurveyError
from . import report
from .report import parse_rules, rules_of
from .service import TuringService, client_address
from .state import SETTINGS_FIELDS, SurveySettings

log = logging.getLogger("turing_test")

ADMIN_EVENTS = dict(api_visibility="private", concurrency_limit=2, concurrency_id="turing_admin")


class AdminHandlers(TuringService):
    """The admin tab's handlers; each checks the admin token first."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._thumbs: dict[str, str] = {}
        self._export_dir = Path(tempfile.mkdtemp(prefix="turing_export_"))

    _chart_svg = staticmethod(report.chart_svg)

    def check_token(self, token, request: gr.Request | None = None) -> None:
        """The admin token, or a gr.Error (no traceback in the log: one line with the address)."""
        client = client_address(request)
        wait = self.throttle.wait_s(client)
        if wait > 0:
            log.warning("admin token refused from %s: too many wrong tokens, %.0f s to wait", client, wait)
            raise gr.Error(f"too many wrong admin tokens from your address: try again in {math.ceil(wait)} s",
                           print_exception=False)
        want = self.admin_token or ""
        got = token if isinstance(token, str) else ""
        if not want or not got or not hmac.compare_digest(got.encode(), want.encode()):
            n = self.throttle.failed(client)
            log.warning("wrong admin token from %s (%d within %.0f min)", client, n,
                        self.throttle.window_s / 60)
            raise gr.Error("wrong or missing admin token", print_exception=False)
        self.throttle.succeeded(client)

    def _thumb(self, stimulus_id: str, data: bytes | None = None) -> str:
        uri = self._thumbs.get(stimulus_id)
        if uri is None:
            from PIL import Image
            if data is None:
                data = self.store.stimulus_image(stimulus_id)
            im = Image.open(io.BytesIO(data)).convert("RGB")
            im.thumbnail((72, 72))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=80)
            uri = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
            self._thumbs[stimulus_id] = uri
        return uri

    def _images_html(self, images, reals, limit: int = report.THUMB_LIMIT) -> str:
        """The Per image tab (report.images_html) with the thumbnails of its photos."""
        shown = report.shown_stimuli(images, reals, limit)
        need = [s for s in shown if s not in self._thumbs]
        blobs = self.store.stimulus_images(need) if need else {}
        thumbs = {s: self._thumb(s, blobs.get(s)) for s in shown}
        return report.images_html(images, reals, thumbs, limit)

    def dashboard(self, token, survey_name, request: gr.Request = None):
        """Results of one survey: [survey dropdown, summary, chart, models, real, images,
        participants, differences, exclusions, correlations, metrics]."""
        self.check_token(token, request)
        names = self.store.survey_names()
        if survey_name not in names:
            active = self.store.active_survey()
            survey_name = active["name"] if active else (names[-1] if names else None)
        dd = gr.update(choices=names, value=survey_name)
        if survey_name is None:
            return [dd, report.NO_SURVEY, "", None, None, "", None, None, None, None, None]
        info = next(s for s in self.store.list_surveys() if s["name"] == survey_name)
        d = report.dashboard(survey_name, info, self.store.votes_frame(survey_name),
                             self.store.stimulus_metrics(survey_name))
        return [dd, d.summary, d.chart, d.per_model, d.real,
                self._images_html(d.images, d.real_images), d.participants, d.differences,
                d.exclusions, d.correlations, d.with_metrics]

    def settings_of(self, token, survey_name, request: gr.Request = None):
        self.check_token(token, request)
        info = self.store.get_survey(survey_name) if survey_name else None
        if info is None:
            return [gr.update()] * SETTINGS_FIELDS
        return SurveySettings.of(info).values()

    def save_settings(self, token, survey_name, exposure_ms, max_trials, n_practice, n_attention,
                      code, url, active, n_repeats=2, stop_width=0.0, rules_json="",
                      request: gr.Request = None):
        self.check_token(token, request)
        if not survey_name:
            raise gr.Error("choose a survey first")
        try:
            rules = parse_rules(rules_json)
            self.store.update_settings(survey_name, exposure_ms=exposure_ms, max_trials=max_trials,
                                       n_practice=n_practice, n_attention=n_attention,
                                       n_repeats=n_repeats, stop_width=stop_width,
                                       completion_code=code, completion_url=url,
                                       active=bool(active), exclusion_rules=rules.to_dict())
        except SurveyError as exc:
            raise gr.Error(str(exc)) from None
        return f"Saved the settings of {survey_name!r}; new participants get them."

    def export(self, token, survey_name, request: gr.Request = None):
        self.check_token(token, request)
        d = Path(tempfile.mkdtemp(prefix="export_", dir=self._export_dir))
        votes = self.store.votes_frame(survey_name or None)
        info = self.store.get_survey(survey_name) if survey_name else None
        rules = rules_of(info)
        metrics_of = (lambda: self.store.stimulus_metrics(survey_name)) if survey_name else None
        tables = report.export_tables(votes, rules, metrics_of,
                                      lambda: self.store.participants_frame(survey_name or None))
        tag = report.export_tag(survey_name)
        paths = []
        for key, df in tables:
            p = d / f"turing_{tag}_{key}.csv"
            df.to_csv(p, index=False)
            paths.append(str(p))
        return paths

    def build(self, token, zip_file, name, models, size, practice, attention, activate,
              paradigm="single", progress=gr.Progress(), request: gr.Request = None):
        self.check_token(token, request)
        if not zip_file:
            raise gr.Error("upload a zip file of color photos first")
        if not models:
            raise gr.Error("choose at least one model")
        path = zip_file if isinstance(zip_file, str) else getattr(zip_file, "name", None)
        attention = _optional_count(attention, "photos with an attention check")
        try:
            rep = build_pool_from_zip(
                self.store, path, list(models), survey=name, size=int(size or 256),
                practice=int(practice or 0), attention=attention,
                activate=bool(activate), paradigm=paradigm or "single",
                progress=lambda f, t: progress(f, desc=t))
        except SurveyError as exc:
            raise gr.Error(str(exc)) from None
        except (TypeError, ValueError) as exc:
            raise gr.Error(f"invalid setting: {exc}") from None
        return rep.text().replace("\n", "  \n")


def _optional_count(value, what: str) -> int | None:
    """A whole number >= 0 typed into a field, or None where the field is empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        f = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        f = float("nan")
    if not f.is_integer() or f < 0:
        raise gr.Error(f"{what}: a whole number of 0 or more, or empty for the default "
                       f"(got {str(value)[:20]!r})")
    return int(f)


def _model_choices() -> list[str]:
    try:
        import colorizer
        return [m["name"] for m in colorizer.list_models()]
    except Exception:  # the admin tab must open even when the registry cannot be read
        return []


# --- the tab ---------------------------------------------------------------------------------

ADMIN_OFF = (
    "### The admin tab is off\n"
    f"To see results, build pools and export votes, set the environment variable "
    f"`{ADMIN_ENV}` to a secret of your choice and restart the app, e.g.\n\n"
    f"    {ADMIN_ENV}=$(python -c 'import secrets; print(secrets.token_urlsafe(24))') python app.py\n\n"
    "(on a Hugging Face Space: Settings, Variables and secrets, New secret). Then "
    "enter the same secret here.")


@dataclass
class BuildForm:
    """The Build a pool panel: its inputs (in AdminHandlers.build's order, after the token), the
    button and the message."""
    inputs: list
    new_name: gr.Textbox
    models: gr.CheckboxGroup
    button: gr.Button
    message: gr.Markdown


@dataclass
class AdminPage:
    """The admin tab's components that its events read or write."""
    token: gr.Textbox
    open_btn: gr.Button
    dash: gr.Column
    survey_dd: gr.Dropdown
    refresh_btn: gr.Button
    auto: gr.Checkbox
    results: list  # what AdminHandlers.dashboard returns, in its order
    export_btn: gr.Button
    export_files: gr.File
    settings: list  # the Settings panel, in SurveySettings' order
    save_btn: gr.Button
    settings_msg: gr.Markdown
    build: BuildForm
    timer: gr.Timer


def _survey_row() -> tuple:
    with gr.Row():
        survey_dd = gr.Dropdown(label="Survey", choices=[], value=None, scale=3,
                                allow_custom_value=True, elem_id="turing-admin-survey")
        refresh_btn = gr.Button("Refresh", scale=1)
        auto = gr.Checkbox(value=True, label="refresh every 10 s", scale=1)
    return survey_dd, refresh_btn, auto


def _result_tabs() -> dict:
    """The result tabs: per model, per image, per participant, exclusions, metrics, differences."""
    with gr.Tab("Per model", id="turing-per-model"):
        models_df = gr.Dataframe(label="fooling rate per model: 95% Wilson interval, "
                                       "bootstrap interval over participants and photos, "
                                       "d' and criterion", interactive=False)
        real_df = gr.Dataframe(label="real photos: rate judged real", interactive=False)
    with gr.Tab("Per image"):
        images_html = gr.HTML()
    with gr.Tab("Per participant"):
        parts_df = gr.Dataframe(label="participants (excluded: by the survey's exclusion rules)",
                                interactive=False)
    with gr.Tab("Exclusions"):
        excl_df = gr.Dataframe(label="excluded participants and why", interactive=False,
                               elem_id="turing-admin-exclusions")
    with gr.Tab("Metrics and people"):
        corr_df = gr.Dataframe(label="Spearman correlation of each metric with the human fooling "
                                     "rate, per colorized photo (95% bootstrap interval over photos)",
                               interactive=False, elem_id="turing-admin-correlations")
        metric_df = gr.Dataframe(label="fooling rate per colorized photo beside its PSNR, "
                                       "mean Delta E 2000 and colorfulness ratio (against its real photo)",
                                 interactive=False)
    with gr.Tab("Model differences"):
        diff_df = gr.Dataframe(label="pairwise differences of fooling rates (bootstrap over "
                                     "participants and photos, 95%)", interactive=False)
    return dict(models_df=models_df, real_df=real_df, images_html=images_html, parts_df=parts_df,
                excl_df=excl_df, corr_df=corr_df, metric_df=metric_df, diff_df=diff_df)


def _settings_tab() -> tuple[list, gr.Button, gr.Markdown]:
    """The Settings panel: [its fields in SurveySettings' order], the save button, its message."""
    with gr.Tab("Settings"):
        with gr.Row():
            exposure = gr.Number(label="exposure (ms; 0 = until answered)", precision=0)
            max_trials = gr.Number(label="counted trials per participant", precision=0)
            n_practice = gr.Number(label="practice trials", precision=0)
            n_attention = gr.Number(label="attention checks per participant", precision=0)
            n_repeats = gr.Number(label="repeated photos per participant (consistency checks)",
                                  precision=0)
            stop_width = gr.Number(label="stop assigning a model once its 95% interval is this "
                                         "wide (0 = never)", minimum=0, maximum=1)
        with gr.Row():
            code = gr.Textbox(label="completion code (shown at the end, e.g. Prolific's)")
            url = gr.Textbox(label="completion URL (optional link at the end)")
            active = gr.Checkbox(label="active (new participants get this survey)")
        rules_box = gr.Code(label="exclusion rules (JSON), applied in every result",
                            language="json", lines=10, interactive=True,
                            elem_id="turing-admin-rules")
        save_btn = gr.Button("Save settings")
        settings_msg = gr.Markdown()
    fields = [exposure, max_trials, n_practice, n_attention, code, url, active, n_repeats,
              stop_width, rules_box]
    return fields, save_btn, settings_msg


def _build_tab() -> BuildForm:
    """The Build a pool panel: a zip of color photos, the survey, the models and the options."""
    with gr.Tab("Build a pool"):
        gr.Markdown("Upload a zip of **color** photos. Each photo gives a real stimulus "
                    "and one colorized stimulus per model, all cropped, resized and "
                    "encoded alike; a few also get an obviously wrong-colored attention "
                    "check. Colorizing takes a while on a CPU.")
        zip_file = gr.File(label="zip of color photos", file_types=[".zip"], type="filepath",
                           elem_id="turing-build-zip")
        with gr.Row():
            new_name = gr.Textbox(label="survey name (new, or one to extend)")
            models = gr.CheckboxGroup(label="models", choices=_model_choices(),
                                      elem_id="turing-build-models")
        with gr.Row():
            size = gr.Number(label="size (px)", value=256, precision=0)
            practice = gr.Number(label="photos kept for practice", value=2, precision=0)
            # a Textbox, not a Number: Gradio shows and sends an empty Number as 0,
            # which would silently mean "no attention checks"
            attention = gr.Textbox(label="photos with an attention check (empty: a tenth)",
                                   value="", placeholder="a tenth of the photos",
                                   elem_id="turing-build-attention")
            activate = gr.Checkbox(label="make it the active survey", value=True)
            paradigm = gr.Radio([("one photo: real or colorized?", "single"),
                                 ("two photos side by side: which is colorized?", "pair")],
                                value="single", label="paradigm (of a new survey)",
                                elem_id="turing-build-paradigm")
        build_btn = gr.Button("Build pool", variant="primary", elem_id="turing-build")
        build_msg = gr.Markdown(elem_id="turing-build-msg")
    return BuildForm(inputs=[zip_file, new_name, models, size, practice, attention, activate,
                             paradigm], new_name=new_name, models=models, button=build_btn,
                     message=build_msg)


def _admin_layout() -> AdminPage:
    with gr.Row():
        token = gr.Textbox(label="Admin token", type="password", scale=3,
                           placeholder=f"the value of ${ADMIN_ENV}")
        open_btn = gr.Button("Open dashboard", variant="primary", scale=1)
    with gr.Column(visible=False) as dash:
        survey_dd, refresh_btn, auto = _survey_row()
        summary = gr.Markdown(elem_id="turing-admin-summary")
        chart = gr.HTML()
        with gr.Tabs(selected="turing-per-model"):
            r = _result_tabs()
            with gr.Tab("Export"):
                export_btn = gr.Button("Export CSV (votes and aggregates)")
                export_files = gr.File(label="CSV files", file_count="multiple", interactive=False)
            fields, save_btn, settings_msg = _settings_tab()
            build = _build_tab()
    timer = gr.Timer(10, active=False)
    results = [survey_dd, summary, chart, r["models_df"], r["real_df"], r["images_html"],
               r["parts_df"], r["diff_df"], r["excl_df"], r["corr_df"], r["metric_df"]]
    return AdminPage(token=token, open_btn=open_btn, dash=dash, survey_dd=survey_dd,
                     refresh_btn=refresh_btn, auto=auto, results=results, export_btn=export_btn,
                     export_files=export_files, settings=fields, save_btn=save_btn,
                     settings_msg=settings_msg, build=build, timer=timer)


def _chosen(res: list, name):
    """The survey a dashboard's result shows (its dropdown's value), else the one asked for."""
    return res[0].get("value") if isinstance(res[0], dict) else name


def _wire_dashboard(t: AdminHandlers, a: AdminPage) -> None:
    """Opening the dashboard, choosing a survey, refreshing it (by hand and every 10 s)."""
    adm = ADMIN_EVENTS

    def open_dashboard(tok, name, request: gr.Request = None):
        res = t.dashboard(tok, name, request)
        return res + t.settings_of(tok, _chosen(res, name), request) + [
            gr.update(visible=True), gr.Timer(active=True), gr.update(choices=_model_choices())]

    def on_auto(tok, on, request: gr.Request = None):
        t.check_token(tok, request)
        return gr.Timer(active=bool(on))

    opened = a.results + a.settings + [a.dash, a.timer, a.build.models]
    inputs = [a.token, a.survey_dd]
    a.open_btn.click(open_dashboard, inputs, opened, api_name="turing_admin_open", **adm)
    a.token.submit(open_dashboard, inputs, opened, api_name="turing_admin_open_submit", **adm)
    a.refresh_btn.click(t.dashboard, inputs, a.results, api_name="turing_admin_refresh", **adm)
    a.timer.tick(t.dashboard, inputs, a.results, api_name="turing_admin_tick",
                 show_progress="hidden", **adm)
    a.auto.change(on_auto, [a.token, a.auto], [a.timer], api_name="turing_admin_auto", **adm)
    a.survey_dd.input(open_dashboard, inputs, opened, api_name="turing_admin_choose", **adm)


def _wire_settings_and_export(t: AdminHandlers, a: AdminPage) -> None:
    adm = ADMIN_EVENTS
    inputs = [a.token, a.survey_dd]
    a.save_btn.click(t.save_settings, inputs + a.settings, [a.settings_msg],
                     api_name="turing_admin_settings", **adm).success(
        t.dashboard, inputs, a.results, api_name="turing_admin_after_settings", **adm)
    a.export_btn.click(t.export, inputs, [a.export_files], api_name="turing_admin_export", **adm)


def _wire_build(t: AdminHandlers, a: AdminPage) -> None:
    b = a.build

    def after_build(tok, name):
        # show the survey just built (its results and its settings: the settings fields must
        # always be those of the survey chosen, or Save would copy another survey's onto it)
        name = name.strip() if isinstance(name, str) else name
        res = t.dashboard(tok, name)
        return res + t.settings_of(tok, _chosen(res, name))

    # first clear the last build's message in the page (no server call), so that a build that
    # fails does not leave an earlier success message under its error
    b.button.click(None, None, [b.message], js="() => ''", api_name="turing_admin_build_clear",
                      api_visibility="private", queue=False).then(
        t.build, [a.token] + b.inputs, [b.message], api_name="turing_admin_build_pool",
        api_visibility="private", concurrency_limit=1, concurrency_id="turing_build").success(
        after_build, [a.token, b.new_name], a.results + a.settings,
        api_name="turing_admin_after_build", **ADMIN_EVENTS)


def _admin_tab(t: AdminHandlers) -> AdminPage:
    """The admin tab's dashboard and its events (inside the tab)."""
    a = _admin_layout()
    _wire_dashboard(t, a)
    _wire_settings_and_export(t, a)
    _wire_build(t, a)
    return a


def build_admin_tab(t: AdminHandlers) -> AdminPage | None:
    """The admin tab: the dashboard with its events, or (without an admin token) a note on how
    to set one, with no events at all."""
    with gr.Tab("Turing test: admin", id="turing-admin"):
        if not t.admin_token:
            gr.Markdown(ADMIN_OFF)
            return None
        return _admin_tab(t)
