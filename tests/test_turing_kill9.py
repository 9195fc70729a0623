"""Durability: votes acknowledged to participants survive kill -9 of the server, exactly once."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from gradio_client import Client
from sqlalchemy import create_engine, text

from turing_test.pool import build_pool
from turing_test.store import Store
from turing_helpers import free_port, make_photos, start_server_process

pytestmark = pytest.mark.server

N_CLIENTS = 6


def test_kill9_keeps_every_acknowledged_vote(tmp_path, tiny_weights_dir):
    url = f"sqlite:///{tmp_path / 'turing.db'}"
    st = Store(url)
    build_pool(st, make_photos(tmp_path / "photos", 24), ["default"], survey="k9", size=64,
               practice=0, attention=0, repeats=0, seed=2,
               settings=dict(max_trials=20, n_practice=0, n_attention=0))
    env = {"TURING_ADMIN_TOKEN": "", "TURING_STIMULUS_CACHE": str(tmp_path / "cache")}
    port = free_port()
    proc = start_server_process(port, env, tmp_path / "server.log", "--db", url, "--no-demo")
    base = f"http://127.0.0.1:{port}/"
    acked: list[tuple[str, str]] = []  # (participant id, trial token) of acknowledged votes
    lock = threading.Lock()
    stop = threading.Event()
    clients, secrets = {}, {}

    def participant(k):
        ext = f"k9_{k}"
        try:
            c = Client(base, verbose=False)
            img, _, _, end, token, _ = c.predict(ext, api_name="/turing_start")
            clients[k] = c
            secrets[k] = c.predict(api_name="/turing_secret")  # what the browser would keep
            while not end and not stop.is_set():
                voted = token
                img, _, _, end, token, _ = c.predict("real" if k % 2 else "fake", token,
                                                     api_name="/turing_vote")
                with lock:  # the server answered: this vote was acknowledged
                    acked.append((ext, voted))
        except Exception:
            pass  # the server died under us: whatever was not acknowledged may be lost

    try:
        threads = [threading.Thread(target=participant, args=(k,), daemon=True)
                   for k in range(N_CLIENTS)]
        for t in threads:
            t.start()
        deadline = time.time() + 60
        while len(acked) < 30 and time.time() < deadline:
            time.sleep(0.05)
        assert len(acked) >= 30, "votes did not come in"
        os.kill(proc.pid, signal.SIGKILL)  # in the middle of the voting
        proc.wait(10)
        stop.set()
        for t in threads:
            t.join(30)
        with lock:
            acknowledged = list(acked)

        # restart on the same database
        proc = start_server_process(port, env, tmp_path / "server2.log", "--db", url, "--no-demo")
        eng = create_engine(url)
        with eng.connect() as c:
            rows = c.execute(text(
                "SELECT p.external_id, a.token FROM votes v "
                "JOIN participants p ON p.id = v.participant_id "
                "JOIN assignments a ON a.id = v.assignment_id")).all()
        eng.dispose()
        stored = [(r[0], r[1]) for r in rows]
        assert len(stored) == len(set(stored)), "a vote was stored twice"
        missing = set(acknowledged) - set(stored)
        assert not missing, f"acknowledged votes lost: {sorted(missing)[:5]}"
        # at most one vote per participant can have been in flight at the kill
        assert len(stored) - len(acknowledged) <= N_CLIENTS
        print(f"kill -9 after {len(acknowledged)} acknowledged votes: {len(stored)} stored, "
              f"none lost, none twice")

        # participants come back with the secret their browser kept and carry on where the
        # database says they are; the id alone gets nothing
        c = Client(base, verbose=False)
        try:
            c.predict("k9_0", api_name="/turing_start")
            raise AssertionError("the id alone resumed a session")
        except Exception as exc:
            assert "already started" in str(exc), exc
        img, progress, feedback, end, token, _ = c.predict("k9_0", "", secrets[0],
                                                           api_name="/turing_start")
        n_done = sum(1 for e, _ in stored if e == "k9_0")
        assert "continue" in feedback and f"Photo {n_done + 1} of 20" in progress
        c.predict("real", token, api_name="/turing_vote")
        eng = create_engine(url)
        with eng.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM votes")).scalar() == len(stored) + 1
        eng.dispose()
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except Exception:
                proc.kill()
