"""Bounded cost per request, through the real server (`python app.py`, gradio_client):
the cost budget refuses work before it starts and says what to lower, the colorization events
share one queue group whatever their endpoint, and the server's memory comes back after a
40 MP job and after a refused zip bomb.

Two servers: one with small budgets (so that small photos reach them quickly) and one with the
default budgets and one colorization at a time.
"""
from __future__ import annotations

import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

import apphelpers as H  # noqa: E402

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("limits_inputs")


def _client(srv) -> Client:
    return Client(srv.url, verbose=False, analytics_enabled=False,
                  download_files=str(srv.log_path.parent / "downloads"))


@pytest.fixture(scope="module")
def small_budget(tmp_path_factory, tiny_checkpoint):
    work = tmp_path_factory.mktemp("app_budget")
    srv = H.AppServer(H.weights_with(tiny_checkpoint, work / "weights"), work, extra_env={
        "COLORIZER_MAX_REQUEST_UNITS": "5", "COLORIZER_MAX_BATCH_UNITS": "8"})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def one_at_a_time(tmp_path_factory, tiny_checkpoint):
    work = tmp_path_factory.mktemp("app_serial")
    srv = H.AppServer(H.weights_with(tiny_checkpoint, work / "weights"), work, max_upload_mb=5,
                      extra_env={"COLORIZER_CONCURRENCY": "1"})
    yield srv
    srv.stop()


