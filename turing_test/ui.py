"""The Turing test tabs of the Gradio app: the participant tab and the researcher's admin tab.

    with gr.Blocks() as demo:
        build_turing_tabs()

Public API (gradio_client, one Client per participant):
- ``turing_start(participant_id="", url_params="", resume_secret="", browser=None)``: a new
  session, or, with the resume secret of an earlier one (`turing_secret`), where that one left
  off. Returns (image, progress, feedback, end_message, token, exposure_ms): the first image as a
  file, or the end message. A participant id that has started already is refused without its
  secret (nobody can vote in another's name); new sessions are limited per client address.
  `browser` is the page's own storage (the participant's browser keeps the secret there, so the
  same browser continues after a restart of the server); API callers leave it out.
- ``turing_secret()``: this session's resume secret.
- ``turing_vote(answer, token, rt_ms=None)``: answer "real" or "fake" for the current image
  (token: the one returned with that image, required: a vote that names no trial is refused;
  a repeated request never counts twice; rt_ms: a client-measured response time, kept beside
  the server's own). Returns the same tuple for the next image, or the end message with the
  completion code once done. Each image's URL answers only while its trial is current.

Admin events are private (not in the API docs, not callable by the Gradio clients) and, since a
determined caller can still reach any event over HTTP, every admin handler checks the token
($TURING_ADMIN_TOKEN) itself: without the right token it raises an error and returns no data.
Wrong tokens are throttled per client address (turing_test/throttle.py) and logged in one line
with that address.
Without $TURING_ADMIN_TOKEN the admin tab only says how to set it and has no events at all.
"""
from __future__ import annotations

import base64
import hmac
import html
import io
import json
import logging
import os
import tempfile
import math
import threading
from pathlib import Path

# Gradio recomputes a pandas summary of up to 10,000 past events after every event (for its
# optional monitoring page) unless told otherwise: under a survey's steady stream of votes that
# costs more CPU than the votes themselves. Refresh it every 1000 events instead.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")

import anyio  # noqa: E402
import gradio as gr  # noqa: E402

from . import stats  # noqa: E402
from . import survey as sv  # noqa: E402
from .pool import StimulusFiles, build_pool_from_zip, ensure_demo_survey  # noqa: E402
from .store import Store, TrialView, WriterBusy, get_store  # noqa: E402
from .survey import SurveyError  # noqa: E402
from .settings import ADMIN_ENV, settings  # noqa: E402
from .throttle import TokenThrottle  # noqa: E402

log = logging.getLogger("turing_test")


def _client_address(request) -> str:
    """Where a request came from: the first X-Forwarded-For address behind a proxy (a Space),
    else the peer's address ("unknown" outside a request)."""
    if request is None:
        return "unknown"
    headers = getattr(request, "headers", None) or {}
    forwarded = headers.get("x-forwarded-for", "") if hasattr(headers, "get") else ""
    if forwarded:
        return forwarded.split(",")[0].strip()[:64] or "unknown"
    client = getattr(request, "client", None)
    return str(getattr(client, "host", None) or "unknown")[:64]

PARTICIPANT_CONCURRENCY = settings().concurrency  # votes handled at once (TURING_CONCURRENCY)

INSTRUCTIONS = """\
## Is this photo real?

You will see photos one at a time. Some are **real color photos**. The others were black-and-white
photos that a **computer colorized**. For each photo, decide whether it is a real color photo
and answer **Real** or **Colorized** (keys: **R** and **C**). Each photo shows only for a short
moment, so watch closely; answer as well as you can, there is no time limit for answering.
The first photos are practice: you will be told whether you were right, and they do not count.
Some photos have deliberately wrong colors, and some come twice: answer honestly.
(In a survey that shows **two photos side by side**, one real and one colorized, pick the
colorized one: **The left one** or **The right one**, keys L and R.)

**Consent.** We record your answers, your response times, the participant id you give (if
any) and a one-way code of your network address (to limit repeated sign-ups), nothing else, and use them only to measure how convincing automatic colorization is.
Taking part is voluntary; you can stop at any time by closing this page.
"""

