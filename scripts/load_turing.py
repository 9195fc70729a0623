#!/usr/bin/env python
"""Load test of the Turing test: many concurrent simulated participants against the live app.

    python scripts/load_turing.py                       # 100 participants x 20 votes, own server
    python scripts/load_turing.py --participants 150 --votes 20 --think-ms 1000-2000
    python scripts/load_turing.py --url http://127.0.0.1:7860/ --db sqlite:///data/turing.db
    python scripts/load_turing.py --url http://127.0.0.1:8080/ --db "$TURING_DB_URL"  # replicas

With --url behind the replicas' proxy (scripts/serve_replicas.sh) each participant has its own
sticky cookie, so the proxy spreads them over the replicas; the report counts the acknowledged
votes per replica (the proxy's X-Turing-Replica header). A participant whose replica dies
reconnects (the proxy sends it to another), resumes with its secret and sends its vote again
with the same token, which the store counts once.

Without --url it builds a pool in a temporary SQLite database (synthetic photos, or --photos,
colorized by --models) and starts the app on a free port of 127.0.0.1 (``--app app.py``: the
whole app; default: ``python -m turing_test serve``). Each participant is its own gradio_client
Client: turing_start, then --votes turing_vote calls, each after a think time (a participant
must look at the photo and decide: --think-ms, uniform range; 0 for back-to-back calls). The
participants are spread over --processes client processes (threads in each), so that the
clients' own turns on Python's interpreter lock do not pass for server time.

With --colorize-mp MP (and --app app.py, the whole app) --colorize-clients clients keep the
Colorize tab busy meanwhile: each sends /colorize of a synthetic photo of MP megapixels again and
again until the participants are done, to show that votes do not wait behind colorization work.

Then it checks the database: every acknowledged vote is there exactly once, and there is no
vote that was not acknowledged. It prints votes per second and the time from sending a vote to
having the next image (the file downloaded), p50 / p95 / p99, the CPU time the server and the
clients used per vote, and exits 1 if a check failed.
Only loopback addresses are allowed as targets.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def synthetic_photos(folder: Path, n: int, size=320, seed=0) -> list[Path]:
    import numpy as np
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = []
    for i in range(n):
        c = rng.uniform(20, 235, size=(4, 3))
        img = (c[0] * (1 - xx[..., None]) * (1 - yy[..., None]) + c[1] * xx[..., None] * (1 - yy[..., None])
               + c[2] * yy[..., None] * (1 - xx[..., None]) + c[3] * xx[..., None] * yy[..., None])
        img += rng.normal(0, 8, img.shape)
        p = folder / f"load_{i:03d}.jpg"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(p, quality=92)
        out.append(p)
    return out


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used so far (Linux /proc), or None."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def percentile(values, q):
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def start_server(args, db_url: str, port: int, workdir: Path) -> subprocess.Popen:
    import httpx
    env = {**os.environ, "TURING_DB_URL": db_url, "TURING_DEMO": "0",
           "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port), "TURING_STIMULUS_CACHE": str(workdir / "cache")}
    if args.app:
        cmd = [sys.executable, args.app]
    else:
        cmd = [sys.executable, "-m", "turing_test", "serve", "--host", "127.0.0.1", "--port",
               str(port), "--no-demo"]
    log = open(workdir / "server.log", "ab")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    t0 = time.time()
    while time.time() - t0 < 120:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited; see {workdir / 'server.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/config", timeout=2).status_code == 200:
                print(f"server up after {time.time() - t0:.1f} s: {' '.join(cmd[1:])}")
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not start within 120 s")


def synthetic_big_photo(path: Path, megapixels: float, seed: int = 0) -> Path:
    """A gray 4:3 photo of about `megapixels` MP with texture (PNG)."""
    import numpy as np
    from PIL import Image
    w = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    h = int(megapixels * 1e6 / w)
    rng = np.random.default_rng(seed)
    small = rng.integers(30, 220, (h // 8 + 1, w // 8 + 1), dtype=np.uint8)
    img = Image.fromarray(small).resize((w, h), Image.BILINEAR)
    img.save(path)
    return path


def colorize_loop(base: str, photo: Path, size: int, stop: threading.Event, out: dict,
                  lock: threading.Lock):
    """One client that colorizes `photo` again and again until `stop` is set."""
    import gradio_client
    try:
        c = gradio_client.Client(base, verbose=False, ssl_verify=False)
        while not stop.is_set():
            t = time.perf_counter()
            c.predict(gradio_client.handle_file(str(photo)), "default", size, 1.0, None,
                      api_name="/colorize")
            with lock:
                out["colorize"].append(time.perf_counter() - t)
        c.close()
    except Exception as exc:
        with lock:
            out["errors"].append(f"colorize client: {exc!r}")


class Session:
    """One simulated participant's connection: a gradio_client Client with its own sticky
    cookie (a proxy in front of replicas keeps all its requests on one replica), the replica
    that answers it (the proxy's X-Turing-Replica header, or "direct"), and the resume secret
    its browser would keep."""

    def __init__(self, base: str, key: str):
        self.base, self.key = base, key
        # each participant from a network of its own (the survey limits new sessions per
        # address; the app and the replicas' proxy believe X-Forwarded-For from loopback)
        net = int(hashlib.sha256(key.encode()).hexdigest()[:6], 16)
        self.headers = {"Cookie": f"turing_replica={key}",
                        "X-Forwarded-For": f"10.{net >> 16 & 255}.{net >> 8 & 255}.{net & 255}"}
        self.client = None
        self.replica = "direct"
        self.secret = ""

    def connect(self):
        import gradio_client
        import httpx
        if self.client is not None:
            try:
                self.client.close()
            except Exception:
                pass
        # plain HTTP on loopback: ssl_verify=False spares gradio_client loading the CA bundle
        # for each of the several httpx clients it makes per call (tens of ms of CPU each)
        self.client = gradio_client.Client(self.base, verbose=False, ssl_verify=False,
                                           headers=self.headers)
        r = httpx.get(self.base + "config", headers=self.headers, timeout=10)
        self.replica = r.headers.get("x-turing-replica", "direct")

    def predict(self, *args, api_name):
        return self.client.predict(*args, api_name=api_name)


def _is_app_error(exc: Exception) -> bool:
    """The server answered with an error of the app (not a lost connection)."""
    from gradio_client.exceptions import AppError
    return isinstance(exc, AppError)


def _resume(sess: Session, ext: str, tries: int = 5):
    """The participant's replica is gone: connect again (the proxy picks another replica) and
    continue with the resume secret, as a browser does after a reload."""
    last = None
    for i in range(tries):
        time.sleep(0.5 * (i + 1))
        try:
            sess.connect()
            return sess.predict(ext, "", sess.secret, api_name="/turing_start")
        except Exception as exc:  # the proxy may not have noticed yet
            last = exc
            if _is_app_error(exc):
                raise
    raise RuntimeError(f"could not resume after {tries} tries: {last!r}")


def participant(job: dict, k: int, delay: float, seed: int, out: dict, lock: threading.Lock):
    """One simulated participant: its own gradio_client Client; turing_start, then the votes.
    If its connection is lost (a replica killed), it resumes elsewhere with its secret and sends
    the vote again with the same token: the store counts a replayed vote once."""
    think = job["think"]
    prng = random.Random(seed)
    ext = f"load_{job['run_id']}_{k}"
    try:
        time.sleep(max(0.0, job["t0"] + delay - time.time()))
        sess = Session(job["base"], f"{ext}_{seed:.6f}")
        sess.connect()
        t = time.perf_counter()
        img, _, _, end, token, _ = sess.predict(ext, api_name="/turing_start")
        sess.secret = sess.predict(api_name="/turing_secret")
        with lock:
            out["lat_start"].append(time.perf_counter() - t)
        n = 0
        while not end and n < job["votes"] and time.time() < job["deadline"]:
            if think[1] > 0:
                time.sleep(prng.uniform(think[0], think[1]) / 1000.0)
            voted = token
            answer = prng.choice(["real", "fake"])
            sent = time.time()
            t = time.perf_counter()
            try:
                img, _, _, end, new_token, _ = sess.predict(answer, token, api_name="/turing_vote")
            except Exception as exc:
                # the connection broke, or the proxy already sent the request to a replica that
                # does not hold this session ("no session"): continue as a reloaded page does
                lost_session = _is_app_error(exc) and "no session" in str(exc)
                if (_is_app_error(exc) and not lost_session) or not sess.secret:
                    raise
                lost = sess.replica
                _resume(sess, ext)
                img, _, _, end, new_token, _ = sess.predict(answer, voted, api_name="/turing_vote")
                with lock:
                    out["moved"].append((k, lost, sess.replica))
            dt = time.perf_counter() - t
            if not end and (not img or not Path(img).is_file()):
                raise RuntimeError("no next image")
            with lock:
                out["lat_vote"].append(dt)
                out["trace"].append((k, sent - job["t0"], dt))
                out["acked"].append((ext, voted))
                out["replica"].append(sess.replica)
            token = new_token
            n += 1
        sess.client.close()
    except Exception as exc:
        with lock:
            out["errors"].append(f"participant {k}: {exc!r}")


def _lower_priority(nice: int) -> None:
    if nice > 0 and hasattr(os, "nice"):
        os.nice(nice)


def run_participants(job: dict, share: list) -> dict:
    """Run a share of the participants, one thread each, in this process; what they measured."""
    out = {"lat_vote": [], "lat_start": [], "acked": [], "errors": [], "trace": [], "replica": [],
           "moved": []}
    lock = threading.Lock()
    cpu0 = time.process_time()
    threads = [threading.Thread(target=participant, args=(job, k, delay, seed, out, lock), daemon=True)
               for k, delay, seed in share]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, job["deadline"] - time.time()))
    with lock:
        out["cpu_s"] = time.process_time() - cpu0
        return {k: list(v) if isinstance(v, list) else v for k, v in out.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--participants", type=int, default=100)
    ap.add_argument("--votes", type=int, default=20, help="votes per participant")
    ap.add_argument("--think-ms", default="1000-2000",
                    help="think time before each vote, uniform range in ms (default 1000-2000; 0: none)")
    ap.add_argument("--ramp-s", type=float, default=10.0, help="participants arrive over this many seconds")
    ap.add_argument("--url", default=None, help="an app already running on 127.0.0.1 (needs --db)")
    ap.add_argument("--db", default=None, help="its database URL (with --url), or where to build the pool")
    ap.add_argument("--app", default=None, help="serve this app file (e.g. app.py) instead of turing_test serve")
    ap.add_argument("--photos", default=None, help="photo folder for the pool (default: synthetic photos)")
    ap.add_argument("--models", default="default", help="models for the pool (default: default)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--timeout-s", type=float, default=900, help="give up after this long")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--processes", type=int, default=4,
                    help="client processes the participants are spread over (threads in each); "
                         "with one, 100 client threads take turns on one interpreter lock and "
                         "their own waiting shows up in the measured times")
    ap.add_argument("--client-nice", type=int, default=10,
                    help="the simulated participants run at this lower CPU priority (nice), so "
                         "that on a small machine the server is not slowed by its own load "
                         "generator (real participants' browsers run elsewhere); 0: same priority")
    ap.add_argument("--colorize-mp", type=float, default=0,
                    help="meanwhile colorize a synthetic photo of this many megapixels again and "
                         "again (needs --app app.py or a --url of the whole app)")
    ap.add_argument("--colorize-clients", type=int, default=2, help="clients doing that (default 2)")
    ap.add_argument("--colorize-size", type=int, default=512, help="their working resolution")
    ap.add_argument("--latency-csv", default=None,
                    help="write one row per vote (participant, seconds since the start, latency ms)")
    args = ap.parse_args(argv)

    from sqlalchemy import create_engine, text

    rng = random.Random(args.seed)
    think = [float(x) for x in str(args.think_ms).split("-")] if str(args.think_ms) != "0" else [0.0, 0.0]
    if len(think) == 1:
        think = think * 2
    proc = None
    tmp = Path(tempfile.mkdtemp(prefix="turing_load_"))
    if args.url:
        host = urlparse(args.url).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("only loopback targets (127.0.0.1) are allowed")
        if not args.db:
            raise SystemExit("--url needs --db (the app's database URL) for the checks")
        base, db_url = args.url.rstrip("/") + "/", args.db
    else:
        from turing_test.pool import build_pool
        from turing_test.store import Store
        db_url = args.db or f"sqlite:///{tmp / 'load.db'}"
        n_sources = args.votes + 4
        photos = args.photos or synthetic_photos(tmp / "photos", n_sources, seed=args.seed)
        from turing_test.survey import SurveyError
        t0 = time.time()
        try:
            rep = build_pool(Store(db_url), photos, args.models.split(","), survey=f"load-{os.getpid()}",
                             size=args.size, practice=0, attention=max(1, n_sources // 10),
                             seed=args.seed, settings=dict(max_trials=args.votes, n_practice=0,
                                                           n_attention=1, exposure_ms=1000))
        except SurveyError as exc:
            raise SystemExit(f"cannot build the pool: {exc}\n(--models names models whose weights "
                             "are here; COLORIZER_WEIGHTS_DIR points to another weights folder)")
        print(f"pool built in {time.time() - t0:.1f} s: {rep.text().splitlines()[0]}")
        port = free_port()
        proc = start_server(args, db_url, port, tmp)
        base = f"http://127.0.0.1:{port}/"

    deadline = time.time() + args.timeout_s
    run_id = f"{os.getpid()}_{int(time.time())}"
    plan = [(k, args.ramp_s * k / max(1, args.participants), rng.random())
            for k in range(args.participants)]
    n_proc = max(1, min(args.processes, args.participants))
    shares = [plan[i::n_proc] for i in range(n_proc)]
    job = dict(base=base, votes=args.votes, think=think, run_id=run_id, deadline=deadline)
    cpu0 = process_cpu_s(proc.pid) if proc is not None else None
    t_start = time.time()
    job["t0"] = t_start
    busy = {"colorize": [], "errors": []}
    stop_colorizing = threading.Event()
    colorizers = []
    big = synthetic_big_photo(tmp / "big.png", args.colorize_mp, args.seed) if args.colorize_mp > 0 else None

    def start_colorizing():  # threads: only once the client processes are forked
        blk = threading.Lock()
        for _ in range(args.colorize_clients if big else 0):
            t = threading.Thread(target=colorize_loop, daemon=True,
                                 args=(base, big, args.colorize_size, stop_colorizing, busy, blk))
            t.start()
            colorizers.append(t)
    if n_proc == 1:
        _lower_priority(args.client_nice)  # the server was started before: it keeps its priority
        start_colorizing()
        results = [run_participants(job, shares[0])]
    else:
        import multiprocessing as mp
        ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ctx.Pool(n_proc, initializer=_lower_priority, initargs=(args.client_nice,)) as pool:
            start_colorizing()
            results = pool.starmap(run_participants, [(job, share) for share in shares])
    wall = time.time() - t_start
    stop_colorizing.set()
    for t in colorizers:
        t.join(300)
    lat_vote = [x for r in results for x in r["lat_vote"]]
    lat_start = [x for r in results for x in r["lat_start"]]
    acked = [tuple(x) for r in results for x in r["acked"]]
    errors = [x for r in results for x in r["errors"]] + busy["errors"]
    trace = [x for r in results for x in r["trace"]]
    replicas = [x for r in results for x in r["replica"]]
    moved = [tuple(x) for r in results for x in r["moved"]]
    client_cpu = sum(r["cpu_s"] for r in results)

    ok = True
    cpu1 = process_cpu_s(proc.pid) if proc is not None else None
    server_cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    try:
        eng = create_engine(db_url)
        with eng.connect() as c:
            rows = c.execute(text(
                "SELECT p.external_id, a.token FROM votes v JOIN participants p "
                "ON p.id = v.participant_id JOIN assignments a ON a.id = v.assignment_id "
                "WHERE p.external_id LIKE :pfx"),
                {"pfx": f"load_{run_id}_%"}).all()
            # assignments per photo of the survey(s) these participants took (least-assigned
            # first: all within 1 of each other when every photo can go to everyone)
            per_photo = [int(n) for (n,) in c.execute(text(
                "SELECT count(a.id) FROM stimuli s LEFT JOIN assignments a ON a.stimulus_id = s.id "
                "WHERE s.survey_id IN (SELECT survey_id FROM participants WHERE external_id LIKE :pfx) "
                "GROUP BY s.id"), {"pfx": f"load_{run_id}_%"})]
        eng.dispose()
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    stored = [(a, b) for a, b in rows]
    dup = len(stored) - len(set(stored))
    missing = set(acked) - set(stored)
    extra = set(stored) - set(acked)
    expected = args.participants * args.votes
    print(f"\nparticipants: {args.participants}, votes each: {args.votes}, think time: "
          f"{args.think_ms} ms, ramp: {args.ramp_s:.0f} s, wall time: {wall:.1f} s")
    print(f"acknowledged votes: {len(acked)} of {expected}; in the database: {len(stored)}; "
          f"missing: {len(missing)}; stored twice: {dup}; not acknowledged but stored: {len(extra)}")
    if errors:
        ok = False
        print(f"errors ({len(errors)}):", *errors[:10], sep="\n  ")
    if missing or dup or extra or len(acked) != expected:
        ok = False
    active = wall - args.ramp_s * (args.participants - 1) / max(1, args.participants)
    print(f"throughput: {len(acked) / wall:.1f} votes/s over the whole run "
          f"({len(acked) / max(1e-9, active):.1f} votes/s once all had arrived)")
    ms = [x * 1000 for x in lat_vote]
    if args.latency_csv:
        with open(args.latency_csv, "w") as f:
            f.write("participant,sent_s,latency_ms\n")
            f.writelines(f"{k},{t:.3f},{1000 * d:.1f}\n" for k, t, d in sorted(trace, key=lambda r: r[1]))
    print(f"vote -> next image (ms): p50 {percentile(ms, 50):.0f}, p95 {percentile(ms, 95):.0f}, "
          f"p99 {percentile(ms, 99):.0f}, max {max(ms) if ms else float('nan'):.0f}, "
          f"mean {statistics.fmean(ms) if ms else float('nan'):.0f}")
    if server_cpu is not None and acked:
        print(f"CPU time during the run: server {server_cpu:.1f} s ({1000 * server_cpu / len(acked):.1f} ms "
              f"per vote, the starts included), simulated participants {client_cpu:.1f} s "
              f"({1000 * client_cpu / len(acked):.1f} ms per vote); this machine has {os.cpu_count()} cores")
    if args.colorize_mp > 0:
        cz = busy["colorize"]
        print(f"meanwhile: {len(cz)} colorizations of a {args.colorize_mp:g} MP photo at "
              f"{args.colorize_size} px by {args.colorize_clients} clients, median "
              f"{statistics.median(cz) if cz else float('nan'):.1f} s each")
    if per_photo:
        print(f"assignments per photo: min {min(per_photo)}, max {max(per_photo)} over "
              f"{len(per_photo)} photos (spread {max(per_photo) - min(per_photo)})")
    counts = {}
    for r in replicas:
        counts[r] = counts.get(r, 0) + 1
    if set(counts) != {"direct"}:
        print("acknowledged votes per replica: " + ", ".join(
            f"{r} {n}" for r, n in sorted(counts.items())))
    if moved:
        print(f"participants moved to another replica after losing theirs: {len(moved)} ("
              + ", ".join(f"{a} -> {b}" for a, b in sorted({(a, b) for _, a, b in moved})) + ")")
    sm = [x * 1000 for x in lat_start]
    print(f"start -> first image (ms): p50 {percentile(sm, 50):.0f}, p95 {percentile(sm, 95):.0f}")
    p95 = percentile(ms, 95)
    print(f"target p95 < 300 ms: {'met' if p95 < 300 else 'NOT met'}; database check: "
          f"{'every acknowledged vote exactly once' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
