"""What the Turing test's tabs of one Blocks share: the store (itself shared per database URL),
the stimulus files handed out, the admin token and its throttle, and the demo survey; plus the
client address of a request and the server process's garbage collector settings.

Imports gradio (the stimulus folder is served as a Gradio static path).
"""
from __future__ import annotations

import logging
import threading

import gradio as gr

from ..pool import StimulusFiles, ensure_demo_survey
from ..settings import settings
from ..store import Store, get_store
from ..throttle import TokenThrottle

log = logging.getLogger("turing_test")

_static_folders: set[str] = set()


def client_address(request) -> str:
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


class TuringService:
    """The objects the participant and admin handlers share (see tabs._Turing)."""

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

    def start_demo_in_background(self):
        def work():
            try:
                self.demo_note = ensure_demo_survey(self.store)
                log.info("turing test: %s", self.demo_note)
            except Exception as exc:  # never take the app down for the demo
                self.demo_note = f"no demo survey: {exc}"
                log.warning("turing test: %s", self.demo_note)
        threading.Thread(target=work, name="turing-demo", daemon=True).start()

    def wait_for_demo(self) -> None:
        """The first visitor of an empty database waits for the demo survey (when it is on)."""
        if self.demo_survey and self.store.active_survey() is None and not self.store.has_surveys():
            try:
                self.demo_note = ensure_demo_survey(self.store)
            except Exception as exc:  # then start() says that no survey is running
                self.demo_note = f"no demo survey: {exc}"
                log.warning("turing test: %s", self.demo_note)


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
