"""Time the web app from click to result, through its API, on a 1 MP and a 12 MP photo.

    python scripts/bench_app.py                         # the models in weights/ (default model)
    python scripts/bench_app.py --checkpoint runs/lite0_cls.pt --repeats 5

Starts the real server (`python app.py`) on a free port of 127.0.0.1, uploads each photo once
to measure the upload alone, then calls `/colorize` with gradio_client `--repeats` times after
one warm-up call. In the browser a photo is uploaded when it is dropped, before Colorize is
pressed, so "click to result" is the client's whole call less the upload; the server's own time
(from the app's message) is printed beside it. Color photos also get the `/metrics` step,
timed on its own (the result is already on screen while it runs). Photos: scikit-image's
astronaut, upscaled (colorizer.bench.test_photo), as gray JPEGs like old scans, and in color.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_photos(folder: Path, megapixels: list[float]) -> list[tuple[str, Path, bool]]:
    from PIL import Image
    from colorizer.bench import test_photo

    out = []
    for mp in megapixels:
        rgb = test_photo(mp)
        h, w = rgb.shape[:2]
        gray = folder / f"gray_{mp:g}mp.jpg"
        Image.fromarray(rgb).convert("L").save(gray, quality=90)
        color = folder / f"color_{mp:g}mp.jpg"
        Image.fromarray(rgb).save(color, quality=90)
        out.append((f"{mp:g} MP gray ({w} x {h})", gray, False))
        out.append((f"{mp:g} MP color ({w} x {h})", color, True))
    return out


def start_server(weights_dir: Path, work: Path) -> tuple[subprocess.Popen, str, float, Path]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
               GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1",
               COLORIZER_WEIGHTS_DIR=str(weights_dir), COLORIZER_APP_CACHE=str(work / "cache"),
               GRADIO_TEMP_DIR=str(work / "gradio"), PYTHONUNBUFFERED="1",
               TURING_DB_URL=f"sqlite:///{work / 'turing.db'}", TURING_DEMO="0")
    log = work / "app.log"
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(REPO / "app.py")], cwd=str(REPO), env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"app.py exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "config", timeout=2):
                return proc, url, time.perf_counter() - t, log
        except OSError:
            if time.perf_counter() - t > 120:
                proc.kill()
                raise SystemExit(f"app.py did not answer in 120 s:\n{log.read_text()}")
            time.sleep(0.2)


def upload_seconds(url: str, path: Path) -> float:
    import httpx
    with open(path, "rb") as f:
        t = time.perf_counter()
        r = httpx.post(url + "gradio_api/upload", files={"files": (path.name, f)}, timeout=300)
        dt = time.perf_counter() - t
    r.raise_for_status()
    return dt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights-dir", type=Path, default=None,
                    help="weights folder the app uses (default: $COLORIZER_WEIGHTS_DIR or weights/)")
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="serve this checkpoint as the default model (copied into a temporary "
                         "weights folder)")
    ap.add_argument("--model", default="default")
    ap.add_argument("--megapixels", type=float, nargs="+", default=[1.0, 12.0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    from gradio_client import Client, handle_file
    from colorizer.registry import DEFAULT_MODEL, REGISTRY

    work = Path(tempfile.mkdtemp(prefix="bench_app_"))
    try:
        if args.checkpoint:
            wdir = work / "weights"
            wdir.mkdir()
            shutil.copyfile(args.checkpoint, wdir / REGISTRY[DEFAULT_MODEL].weights)
        else:
            wdir = args.weights_dir or Path(os.environ.get("COLORIZER_WEIGHTS_DIR", REPO / "weights"))
        photos = make_photos(work, args.megapixels)
        proc, url, startup, log = start_server(wdir, work)
        try:
            loaded = [ln.split(" INFO ", 1)[-1] for ln in log.read_text().splitlines() if "loaded" in ln]
            print(f"server: {url}  answered after {startup:.1f} s; " + " | ".join(loaded))
            print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start; "
                  f"{args.repeats} timed calls after 1 warm-up, median [min - max] in seconds\n")
            client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
            head = f"{'photo':<28} {'upload':>7} {'click to result':>24} {'server':>7} {'metrics':>8}"
            print(head)
            print("-" * len(head))
            for label, path, color in photos:
                up = upload_seconds(url, path)
                totals, server, metric_s = [], [], []
                for i in range(args.repeats + 1):
                    t = time.perf_counter()
                    _, _, message = client.predict(handle_file(str(path)), args.model,
                                                   api_name="/colorize")
                    total = time.perf_counter() - t
                    tm = time.perf_counter()
                    if color:
                        client.predict(api_name="/metrics")
                    metric = time.perf_counter() - tm
                    if i == 0:
                        continue  # warm-up
                    totals.append(total - up)
                    m = re.search(r"in \*\*([0-9.]+) s\*\*", message)
                    server.append(float(m.group(1)) if m else float("nan"))
                    metric_s.append(metric)
                med = statistics.median(totals)
                spread = f"{med:.2f} [{min(totals):.2f} - {max(totals):.2f}]"
                mtxt = f"{statistics.median(metric_s):.2f}" if color else "-"
                print(f"{label:<28} {up:>7.2f} {spread:>24} {statistics.median(server):>7.2f} {mtxt:>8}")
            print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (other processes slow every figure)")
            print("click to result = the /colorize call less the upload (the browser uploads on drop);"
                  "\nserver = the app's own time for the request (decode, network, PNG, previews);"
                  "\nmetrics = the /metrics step for color photos, after the result is shown.")
        finally:
            proc.terminate()
            proc.wait(20)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