KEYS_JS = """
if (!window.__turingKeys) {
  window.__turingKeys = true;
  document.addEventListener('keydown', (e) => {
    const t = e.target;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.isContentEditable)) return;
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const k = (e.key || '').toLowerCase();
    const shown = (x) => { const b = document.getElementById(x); return b && b.offsetParent !== null; };
    let id = null;
    if (shown('turing-left')) {  // two photos: which one is colorized
      if (k === 'l' || e.key === 'ArrowLeft') id = 'turing-left';
      else if (k === 'r' || e.key === 'ArrowRight') id = 'turing-right';
    } else if (k === 'r') id = 'turing-real';
    else if (k === 'c' || k === 'f') id = 'turing-fake';
    if (!id) return;
    const b = document.getElementById(id);
    if (b && b.offsetParent !== null && !b.disabled) { e.preventDefault(); b.click(); }
  });
}
"""

# After an image arrives: show it once it has loaded, start the response clock, hide it after
# the exposure time (0: keep it).
SHOW_JS = """
(ms, img) => {
  const root = document.getElementById('turing-stimulus');
  if (window.__turingTimer) { clearTimeout(window.__turingTimer); window.__turingTimer = null; }
  if (window.__turingPoll) { clearInterval(window.__turingPoll); window.__turingPoll = null; }
  if (!root) return [];
  const want = img && img.url ? img.url : null;
  const t0 = performance.now();
  const go = () => {
    root.style.visibility = 'visible';
    window.__turingShownAt = performance.now();
    if (ms && ms > 0) {
      window.__turingTimer = setTimeout(() => { root.style.visibility = 'hidden'; }, ms);
    }
  };
  window.__turingPoll = setInterval(() => {
    const el = root.querySelector('img');
    const ready = el && el.complete && el.naturalWidth > 0 && (!want || el.src === want || el.src.endsWith(want));
    if (ready || performance.now() - t0 > 5000) {
      clearInterval(window.__turingPoll); window.__turingPoll = null;
      go();
    }
  }, 15);
  return [];
}
"""


def _vote_js(answer: str) -> str:
    # hide the current photo at once and send the answer with the time since the photo appeared
    return f"""
(a, t, r) => {{
  const root = document.getElementById('turing-stimulus');
  if (root) root.style.visibility = 'hidden';
  const rt = window.__turingShownAt ? Math.round(performance.now() - window.__turingShownAt) : null;
  return ['{answer}', t, rt];
}}
"""


URL_JS = """
() => {
  const q = new URLSearchParams(window.location.search);
  const keep = new URLSearchParams();
  for (const k of ['PROLIFIC_PID', 'STUDY_ID', 'SESSION_ID']) { if (q.get(k)) keep.set(k, q.get(k)); }
  return [q.get('PROLIFIC_PID') || '', keep.toString()];
}
"""


_static_folders: set[str] = set()


