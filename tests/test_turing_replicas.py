"""Survey replicas: two processes behind nginx on one PostgreSQL, one killed with kill -9 halfway.

Runs scripts/serve_replicas.sh (2 replicas of `python -m turing_test serve`, nginx in front) and
scripts/load_turing.py --url through the proxy: 60 participants. Needs $TURING_TEST_PG_URL (CI:
scripts/ci_postgres.sh) and Debian's nginx; skips without them.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, text

from turing_helpers import REPO, free_port, make_photos, pg_url_or_skip

pytestmark = pytest.mark.server

PARTICIPANTS, VOTES = 60, 10


def _nginx_or_skip() -> None:
    if not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")):
        pytest.skip("nginx is not installed (apt-get install nginx-light; .ci/run does)")


@pytest.fixture
def fresh_pg():
    """A database of its own on the test server, dropped afterwards."""
    base = pg_url_or_skip()
    from turing_test import db
    admin = create_engine(db.normalize_url(base), isolation_level="AUTOCOMMIT")
    name = f"turing_replicas_{secrets.token_hex(4)}"
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name}"))
    url = db.normalize_url(base).rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        from turing_test.store import reset_stores
        reset_stores()
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def _votes(url: str) -> int:
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            return int(c.execute(text("SELECT count(*) FROM votes")).scalar())
    finally:
        eng.dispose()


def test_serve_replicas_refuses_sqlite_for_more_than_one(tmp_path):
    env = {**os.environ, "TURING_DB_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    r = subprocess.run(["bash", "scripts/serve_replicas.sh", "2", "--dir", str(tmp_path / "run")],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "2 replicas need one PostgreSQL database" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "run").exists()
    r = subprocess.run(["bash", "scripts/serve_replicas.sh", "two"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "whole number" in r.stderr


def test_two_replicas_behind_nginx_survive_a_kill9(tmp_path, tiny_weights_dir, fresh_pg):
    _nginx_or_skip()
    from turing_test.pool import build_pool
    from turing_test.store import Store
    st = Store(fresh_pg)
    build_pool(st, make_photos(tmp_path / "photos", 24), ["default"], survey="replicas", size=64,
               practice=0, attention=0, repeats=0, seed=3,
               settings=dict(max_trials=VOTES, n_practice=0, n_attention=0, exposure_ms=1000))
    st.engine.dispose()
    run = tmp_path / "run"
    proxy, first = free_port(), free_port()
    while abs(proxy - first) < 3:
        first = free_port()
    env = {**os.environ, "TURING_DB_URL": fresh_pg, "TURING_ADMIN_TOKEN": "",
           "COLORIZER_WEIGHTS_DIR": str(tiny_weights_dir)}
    server = subprocess.Popen(
        ["bash", "scripts/serve_replicas.sh", "2", "--turing-only", "--no-demo", "--port",
         str(proxy), "--first-port", str(first), "--dir", str(run)],
        cwd=REPO, env=env, stdout=open(tmp_path / "serve.log", "wb"), stderr=subprocess.STDOUT,
        start_new_session=True)
    load = None
    try:
        t0 = time.time()
        while not (run / "ready").exists():
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.time() - t0 < 240, "the replicas did not come up"
            time.sleep(0.3)
        load = subprocess.Popen(
            [sys.executable, "scripts/load_turing.py", "--url", f"http://127.0.0.1:{proxy}/",
             "--db", fresh_pg, "--participants", str(PARTICIPANTS), "--votes", str(VOTES),
             "--think-ms", "200-600", "--ramp-s", "3", "--timeout-s", "400"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # kill -9 one replica when about half of the votes are in
        t0 = time.time()
        while _votes(fresh_pg) < PARTICIPANTS * VOTES // 2:
            assert load.poll() is None, load.stdout.read()
            assert time.time() - t0 < 300, "the votes did not come in"
            time.sleep(0.2)
        victim = int((run / "replica-1.pid").read_text())
        os.kill(victim, signal.SIGKILL)
        out, _ = load.communicate(timeout=420)
        print(out)
        assert load.returncode == 0, out
        n = PARTICIPANTS * VOTES
        assert (f"acknowledged votes: {n} of {n}; in the database: {n}; missing: 0; "
                f"stored twice: 0; not acknowledged but stored: 0") in out
        spread = re.search(r"assignments per photo: min (\d+), max (\d+)", out)
        assert spread and int(spread[2]) - int(spread[1]) <= 1, out
        per = dict(re.findall(r"127\.0\.0\.1:(\d+) (\d+)",
                              re.search(r"acknowledged votes per replica: (.*)", out)[1]))
        assert set(per) == {str(first), str(first + 1)}, out  # both replicas carried votes
        moved = re.search(r"moved to another replica after losing theirs: (\d+) \(([^)]*)\)", out)
        assert moved and int(moved[1]) >= 1, out
        assert f"127.0.0.1:{first} -> 127.0.0.1:{first + 1}" in moved[2], out
    finally:
        if load is not None and load.poll() is None:
            load.kill()
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
