"""The Turing test tabs of the Gradio app: the participant tab and the researcher's admin tab.

    with gr.Blocks() as demo:
        build_turing_tabs()

The tabs live in the package turing_test/webapp/ (one module per feature; its docstring says
which modules may import gradio). The public API (turing_start, turing_secret, turing_vote) is
described in webapp/participant.py, the private admin events and their token in webapp/admin.py.
This module keeps the names app.py, the command line, scripts and tests import, as re-exports.
"""
from __future__ import annotations

# (importing turing_test.webapp first sets GRADIO_ANALYTICS_CACHE_FREQUENCY, before gradio loads)
from .webapp.admin import (ADMIN_EVENTS, AdminHandlers, _admin_tab, _model_choices,
                           _optional_count, build_admin_tab)
from .webapp.participant import (INSTRUCTIONS, KEYS_JS, PARTICIPANT_CONCURRENCY, SHOW_JS, URL_JS,
                                 ParticipantHandlers, _vote_js, build_participant_tab)
from .webapp.report import BOOTSTRAP_REPLICATES, parse_rules
from .webapp.report import chart_svg as _chart_svg
from .webapp.report import planning_line as _planning_line
from .webapp.report import rules_of as _rules_of
from .webapp.service import TuringService, log, settle_garbage_collector
from .webapp.service import client_address as _client_address
from .webapp.state import Session, SurveySettings
from .webapp.tabs import _Turing, build_turing_tabs, serve

__all__ = ["build_turing_tabs", "serve", "settle_garbage_collector", "parse_rules", "BOOTSTRAP_REPLICATES",
           "PARTICIPANT_CONCURRENCY", "INSTRUCTIONS", "KEYS_JS", "SHOW_JS", "URL_JS",
           # the building blocks and the private names tests reach
           "TuringService", "ParticipantHandlers", "AdminHandlers", "Session", "SurveySettings",
           "build_participant_tab", "build_admin_tab", "ADMIN_EVENTS", "log", "_Turing",
           "_admin_tab", "_client_address", "_chart_svg", "_planning_line", "_rules_of",
           "_optional_count", "_model_choices", "_vote_js"]
