"""The Turing test's settings: read from the environment in one place, bad values fall back."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from turing_test import db
from turing_test.settings import Settings


def test_settings_read_every_variable_and_fall_back_on_bad_numbers(caplog, tmp_path):
    env = {"TURING_DB_URL": " postgresql://u@h/db ", "TURING_ADMIN_TOKEN": "s3cret",
           "TURING_DEMO": "Off", "TURING_STIMULUS_CACHE": str(tmp_path), "TURING_CONCURRENCY": "4"}
    s = Settings.from_env(env)
    assert (s.db_url, s.database, s.admin_token, s.demo, s.stimulus_cache, s.concurrency) == (
        "postgresql://u@h/db", "postgresql://u@h/db", "s3cret", False, Path(tmp_path), 4)
    with caplog.at_level(logging.WARNING, logger="turing_test.settings"):
        bad = Settings.from_env({"TURING_CONCURRENCY": "many"})
    assert bad.concurrency == 16 and "TURING_CONCURRENCY='many'" in caplog.text
    assert Settings.from_env({"TURING_CONCURRENCY": "0"}).concurrency == 16
    empty = Settings.from_env({})
    assert empty.demo is True and empty.admin_token == "" and empty.database.startswith("sqlite:///")


def test_default_db_url_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TURING_DB_URL", f"sqlite:///{tmp_path / 'a.db'}")
    assert db.default_db_url() == f"sqlite:///{tmp_path / 'a.db'}"
    monkeypatch.delenv("TURING_DB_URL")
    assert db.default_db_url().endswith("turing.db")


def test_serve_passes_db_down_without_writing_the_environment(monkeypatch, tmp_path):
    import turing_test.__main__ as main
    import turing_test.webapp.tabs as tabs
    seen = {}

    def fake_tabs(db_url=None, demo_survey=None, **_):
        seen["db_url"], seen["demo"] = db_url, demo_survey

    class FakeBlocks:
        def __init__(self, **_): pass
        def __enter__(self): return self
        def __exit__(self, *a): return False
        def queue(self, **_): pass
        def launch(self, **_): seen["launched"] = True

    monkeypatch.delenv("TURING_DB_URL", raising=False)
    monkeypatch.setattr(tabs, "build_turing_tabs", fake_tabs)  # where `serve` finds them
    monkeypatch.setattr(tabs, "settle_garbage_collector", lambda: None)
    import gradio as gr
    monkeypatch.setattr(gr, "Blocks", FakeBlocks)
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    assert main.main(["--db", url, "serve", "--no-demo"]) == 0
    assert seen == {"db_url": url, "demo": False, "launched": True}
    assert "TURING_DB_URL" not in os.environ
