"""The Turing test's two tabs in the enclosing gr.Blocks: `build_turing_tabs` makes the object
the tabs share (`_Turing`: the service with the participant and the admin handlers) and adds the
participant tab (participant.py), then the admin tab (admin.py).

Imports gradio.
"""
from __future__ import annotations

from ..settings import settings
from .admin import AdminHandlers, build_admin_tab
from .participant import ParticipantHandlers, build_participant_tab


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
