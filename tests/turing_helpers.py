"""Helpers and fixtures of the Turing test tests (imported by the tests/test_turing_*.py files)."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
PG_ENV = "TURING_TEST_PG_URL"


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_photos(folder: Path, n: int, size=(96, 80), seed: int = 0, fmt: str = "png") -> list[Path]:
    """n small, smooth, colorful synthetic photos (distinct names), as files in folder."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for i in range(n):
        c0, c1, c2 = rng.uniform(20, 235, size=(3, 3))
        f = (xx / w)[..., None]
        g = (yy / h)[..., None]
        img = c0 * (1 - f) * (1 - g) + c1 * f + c2 * g * (1 - f)
        img += rng.normal(0, 6, size=img.shape)
        p = folder / f"photo_{i:03d}.{fmt}"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(p)
        out.append(p)
    return out


def pg_url_or_skip() -> str:
    url = os.environ.get(PG_ENV, "").strip()
    if not url:
        pytest.skip(f"${PG_ENV} is not set (scripts/ci_postgres.sh starts a PostgreSQL and sets it)")
    return url


def reset_pg(url: str) -> None:
    from sqlalchemy import text
    from turing_test import db
    from turing_test.models import Base
    eng = db.get_engine(url)
    Base.metadata.drop_all(eng)
    with eng.begin() as c:  # tables a failed earlier run might have left
        for t in ("votes", "assignments", "participants", "stimuli", "surveys"):
            c.execute(text(f"DROP TABLE IF EXISTS {t} CASCADE"))
    Base.metadata.create_all(eng)


def raw_gradio_call(base: str, fn_index: int, data: list, timeout: float = 30.0,
                    headers: dict | None = None) -> dict:
    """Call an event over Gradio's HTTP queue directly (as a hand-written client could, private
    events included). Returns the final message: {'success': bool, 'output': {...}}."""
    import httpx
    sh = secrets.token_hex(8)
    with httpx.Client(timeout=timeout, headers=headers) as c:
        r = c.post(f"{base}/gradio_api/queue/join",
                   json={"data": data, "fn_index": fn_index, "session_hash": sh,
                         "event_data": None, "trigger_id": None})
        if r.status_code != 200:
            return {"success": False, "status_code": r.status_code, "text": r.text}
        with c.stream("GET", f"{base}/gradio_api/queue/data", params={"session_hash": sh}) as s:
            for line in s.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    return msg
    raise AssertionError("no process_completed message")


def fn_index_of(base: str, api_name: str) -> int:
    import httpx
    cfg = httpx.get(f"{base}/config", timeout=30).json()
    for dep in cfg["dependencies"]:
        if dep.get("api_name") == api_name:
            return dep["id"]
    raise KeyError(api_name)


def start_server_process(port: int, env: dict, log_path: Path, *args) -> subprocess.Popen:
    """python -m turing_test serve on 127.0.0.1:port, waiting until it answers."""
    import httpx
    full_env = {**os.environ, **env, "GRADIO_ANALYTICS_ENABLED": "False",
                "PYTHONUNBUFFERED": "1"}
    log = open(log_path, "ab")
    proc = subprocess.Popen([sys.executable, "-m", "turing_test", "serve", "--host", "127.0.0.1",
                             "--port", str(port), *args], cwd=REPO, env=full_env,
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/config", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise AssertionError(f"server did not start: {log_path.read_text()[-3000:]}")


def copy_db(src: Path, dst: Path) -> str:
    shutil.copyfile(src, dst)
    return f"sqlite:///{dst}"
