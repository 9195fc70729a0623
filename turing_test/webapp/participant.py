"""The participant tab: its layout, its handlers and its public API.

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

The other events of the tab (the pair paradigm's buttons, showing an image, remembering the
secret in the browser) are private. A session is a state.Session in a gr.State per user.
Imports gradio (handlers raising gr.Error, the layout).
"""
from __future__ import annotations

from dataclasses import dataclass

import anyio
import gradio as gr

from .. import survey as sv
from ..settings import settings
from ..store import TrialView, WriterBusy
from ..survey import SurveyError
from .service import TuringService, client_address
from .state import Session, has_secret, has_session

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



class ParticipantHandlers(TuringService):
    """The participant tab's handlers: start, vote, the secret and what the browser keeps."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._out_components: list = []  # the participant outputs (set by build_participant_tab)
        self._image_payloads: dict[str, dict] = {}  # stimulus file -> its payload for the browser

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
            self.wait_for_demo()
            view = self.store.start(pid, study_id=params.get("STUDY_ID"),
                                    session_id=params.get("SESSION_ID"), resume_secret=secret,
                                    client=client_address(request))
        except SurveyError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        state = Session(participant=view.participant_id, survey=view.survey_id,
                        secret=view.resume_secret)
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
            if not has_session(state):
                raise SurveyError("no session: press Start before voting")
            args = (state.participant, answer, token if isinstance(token, str) else None, rt_ms)
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
        if not has_secret(state):
            raise gr.Error("no session: press Start first", print_exception=False)
        return state.secret

    @staticmethod
    def remember(state=None):
        """What the participant's browser keeps (gr.BrowserState) to continue after a restart."""
        if not has_secret(state):
            return gr.skip()
        return state.remembered()

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


# --- the tab ---------------------------------------------------------------------------------

@dataclass
class ParticipantPage:
    """The participant tab's components that its events read or write."""
    state: gr.State
    browser: gr.BrowserState
    intro: gr.Column
    pid: gr.Textbox
    url_params: gr.Textbox
    resume_secret: gr.Textbox
    secret_btn: gr.Button
    start_btn: gr.Button
    trial: gr.Column
    progress: gr.Markdown
    feedback: gr.Markdown
    image: gr.Image
    single_row: gr.Column
    real_btn: gr.Button
    fake_btn: gr.Button
    pair_row: gr.Column
    left_btn: gr.Button
    right_btn: gr.Button
    token: gr.Textbox
    answer: gr.Textbox
    rt: gr.Number
    exposure: gr.Number
    end: gr.Column
    end_md: gr.Markdown

    def outputs(self) -> list:
        """What the start and every vote send: ParticipantHandlers._outputs, in its order."""
        return [self.intro, self.trial, self.end, self.image, self.progress, self.feedback,
                self.end_md, self.token, self.exposure]


def _intro_column() -> dict:
    """The instructions, the participant id and the start button (and the hidden inputs)."""
    with gr.Column(visible=True) as intro:
        gr.Markdown(INSTRUCTIONS)
        pid = gr.Textbox(label="Participant id (optional)", max_length=sv.MAX_ID_LEN,
                         placeholder="e.g. your Prolific id; leave empty to stay anonymous")
        url_params = gr.Textbox(value="", visible="hidden", label="url parameters")
        resume_secret = gr.Textbox(value="", visible="hidden", label="resume secret")
        secret_btn = gr.Button("secret", visible="hidden")
        start_btn = gr.Button("I agree, start", variant="primary")
    return dict(intro=intro, pid=pid, url_params=url_params, resume_secret=resume_secret,
                secret_btn=secret_btn, start_btn=start_btn)


def _trial_column() -> dict:
    """The photo, the progress, the answer buttons of both paradigms (and the hidden inputs)."""
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
    return dict(trial=trial, progress=progress, feedback=feedback, image=image,
                single_row=single_row, real_btn=real_btn, fake_btn=fake_btn, pair_row=pair_row,
                left_btn=left_btn, right_btn=right_btn, token=token, answer=answer, rt=rt,
                exposure=exposure)


def _participant_layout(t: ParticipantHandlers) -> ParticipantPage:
    with gr.Tab("Turing test", id="turing-test"):
        state = gr.State(None)
        # the resume secret, kept in the participant's browser (localStorage) under a key of this
        # database, so that it is read back after a restart of the server
        browser = gr.BrowserState(None, storage_key="turing_resume",
                                  secret=t.store.secret("browser_state")[:32])
        intro = _intro_column()
        trial = _trial_column()
        with gr.Column(visible=False) as end:
            end_md = gr.Markdown()
        gr.HTML("", js_on_load=KEYS_JS, elem_id="turing-keys")
    return ParticipantPage(state=state, browser=browser, end=end, end_md=end_md, **intro, **trial)


def _wire_votes(t: ParticipantHandlers, p: ParticipantPage, part: dict) -> None:
    """The answer buttons: one handler; the public endpoint is turing_vote ("real" or "fake")."""
    outputs = p.outputs()
    inputs = [p.answer, p.token, p.rt, p.state]
    shown = [p.exposure, p.image]
    # the vote checks its raw inputs itself and sends its outputs ready-made (_serialized)
    vote = dict(part, preprocess=False, postprocess=False)
    p.real_btn.click(t.vote, inputs, outputs, js=_vote_js("real"),
                     api_name="turing_vote", **vote).success(
        None, shown, None, js=SHOW_JS, api_name="turing_show_real")
    for side, btn in (("left", p.left_btn), ("right", p.right_btn)):  # the pair paradigm's answers
        btn.click(t.vote, inputs, outputs, js=_vote_js(side),
                  api_name=f"turing_vote_{side}", api_visibility="private", **vote).success(
            None, shown, None, js=SHOW_JS, api_name=f"turing_show_{side}")
    p.fake_btn.click(t.vote, inputs, outputs, js=_vote_js("fake"),
                     api_name="turing_vote_colorized", api_visibility="private", **vote).success(
        None, shown, None, js=SHOW_JS, api_name="turing_show_fake")


def build_participant_tab(t: ParticipantHandlers) -> ParticipantPage:
    """The participant tab and its events (turing_start, turing_secret, turing_vote, ...)."""
    p = _participant_layout(t)
    outputs = p.outputs()
    t._out_components = outputs
    part = dict(concurrency_limit=PARTICIPANT_CONCURRENCY, concurrency_id="turing_participant",
                show_progress="hidden")
    started = p.start_btn.click(t.start, [p.pid, p.url_params, p.resume_secret, p.browser],
                                [p.state] + outputs + [p.single_row, p.pair_row],
                                api_name="turing_start", **{**part, "show_progress": "minimal"})
    started.success(None, [p.exposure, p.image], None, js=SHOW_JS, api_name="turing_show_start")
    started.success(t.remember, [p.state], [p.browser], api_visibility="private", queue=False,
                    show_progress="hidden")
    p.secret_btn.click(t.secret_of, [p.state], [p.resume_secret], api_name="turing_secret", **part)
    _wire_votes(t, p, part)
    root = gr.context.Context.root_block
    if root is not None:
        root.load(None, None, [p.pid, p.url_params], js=URL_JS, api_name="turing_url_params")
    return p