class _Turing:
    """What the tabs of one Blocks share (the store itself is shared per database URL)."""

    def __init__(self, db_url: str | None, admin_token: str | None, demo_survey: bool,
                 stimulus_cache=None):
        self.store: Store = get_store(db_url)
        self.files = StimulusFiles(self.store, stimulus_cache)
        # stimulus files are served as they are (random names, nothing else in that folder):
        # no copy into Gradio's cache and no hashing for each image handed out
        folder = str(self.files.folder.resolve())
        if folder not in _static_folders:
            gr.set_static_paths([folder])
            _static_folders.add(folder)
        self.admin_token = admin_token if admin_token is not None else settings().admin_token
        self.throttle = TokenThrottle()
        self.demo_survey = demo_survey
        self.demo_note = ""
        self._thumbs: dict[str, str] = {}
        self._out_components: list = []  # the participant outputs (set by build_turing_tabs)
        self._image_payloads: dict[str, dict] = {}  # stimulus file -> its payload for the browser
        self._export_dir = Path(tempfile.mkdtemp(prefix="turing_export_"))

    # --- demo survey -------------------------------------------------------------------------

    def start_demo_in_background(self):
        def work():
            try:
                self.demo_note = ensure_demo_survey(self.store)
                log.info("turing test: %s", self.demo_note)
            except Exception as exc:  # never take the app down for the demo
                self.demo_note = f"no demo survey: {exc}"
                log.warning("turing test: %s", self.demo_note)
        threading.Thread(target=work, name="turing-demo", daemon=True).start()

    # --- participant -------------------------------------------------------------------------

    def _outputs(self, view: TrialView, layout: bool = True):
        """[intro, trial, end, image, progress, feedback, end_md, token, exposure]; the layout
        (which column shows) is sent only when it changes: at the start and at the end."""
        if view.finished:
            return [gr.update(visible=False), gr.update(visible=False), gr.update(visible=True),
                    None, view.progress, view.feedback, view.end_message, "", 0]
        keep = gr.skip()
        cols = ([gr.update(visible=False), gr.update(visible=True), gr.update(visible=False)]
                if layout else [keep, keep, keep])
        if view.paradigm == "pair":
            shown = self.files.show_pair(view.stimulus_id, view.partner_id, view.token,
                                         bool(view.real_on_left))
        else:
            shown = self.files.show(view.stimulus_id, view.token)
        return cols + [shown, view.progress, view.feedback, "", view.token, int(view.exposure_ms)]

    @staticmethod
    def _buttons(view: TrialView) -> list:
        """[the real/colorized buttons, the left/right buttons]: which the survey's paradigm uses."""
        pair = view.paradigm == "pair"
        return [gr.update(visible=not pair), gr.update(visible=pair)]

    def start(self, participant_id, url_params="", resume_secret="", browser=None,
              request: gr.Request = None):
        try:
            params = sv.parse_url_params(url_params)
            secret = sv.clean_resume_secret(resume_secret) if resume_secret else None
            if secret is None and isinstance(browser, dict):  # the page's storage: a stale or
                try:  # damaged value is ignored, never an error
                    secret = sv.clean_resume_secret(browser.get("secret"))
                except SurveyError:
                    secret = None
            pid = sv.clean_participant_id(participant_id) or params.get("PROLIFIC_PID")
            if self.demo_survey and self.store.active_survey() is None and not self.store.has_surveys():
                try:  # the first visitor of an empty database waits for the demo survey
                    self.demo_note = ensure_demo_survey(self.store)
                except Exception as exc:  # then start() says that no survey is running
                    self.demo_note = f"no demo survey: {exc}"
                    log.warning("turing test: %s", self.demo_note)
            view = self.store.start(pid, study_id=params.get("STUDY_ID"),
                                    session_id=params.get("SESSION_ID"), resume_secret=secret,
                                    client=_client_address(request))
        except SurveyError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        state = {"participant": view.participant_id, "survey": view.survey_id,
                 "secret": view.resume_secret}
        if view.resumed and not view.finished:
            view.feedback = "Welcome back: you continue where you left off."
        return [state] + self._outputs(view) + self._buttons(view)

    async def vote(self, answer, token="", rt_ms=None, state=None):
        # On SQLite a vote is about a millisecond of work plus the commit, so it runs right here
        # on the server's event loop: no hand-over to a worker thread and back, and no threads
        # taking turns on the GIL, which under a survey's stream of votes cost more than the
        # vote itself. It waits in a worker thread instead when another request of this process
        # is writing (a start, a pool being stored), when commits are slow (a network disk: the
        # event loop must not stall on them), and on PostgreSQL (network round trips).
        try:
            sv.parse_any_answer(answer)  # bad answers are refused before anything else
            if not isinstance(state, dict) or not state.get("participant"):
                raise SurveyError("no session: press Start before voting")
            args = (state["participant"], answer, token if isinstance(token, str) else None, rt_ms)
            view = None
            if self.store.writes_are_fast():
                try:
                    view = self.store.vote(*args, wait=False)
                except WriterBusy:
                    pass
            if view is None:
                view = await anyio.to_thread.run_sync(self.store.vote, *args)
        except SurveyError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        if not view.duplicate:
            self.files.hide(args[2])  # the answered image's URL stops answering
        return self._serialized(self._outputs(view, layout=False))

    @staticmethod
    def secret_of(state=None) -> str:
        if not isinstance(state, dict) or not state.get("secret"):
            raise gr.Error("no session: press Start first", print_exception=False)
        return state["secret"]

    @staticmethod
    def remember(state=None):
        """What the participant's browser keeps (gr.BrowserState) to continue after a restart."""
        if not isinstance(state, dict) or not state.get("secret"):
            return gr.skip()
        return {"survey": state.get("survey"), "secret": state["secret"]}

    def _serialized(self, values: list) -> list:
        """The vote's outputs as Gradio's postprocessing would send them, made here on the event
        loop. The vote event runs with preprocess=False and postprocess=False: Gradio would
        otherwise hand each of its inputs and outputs to a worker thread and back (nine thread
        hand-overs a vote, more CPU than the vote itself under a survey's stream of votes) and
        check the image's path against the static folders on every vote. The image's payload is
        made once per stimulus file, by Gradio's own functions, and kept."""
        from gradio import processing_utils

        out = []
        for comp, value in zip(self._out_components, values):
            if value is None or isinstance(value, dict):  # nothing, or a layout update / skip
                out.append(value)
            elif isinstance(comp, gr.Image):
                out.append(self._image_payload(comp, value, processing_utils))
            else:
                out.append(comp.postprocess(value))
        return out

    def _image_payload(self, comp, path: str, processing_utils) -> dict:
        """The image's payload for the browser. Gradio's functions make the first one; the rest
        are that one with the other file's path (each trial has a file of its own)."""
        tpl = self._image_payloads.get("template")
        if tpl is None:
            data = comp.postprocess(path).model_dump()
            payload = processing_utils.move_files_to_cache(data, comp, postprocess=True)
            self._image_payloads["template"] = dict(payload, _path=path)
            return payload
        old = tpl["_path"]
        out = {k: (v.replace(old, path) if isinstance(v, str) and old in v else v)
               for k, v in tpl.items() if k != "_path"}
        return out

    # --- admin -------------------------------------------------------------------------------

    def check_token(self, token, request: gr.Request | None = None) -> None:
        """The admin token, or a gr.Error (no traceback in the log: one line with the address)."""
        client = _client_address(request)
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

    def _images_html(self, images, reals, limit: int = 60) -> str:
        rows = list(images.head(limit).itertuples(index=False))
        rrows = list(reals.head(limit // 3).itertuples(index=False))
        need = [r.stimulus for r in rows + rrows if r.stimulus not in self._thumbs]
        blobs = self.store.stimulus_images(need) if need else {}

        def cell(r, rate_col, label):
            thumb = self._thumb(r.stimulus, blobs.get(r.stimulus))
            rate = getattr(r, rate_col)
            return (f"<tr><td><img src='{thumb}' width='72' height='72' alt=''></td>"
                    f"<td>{html.escape(str(r.source))}</td><td>{html.escape(label(r))}</td>"
                    f"<td>{r.votes}</td><td>{r.real_votes}</td><td>{100 * rate:.0f}%</td>"
                    f"<td>{100 * r.ci_low:.0f}-{100 * r.ci_high:.0f}%</td></tr>")

        head = ("<tr><th></th><th>source</th><th>version</th><th>votes</th><th>'real'</th>"
                "<th>rate</th><th>95% CI</th></tr>")
        parts = ["<h4>Colorized photos, most fooling first (rate = judged real)</h4>",
                 "<table class='turing-table'>", head]
        parts += [cell(r, "fooling_rate", lambda r: str(r.model)) for r in rows]
        parts.append("</table>")
        if len(images) > limit:
            parts.append(f"<p>... and {len(images) - limit} more in the CSV export.</p>")
        parts += ["<h4>Real photos, least believed first</h4>", "<table class='turing-table'>", head]
        parts += [cell(r, "judged_real_rate", lambda r: "real") for r in rrows]
        parts.append("</table>")
        if not rows and not rrows:
            return ("<p>No counted votes yet from participants who passed the attention "
                    "checks.</p>")
        return "\n".join(parts)

    @staticmethod
    def _chart_svg(models, real) -> str:
        """Bar chart of the fooling rate per model with its 95% interval; the dashed line is the
        rate at which real photos are judged real."""
        if models is None or len(models) == 0:
            return ("<p>No votes on colorized photos yet from participants who passed the "
                    "attention checks.</p>")
        bar_h, gap, left, width = 26, 12, 170, 360
        n = len(models)
        height = n * (bar_h + gap) + 50
        out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{left + width + 70}' "
               f"height='{height}' font-family='sans-serif' font-size='12'>"]
        for t in range(0, 101, 25):
            x = left + width * t / 100
            out.append(f"<line x1='{x}' y1='10' x2='{x}' y2='{height - 30}' stroke='#ddd'/>"
                       f"<text x='{x}' y='{height - 14}' text-anchor='middle'>{t}%</text>")
        for i, r in enumerate(models.itertuples(index=False)):
            y = 14 + i * (bar_h + gap)
            w = width * float(r.fooling_rate)
            out.append(f"<text x='{left - 8}' y='{y + bar_h * 0.65}' text-anchor='end'>"
                       f"{html.escape(str(r.model))} (n={r.votes})</text>")
            out.append(f"<rect x='{left}' y='{y}' width='{w:.1f}' height='{bar_h}' fill='#4f7cac'/>")
            lo, hi = left + width * float(r.ci_low), left + width * float(r.ci_high)
            cy = y + bar_h / 2
            out.append(f"<line x1='{lo:.1f}' y1='{cy}' x2='{hi:.1f}' y2='{cy}' stroke='#222' stroke-width='2'/>"
                       f"<line x1='{lo:.1f}' y1='{cy - 6}' x2='{lo:.1f}' y2='{cy + 6}' stroke='#222' stroke-width='2'/>"
                       f"<line x1='{hi:.1f}' y1='{cy - 6}' x2='{hi:.1f}' y2='{cy + 6}' stroke='#222' stroke-width='2'/>")
            out.append(f"<text x='{left + width + 6}' y='{y + bar_h * 0.65}'>"
                       f"{100 * float(r.fooling_rate):.1f}%</text>")
        if real is not None and len(real):
            x = left + width * float(real["judged_real_rate"].iloc[0])
            out.append(f"<line x1='{x:.1f}' y1='6' x2='{x:.1f}' y2='{height - 30}' stroke='#c0392b' "
                       f"stroke-dasharray='5,4' stroke-width='2'/>")
        out.append("</svg>")
        legend = ("<p>Bars: fooling rate (share of votes saying <i>real</i>) with 95% Wilson "
                  "intervals. Dashed red line: how often <b>real</b> photos were judged real, the "
                  "ceiling every fooling rate must be read against.</p>")
        return "".join(out) + legend

    def dashboard(self, token, survey_name, request: gr.Request = None):
        """Results of one survey: [survey dropdown, summary, chart, models, real, images, participants]."""
        self.check_token(token, request)
        names = self.store.survey_names()
        if survey_name not in names:
            active = self.store.active_survey()
            survey_name = active["name"] if active else (names[-1] if names else None)
        dd = gr.update(choices=names, value=survey_name)
        if survey_name is None:
            return [dd, "No survey yet: build a pool below (or with `python -m turing_test "
                    "build-pool`).", "", None, None, "", None, None, None, None, None]
        info = next(s for s in self.store.list_surveys() if s["name"] == survey_name)
        votes = self.store.votes_frame(survey_name)
        rules = _rules_of(info)
        s = stats.summary(votes, rules=rules, n_boot=BOOTSTRAP_REPLICATES)
        st = info["stimuli"]
        real = s["real"]
        real_line = ("no votes on real photos yet" if not len(real) else
                     f"real photos judged real: **{100 * real['judged_real_rate'].iloc[0]:.1f}%** "
                     f"({real['ci_low'].iloc[0] * 100:.0f}-{real['ci_high'].iloc[0] * 100:.0f}%, "
                     f"n={int(real['votes'].iloc[0])})")
        excluded = s["excluded"]
        ex = s["exclusions"]
        reasons = ex.loc[ex["excluded"], ["participant", "reasons"]] if len(ex) else ex
        paradigm = ("two photos side by side (which is colorized? 50% = indistinguishable)"
                    if info.get("paradigm") == "pair" else "one photo at a time (real or colorized?)")
        summary = (f"### Survey {survey_name!r} {'(active: participants get this one)' if info['active'] else '(inactive)'}\n"
                   f"Paradigm: {paradigm}.\n\n"
                   f"{info['sources']} source photos: {st['real']} real, {st['generated']} colorized, "
                   f"{st['attention']} attention checks. **{info['participants']}** participants "
                   f"({info['finished']} finished), **{s['n_votes']}** counted votes "
                   f"(+{s['n_practice_votes']} practice).\n\n{real_line}.\n\n"
                   f"Excluded by the survey's rules: **{len(excluded)}** participants (the "
                   "Exclusions tab lists each with its reasons; the figures here leave them out)."
                   + _planning_line(s["model_stats"]))
        fmt = lambda df: df.round(3) if df is not None and len(df) else df  # noqa: E731
        per_model = s["model_stats"] if info.get("paradigm") != "pair" else s.get("pair_models")
        with_metrics = stats.image_metric_table(votes, self.store.stimulus_metrics(survey_name), rules)
        corr = stats.metric_correlations(with_metrics, n_boot=BOOTSTRAP_REPLICATES)
        return [dd, summary, self._chart_svg(s["models"], real), fmt(per_model), fmt(real),
                self._images_html(s["images"], s["real_images"]), fmt(s["participants"]),
                fmt(s["model_differences"]), reasons, fmt(corr), fmt(with_metrics)]

    def settings_of(self, token, survey_name, request: gr.Request = None):
        self.check_token(token, request)
        info = self.store.get_survey(survey_name) if survey_name else None
        if info is None:
            return [gr.update()] * 10
        return [info["exposure_ms"], info["max_trials"], info["n_practice"], info["n_attention"],
                info["completion_code"], info["completion_url"], info["active"],
                info["n_repeats"] or 0, info["stop_width"] or 0,
                json.dumps(_rules_of(info).to_dict(), indent=1)]

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
        rules = _rules_of(info)
        s = stats.summary(votes, rules=rules, n_boot=BOOTSTRAP_REPLICATES)
        tag = (survey_name or "all").replace("/", "_").replace(" ", "_")
        paths = []
        # the votes with their flags (fast, excluded_participant, exclusion_reason)
        for key, df in (("votes", stats.flag_votes(votes, rules)), ("per_model", s["models"]),
                        ("per_model_stats", s["model_stats"]),
                        ("model_differences", s["model_differences"]),
                        ("exclusions", s["exclusions"]),
                        ("per_image", stats.image_metric_table(
                            votes, self.store.stimulus_metrics(survey_name), rules)
                         if survey_name else s["images"]),
                        ("real_photos", s["real_images"]), ("per_participant", s["participants"]),
                        ("participants", self.store.participants_frame(survey_name or None))):
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


BOOTSTRAP_REPLICATES = 1000


def parse_rules(text) -> "stats.ExclusionRules":
    """Exclusion rules typed on the admin tab (JSON; empty: the defaults), or SurveyError."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return stats.ExclusionRules()
    if not isinstance(text, str) or len(text) > 4000:
        raise SurveyError("the exclusion rules must be a short JSON object")
    try:
        d = json.loads(text)
    except ValueError as exc:
        raise SurveyError(f"the exclusion rules are not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(d, dict):
        raise SurveyError("the exclusion rules must be a JSON object, e.g. {\"speed_floor_ms\": 200}")
    known = {f for f in stats.ExclusionRules().to_dict()}
    unknown = sorted(set(d) - known)
    if unknown:
        raise SurveyError(f"unknown exclusion rule(s): {', '.join(map(str, unknown))[:200]} "
                          f"(known: {', '.join(sorted(known))})")
    try:
        return stats.ExclusionRules.from_dict(d)
    except (TypeError, ValueError) as exc:
        raise SurveyError(f"invalid exclusion rules: {exc}") from None


def _rules_of(info: dict | None) -> "stats.ExclusionRules":
    try:
        return stats.ExclusionRules.from_dict((info or {}).get("exclusion_rules") or None)
    except (TypeError, ValueError):  # stored by a newer or older version: the defaults
        return stats.ExclusionRules()


def _planning_line(model_stats) -> str:
    """How many more votes each model needs for a 95% interval 10 points wide."""
    if model_stats is None or not len(model_stats):
        return ""
    parts = []
    for r in model_stats.itertuples():
        need = stats.votes_needed(float(r.fooling_rate), 0.10)
        left = max(0, need - int(r.votes))
        parts.append(f"{r.model}: {'enough' if left == 0 else f'{left} more'}")
    return "\n\nVotes for a 95% interval 10 points wide: " + "; ".join(parts) + "."


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


def settle_garbage_collector() -> None:
    """Call once a server process has started up, before it serves: move every object made so
    far (the app, the libraries, loaded models) out of the garbage collector's view (gc.freeze)
    and collect young objects less often. Under a stream of votes the collector otherwise keeps
    rescanning hundreds of thousands of long-lived objects; in our load runs this saved about 4 %
    of the server's CPU per vote and shortened the slowest responses."""
    import gc
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _model_choices() -> list[str]:
    try:
        import colorizer
        return [m["name"] for m in colorizer.list_models()]
    except Exception:  # the admin tab must open even when the registry cannot be read
        return []


def build_turing_tabs(db_url: str | None = None, admin_token: str | None = None,
                      demo_survey: bool | None = None, stimulus_cache=None) -> _Turing:
    """Add the participant tab and the admin tab to the enclosing gr.Blocks.

    db_url: default $TURING_DB_URL (else the default SQLite file). admin_token: default
    $TURING_ADMIN_TOKEN (empty: the admin tab is off). demo_survey: on an empty database create
    the demo survey (in a background thread at start-up, so the app starts at once; default on,
    off with TURING_DEMO=0).
    """
    if demo_survey is None:
        demo_survey = settings().demo
    t = _Turing(db_url, admin_token, demo_survey, stimulus_cache)
    if demo_survey and not t.store.has_surveys():
        t.start_demo_in_background()

    with gr.Tab("Turing test", id="turing-test"):
        state = gr.State(None)
        # the resume secret, kept in the participant's browser (localStorage) under a key of this
        # database, so that it is read back after a restart of the server
        browser = gr.BrowserState(None, storage_key="turing_resume",
                                  secret=t.store.secret("browser_state")[:32])
        with gr.Column(visible=True) as intro:
            gr.Markdown(INSTRUCTIONS)
            pid = gr.Textbox(label="Participant id (optional)", max_length=sv.MAX_ID_LEN,
                             placeholder="e.g. your Prolific id; leave empty to stay anonymous")
            url_params = gr.Textbox(value="", visible="hidden", label="url parameters")
            resume_secret = gr.Textbox(value="", visible="hidden", label="resume secret")
            secret_btn = gr.Button("secret", visible="hidden")
            start_btn = gr.Button("I agree, start", variant="primary")
        with gr.Column(visible=False) as trial:
            progress = gr.Markdown()
            feedback = gr.Markdown()
            image = gr.Image(type="filepath", interactive=False, show_label=False, buttons=[],
                             elem_id="turing-stimulus", label="photo", height=384)
            with gr.Column(visible=True) as single_row:
                gr.Markdown("**Is this a real color photo?**")
                with gr.Row():
                    real_btn = gr.Button("Real  (R)", variant="primary", elem_id="turing-real")
                    fake_btn = gr.Button("Colorized  (C)", variant="secondary", elem_id="turing-fake")
            with gr.Column(visible=False) as pair_row:
                gr.Markdown("**One of these two is a real color photo, the other was colorized by "
                            "a computer. Which one is colorized?**")
                with gr.Row():
                    left_btn = gr.Button("The left one  (L)", variant="primary", elem_id="turing-left")
                    right_btn = gr.Button("The right one  (R)", variant="primary",
                                          elem_id="turing-right")
            token = gr.Textbox(value="", visible="hidden", label="trial token")
            answer = gr.Textbox(value="", visible="hidden", label="answer")
            rt = gr.Number(value=None, visible="hidden", label="response time (ms)")
            exposure = gr.Number(value=0, visible="hidden", label="exposure (ms)")
        with gr.Column(visible=False) as end:
            end_md = gr.Markdown()
        gr.HTML("", js_on_load=KEYS_JS, elem_id="turing-keys")

    outputs = [intro, trial, end, image, progress, feedback, end_md, token, exposure]
    t._out_components = outputs
    part = dict(concurrency_limit=PARTICIPANT_CONCURRENCY, concurrency_id="turing_participant",
                show_progress="hidden")
    started = start_btn.click(t.start, [pid, url_params, resume_secret, browser],
                              [state] + outputs + [single_row, pair_row],
                              api_name="turing_start", **{**part, "show_progress": "minimal"})
    started.success(None, [exposure, image], None, js=SHOW_JS, api_name="turing_show_start")
    started.success(t.remember, [state], [browser], api_visibility="private", queue=False,
                    show_progress="hidden")
    secret_btn.click(t.secret_of, [state], [resume_secret], api_name="turing_secret", **part)
    # the vote checks its raw inputs itself and sends its outputs ready-made (_Turing._serialized)
    vote = dict(part, preprocess=False, postprocess=False)
    real_btn.click(t.vote, [answer, token, rt, state], outputs, js=_vote_js("real"),
                   api_name="turing_vote", **vote).success(
        None, [exposure, image], None, js=SHOW_JS, api_name="turing_show_real")
    # the same handler; the public endpoint is turing_vote (answer "real" or "fake")
    for side, btn in (("left", left_btn), ("right", right_btn)):  # the pair paradigm's answers
        btn.click(t.vote, [answer, token, rt, state], outputs, js=_vote_js(side),
                  api_name=f"turing_vote_{side}", api_visibility="private", **vote).success(
            None, [exposure, image], None, js=SHOW_JS, api_name=f"turing_show_{side}")
    fake_btn.click(t.vote, [answer, token, rt, state], outputs, js=_vote_js("fake"),
                   api_name="turing_vote_colorized", api_visibility="private", **vote).success(
        None, [exposure, image], None, js=SHOW_JS, api_name="turing_show_fake")
    root = gr.context.Context.root_block
    if root is not None:
        root.load(None, None, [pid, url_params], js=URL_JS, api_name="turing_url_params")

    with gr.Tab("Turing test: admin", id="turing-admin"):
        if not t.admin_token:
            gr.Markdown(
                "### The admin tab is off\n"
                f"To see results, build pools and export votes, set the environment variable "
                f"`{ADMIN_ENV}` to a secret of your choice and restart the app, e.g.\n\n"
                f"    {ADMIN_ENV}=$(python -c 'import secrets; print(secrets.token_urlsafe(24))') python app.py\n\n"
                "(on a Hugging Face Space: Settings, Variables and secrets, New secret). Then "
                "enter the same secret here.")
            return t
        _admin_tab(t)
    return t


def _admin_tab(t: _Turing) -> None:
    adm = dict(api_visibility="private", concurrency_limit=2, concurrency_id="turing_admin")
    with gr.Row():
        token = gr.Textbox(label="Admin token", type="password", scale=3,
                           placeholder=f"the value of ${ADMIN_ENV}")
        open_btn = gr.Button("Open dashboard", variant="primary", scale=1)
    with gr.Column(visible=False) as dash:
        with gr.Row():
            survey_dd = gr.Dropdown(label="Survey", choices=[], value=None, scale=3,
                                    allow_custom_value=True, elem_id="turing-admin-survey")
            refresh_btn = gr.Button("Refresh", scale=1)
            auto = gr.Checkbox(value=True, label="refresh every 10 s", scale=1)
        summary = gr.Markdown(elem_id="turing-admin-summary")
        chart = gr.HTML()
        with gr.Tabs(selected="turing-per-model"):
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
            with gr.Tab("Export"):
                export_btn = gr.Button("Export CSV (votes and aggregates)")
                export_files = gr.File(label="CSV files", file_count="multiple", interactive=False)
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
    timer = gr.Timer(10, active=False)

    results = [survey_dd, summary, chart, models_df, real_df, images_html, parts_df, diff_df, excl_df,
               corr_df, metric_df]
    settings = [exposure, max_trials, n_practice, n_attention, code, url, active, n_repeats, stop_width,
                rules_box]

    def open_dashboard(tok, name, request: gr.Request = None):
        res = t.dashboard(tok, name, request)
        chosen = res[0].get("value") if isinstance(res[0], dict) else name
        return res + t.settings_of(tok, chosen, request) + [gr.update(visible=True), gr.Timer(active=True),
                                                   gr.update(choices=_model_choices())]

    def on_auto(tok, on, request: gr.Request = None):
        t.check_token(tok, request)
        return gr.Timer(active=bool(on))

    open_btn.click(open_dashboard, [token, survey_dd], results + settings + [dash, timer, models],
                   api_name="turing_admin_open", **adm)
    token.submit(open_dashboard, [token, survey_dd], results + settings + [dash, timer, models],
                 api_name="turing_admin_open_submit", **adm)
    refresh_btn.click(t.dashboard, [token, survey_dd], results, api_name="turing_admin_refresh", **adm)
    timer.tick(t.dashboard, [token, survey_dd], results, api_name="turing_admin_tick",
               show_progress="hidden", **adm)
    auto.change(on_auto, [token, auto], [timer], api_name="turing_admin_auto", **adm)
    survey_dd.input(open_dashboard, [token, survey_dd], results + settings + [dash, timer, models],
                    api_name="turing_admin_choose", **adm)
    save_btn.click(t.save_settings, [token, survey_dd] + settings, [settings_msg],
                   api_name="turing_admin_settings", **adm).success(
        t.dashboard, [token, survey_dd], results, api_name="turing_admin_after_settings", **adm)
    export_btn.click(t.export, [token, survey_dd], [export_files], api_name="turing_admin_export", **adm)

    def after_build(tok, name):
        # show the survey just built (its results and its settings: the settings fields must
        # always be those of the survey chosen, or Save would copy another survey's onto it)
        name = name.strip() if isinstance(name, str) else name
        res = t.dashboard(tok, name)
        chosen = res[0].get("value") if isinstance(res[0], dict) else name
        return res + t.settings_of(tok, chosen)

    # first clear the last build's message in the page (no server call), so that a build that
    # fails does not leave an earlier success message under its error
    build_btn.click(None, None, [build_msg], js="() => ''", api_name="turing_admin_build_clear",
                    api_visibility="private", queue=False).then(
        t.build, [token, zip_file, new_name, models, size, practice, attention, activate, paradigm],
        [build_msg], api_name="turing_admin_build_pool", api_visibility="private",
        concurrency_limit=1, concurrency_id="turing_build").success(
        after_build, [token, new_name], results + settings, api_name="turing_admin_after_build",
        **adm)
