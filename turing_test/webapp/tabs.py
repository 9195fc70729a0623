"""The Turing test's two tabs in the enclosing gr.Blocks: `build_turing_tabs` makes the object
the tabs share (`_Turing`: the service with the participant and the admin handlers) and adds the
participant tab (participant.py), then the admin tab (admin.py). `serve` runs the two tabs on
their own (`python -m turing_test serve`; app.py serves them beside the Colorize tab).

Imports gradio.
"""
from __future__ import annotations

import gradio as gr

from ..settings import settings
from .admin import AdminHandlers, build_admin_tab
from .participant import ParticipantHandlers, build_participant_tab
from .service import settle_garbage_collector


class _Turing(ParticipantHandlers, AdminHandlers):
    """What the tabs of one Blocks share (the store itself is shared per database URL): the
    service (service.TuringService), the participant handlers and the admin handlers."""


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
    build_participant_tab(t)
    build_admin_tab(t)
    return t


def serve(db_url: str | None = None, *, host: str = "127.0.0.1", port: int = 7860,
          demo_survey: bool = True, concurrency: int = 4) -> None:
    """Serve only the Turing test's tabs until stopped. db_url goes down as an argument (None: the
    settings' TURING_DB_URL), never into os.environ."""
    with gr.Blocks(title="Colorization Turing test") as demo:
        build_turing_tabs(db_url=db_url, demo_survey=demo_survey)
    demo.queue(default_concurrency_limit=concurrency)
    settle_garbage_collector()
    demo.launch(server_name=host, server_port=port, show_error=True)