def _gray(path: Path, w: int, h: int, seed: int = 0) -> Path:
    """A gray photo of w x h with some structure, as a PNG that compresses well."""
    yy, xx = np.mgrid[0:h, 0:w]
    g = ((xx // 64 + yy // 64 + seed) % 2 * 90 + 60 + (xx * 7 // max(1, w)) * 10).astype(np.uint8)
    Image.fromarray(g).save(path, compress_level=9)
    return path


def _state(job) -> str:
    """'waiting' (sent, or in the queue), 'running' or 'done'."""
    if job.done():
        return "done"
    code = job.status().code.name
    return "running" if code in ("PROCESSING", "PROGRESS", "ITERATING", "LOG") else "waiting"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


# --- the budget ------------------------------------------------------------------------------------

def test_variations_past_the_budget_are_refused_with_how_many_would_fit(small_budget, files):
    # 1600 x 1200 at 128 px: 1.92 + 20 x 0.0123 = 2.17 units; 4 variations 8.7 > 5; 2 fit
    photo = _gray(files / "mid.png", 1600, 1200)
    c = _client(small_budget)
    with pytest.raises(Exception) as info:
        c.predict(handle_file(str(photo)), "default", 4, 1, "", 128, 1.0, api_name="/variations")
    msg = str(info.value)
    assert "limit is 5 per request" in msg and "at most 2 variations" in msg, msg
    gallery, message, pngs = c.predict(handle_file(str(photo)), "default", 2, 1, "", 128, 1.0,
                                          api_name="/variations")
    assert len(pngs) == 2


def test_a_photo_too_big_for_the_budget_is_refused_before_it_is_decoded(small_budget, files):
    photo = _gray(files / "big.png", 3000, 2000)  # 6 + 0.25 units > 5
    c = _client(small_budget)
    with pytest.raises(Exception) as info:
        c.predict(handle_file(str(photo)), "default", 128, 1.0, None, api_name="/colorize")
    msg = str(info.value)
    assert "use a photo of at most" in msg and "or a lower working resolution" in msg, msg
    assert "Traceback" not in msg
    assert "colorized big" not in small_budget.log()  # nothing was colorized


def test_compare_past_the_budget_says_how_many_models_fit(small_budget, files):
    photo = _gray(files / "cmp.png", 2000, 1500)  # 3.25 units per model: one fits, two do not
    c = _client(small_budget)
    with pytest.raises(Exception, match="ask for at most 1 model for this photo"):
        c.predict(handle_file(str(photo)), ["lite0-scene", "tiny2"], 128, api_name="/compare")
    gallery, _ = c.predict(handle_file(str(photo)), ["tiny2"], 128, api_name="/compare")
    assert len(gallery) == 2  # the input and one model


def test_batch_files_past_the_budget_are_refused_up_front_and_zip_members_once_it_is_spent(small_budget, files):
    photos = [_gray(files / f"b{i}.png", 1600, 1200, seed=i) for i in range(4)]  # 2.17 units each
    c = _client(small_budget)
    with pytest.raises(Exception) as info:
        c.predict([handle_file(str(p)) for p in photos], "default", 128, 1.0, api_name="/batch")
    msg = str(info.value)
    assert "these 4 photos would cost 9 units" in msg and "send at most 3 of them" in msg, msg
    zpath = files / "members.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in photos:
            zf.write(p, p.name)
    out, summary = c.predict([handle_file(str(zpath))], "default", 128, 1.0, api_name="/batch")
    assert "**3 of 4**" in summary and "the batch's budget of 8 units is spent" in summary
    with zipfile.ZipFile(out) as zf:
        assert len([n for n in zf.namelist() if n.endswith(".png")]) == 3


# --- one queue group for every colorization -----------------------------------------------------------

def test_colorization_events_on_different_endpoints_wait_for_each_other(one_at_a_time, files):
    """COLORIZER_CONCURRENCY=1: a /variations request sent while a 40 MP /colorize runs starts
    only once that one is done (the endpoints share the queue group)."""
    big = _gray(files / "forty.png", 7303, 5477)
    small = _gray(files / "small.png", 200, 150)
    a, b = _client(one_at_a_time), _client(one_at_a_time)
    first = a.submit(handle_file(str(big)), "default", 256, 1.0, None, api_name="/colorize")
    t0 = time.time()
    while _state(first) == "waiting" and time.time() - t0 < 60:
        time.sleep(0.02)
    assert _state(first) == "running"
    second = b.submit(handle_file(str(small)), "default", 2, 1, "", 256, 1.0, api_name="/variations")
    seen_waiting = False
    while _state(second) == "waiting":
        seen_waiting |= second.status().code.name == "IN_QUEUE"
        time.sleep(0.02)
    # client a may learn of the first job's end a moment after client b learns of the second's
    # start (two connections): allow it 1 s, far less than the 40 MP job has left if the two
    # had run side by side
    told = time.time()
    while not (first.done() or first.status().code.name == "FINISHED") and time.time() - told < 1.0:
        time.sleep(0.02)
    started_after_first = first.done() or first.status().code.name == "FINISHED"  # told, still downloading
    second.result(timeout=120)
    first.result(timeout=120)
    assert seen_waiting and started_after_first


# --- memory comes back ---------------------------------------------------------------------------------

def test_memory_returns_after_a_40_mp_job_and_after_a_refused_zip_bomb(one_at_a_time, files):
    srv = one_at_a_time
    c = _client(srv)
    warm = _gray(files / "warm.png", 400, 300)
    c.predict(handle_file(str(warm)), "default", 512, 1.0, None, api_name="/colorize")
    time.sleep(0.5)
    idle = _rss_mb(srv.proc.pid)

    big = _gray(files / "forty2.png", 7303, 5477)
    png, _, message, = c.predict(handle_file(str(big)), "default", 1024, 1.0, None, api_name="/colorize")[:3]
    assert "40.0 MP" in message
    time.sleep(0.5)
    after_job = _rss_mb(srv.proc.pid)
    _, _, pngs = c.predict(handle_file(str(big)), "default", 3, 1, "", 1024, 1.0, api_name="/variations")
    assert len(pngs) == 3
    time.sleep(0.5)
    after_variations = _rss_mb(srv.proc.pid)

    bomb = files / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("zeros.png", "w", force_zip64=True) as m:
            chunk = b"\0" * (16 << 20)
            for _ in range(40):  # 640 MB of zeros, about 0.6 MB zipped
                m.write(chunk)
    assert bomb.stat().st_size < 5 << 20
    with pytest.raises(Exception, match="no photos found|none of the photos"):
        c.predict([handle_file(str(bomb))], "default", 512, 1.0, api_name="/batch")
    time.sleep(0.5)
    after_bomb = _rss_mb(srv.proc.pid)
    print(f"server RSS: idle {idle:.0f} MB, after a 40 MP job {after_job:.0f} MB, after 3 "
          f"variations of it {after_variations:.0f} MB, after a zip bomb {after_bomb:.0f} MB")
    # the issue asks for 300 MB; without colorizer/memory.py the first job alone leaves about
    # 200 MB held, so the bound is half of that
    assert after_job - idle < 150, (idle, after_job)
    assert after_variations - idle < 150, (idle, after_variations)
    assert after_bomb - idle < 150, (idle, after_bomb)
    assert srv.alive()
