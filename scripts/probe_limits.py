#!/usr/bin/env python
"""Hostile and heavy requests against the web app, with the time and the server memory each costs.

    python scripts/probe_limits.py                    # starts `python app.py` on a free port
    python scripts/probe_limits.py --json docs/results/probe_limits.json

The app runs with the repository's weights and an upload limit of 100 MB. Each probe is sent
through gradio_client; the server's RSS is sampled every 20 ms while it runs, and the script prints
per probe: seconds, the server's peak RSS above its level before the probe, its RSS afterwards,
and the first line of the answer (a result, or the message of the refusal). The probes are those
of issue 18's table: zip bombs (an honest one, the same one twice, members whose headers lie),
a TIFF of 40,000 pages, /variations n=8 at 1024 px on a 40 MP photo, a truncated PNG whose header
says 40 MP, /compare with one model 20 times, six 40 MP jobs at once on different endpoints.
"""
from __future__ import annotations

import argparse
import io
import json
import struct
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Sampler:
    """The peak RSS of a process while a block runs."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()

    def __enter__(self):
        self.before = rss_mb(self.pid)
        self.peak = self.before
        self.t0 = time.perf_counter()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.02)

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self._stop.set()
        self._t.join()
        time.sleep(0.3)
        self.after = rss_mb(self.pid)
        return False


def gray_png(path: Path, w: int, h: int) -> Path:
    import numpy as np
    from PIL import Image
    yy, xx = np.mgrid[0:h, 0:w]
    Image.fromarray(((xx // 64 + yy // 64) % 2 * 90 + 60).astype(np.uint8)).save(path, compress_level=9)
    return path


def zero_zip(path: Path, member_mb: int, members: int = 1) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for k in range(members):
            with zf.open(f"zeros{k}.png", "w", force_zip64=True) as m:
                for _ in range(member_mb // 16):
                    m.write(b"\0" * (16 << 20))
    return path


def lying_zip(path: Path, inflated_mb: int, members: int, declared: int = 1000) -> Path:
    """Members whose local and central headers declare `declared` bytes but which inflate to
    inflated_mb MB of zeros (a reader that trusts the header inflates them in full)."""
    import apphelpers as H
    payload = b"\0" * (inflated_mb << 20)
    one = Path(H.zip_with_lying_size(path.with_suffix(".one.zip"), "bomb.png", payload, declared))
    if members == 1:
        one.rename(path)
        return path
    src = zipfile.ZipFile(one)
    info = src.infolist()[0]
    raw = one.read_bytes()
    # copy the one member n times under other names by rebuilding the archive around its bytes
    header_len = 30 + len(info.filename) + len(info.extra)
    comp = raw[info.header_offset + header_len: info.header_offset + header_len + info.compress_size]
    out = io.BytesIO()
    central = []
    for k in range(members):
        name = f"bomb{k}.png".encode()
        off = out.tell()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, info.CRC, len(comp), declared,
                              len(name), 0) + name + comp)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, info.CRC,
                                   len(comp), declared, len(name), 0, 0, 0, 0, 0, off) + name)
    cd = out.tell()
    for c in central:
        out.write(c)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, members, members, out.tell() - cd, cd, 0))
    src.close()
    one.unlink()
    path.write_bytes(out.getvalue())
    return path


def many_page_tiff(path: Path, pages: int) -> Path:
    """A TIFF of `pages` pages of 8 x 8 gray pixels, written directly (every page's directory points
    to the same 64 bytes of pixels; Pillow's writer takes minutes for 40,000 pages)."""
    pixels_at, ifd_size = 8, 2 + 8 * 12 + 4
    first = pixels_at + 64
    out = bytearray(b"II*\0" + struct.pack("<I", first) + bytes(range(64)))
    for k in range(pages):
        nxt = first + (k + 1) * ifd_size if k + 1 < pages else 0
        entries = [(256, 3, 1, 8), (257, 3, 1, 8), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
                   (273, 4, 1, pixels_at), (278, 3, 1, 8), (279, 4, 1, 64)]
        out += struct.pack("<H", len(entries))
        for tag, typ, count, value in entries:
            out += struct.pack("<HHII", tag, typ, count, value)
        out += struct.pack("<I", nxt)
    path.write_bytes(bytes(out))
    return path


def truncated_big_png(path: Path) -> Path:
    """A PNG whose header says 7303 x 5477 (40 MP), cut to its first 691 bytes."""
    full = io.BytesIO()
    gray_png_bytes = gray_png(Path(tempfile.mkdtemp()) / "t.png", 7303, 5477).read_bytes()
    full.write(gray_png_bytes)
    path.write_bytes(full.getvalue()[:691])
    return path


def first_line(result) -> str:
    if isinstance(result, Exception):
        return "refused: " + str(result).strip().splitlines()[0][:200]
    if isinstance(result, (list, tuple)):
        for r in result:
            if isinstance(r, str) and len(r) > 20 and not r.startswith("/"):
                return "done: " + r.strip().splitlines()[0][:200]
    return "done"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--only", nargs="*", help="run the probes whose names contain these words")
    args = ap.parse_args(argv)
    import apphelpers as H
    from gradio_client import Client, handle_file

    work = Path(tempfile.mkdtemp(prefix="probe_limits_"))
    files = work / "files"
    files.mkdir()
    srv = H.AppServer(REPO / "weights", work, max_upload_mb=100)
    pid = srv.proc.pid

    def client():
        return Client(srv.url, verbose=False, analytics_enabled=False, download_files=str(work / "dl"))

    c = client()
    forty = gray_png(files / "forty.png", 7303, 5477)
    small = gray_png(files / "small.png", 400, 300)
    c.predict(handle_file(str(small)), "default", 512, 1.0, None, api_name="/colorize")

    def call(*a, api_name, cl=None):
        try:
            return (cl or c).predict(*a, api_name=api_name)
        except Exception as exc:
            return exc

    def six_at_once():
        jobs = [
            lambda cl: cl.predict(handle_file(str(forty)), "default", 1024, 1.0, None, api_name="/colorize"),
            lambda cl: cl.predict(handle_file(str(forty)), "default", 3, 1, "", 1024, 1.0, api_name="/variations"),
            lambda cl: cl.predict(handle_file(str(forty)), ["lite0-scene", "vae-gan"], 1024, api_name="/compare"),
            lambda cl: cl.predict([handle_file(str(forty))], "default", 1024, 1.0, api_name="/batch"),
            lambda cl: cl.predict(handle_file(str(forty)), "default", "[]", 1024, 1.0, None, api_name="/colorize_hints"),
            lambda cl: cl.predict(handle_file(str(forty)), "default", 100, 100, "", 1024, api_name="/suggest_colors"),
        ]
        out = [None] * len(jobs)
        clients = [client() for _ in jobs]

        def run(i):
            try:
                out[i] = jobs[i](clients[i])
            except Exception as exc:
                out[i] = exc
        ts = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        bad = [first_line(o) for o in out if isinstance(o, Exception)]
        return RuntimeError("; ".join(bad)) if bad else ["all six done: colorize, variations, compare, "
                                                         "batch, colorize_hints, suggest_colors"]

    print("making the files ...", flush=True)
    z1 = zero_zip(files / "z1.zip", 1920)
    liar = lying_zip(files / "liar.zip", 1920, 1)
    liars = lying_zip(files / "liars.zip", 1920, 40)
    pages = many_page_tiff(files / "pages.tif", 40000)
    cut = truncated_big_png(files / "cut.png")
    probes = {
        "zip with a 1.9 GB zero member": lambda: call([handle_file(str(z1))], "default", 512, 1.0,
                                                      api_name="/batch"),
        "the same zip twice": lambda: call([handle_file(str(files / "z1.zip"))] * 2, "default", 512, 1.0,
                                           api_name="/batch"),
        "member declaring 1,000 bytes, inflating to 1.9 GB": lambda: call(
            [handle_file(str(liar))], "default", 512, 1.0, api_name="/batch"),
        "40 such members": lambda: call([handle_file(str(liars))],
                                        "default", 512, 1.0, api_name="/batch"),
        "TIFF of 40,000 pages of 8 x 8": lambda: call(handle_file(str(pages)),
                                                      "default", 512, 1.0, None, api_name="/colorize"),
        "/variations n=8 at 1024 px on 40 MP": lambda: call(handle_file(str(forty)), "default", 8, 1, "", 1024,
                                                            1.0, api_name="/variations"),
        "truncated 691-byte PNG claiming 40 MP": lambda: call(handle_file(str(cut)),
                                                              "default", 512, 1.0, None, api_name="/colorize"),
        "/compare with one model 20 times at 1024 px": lambda: call(handle_file(str(forty)), ["lite0-scene"] * 20,
                                                                    1024, api_name="/compare"),
        "one 40 MP photo at 1024 px": lambda: call(handle_file(str(forty)), "default", 1024, 1.0, None,
                                                   api_name="/colorize"),
        "six 40 MP jobs at once on different endpoints": six_at_once,
    }
    rows = []
    try:
        idle = rss_mb(pid)
        print(f"server idle RSS {idle:.0f} MB (after one small colorization)\n")
        print(f"{'probe':52} {'s':>6} {'peak +MB':>9} {'after +MB':>9}  answer")
        for name, fn in probes.items():
            if args.only and not any(w in name for w in args.only):
                continue
            with Sampler(pid) as s:
                result = fn()
            row = dict(probe=name, seconds=round(s.seconds, 2), peak_mb=round(s.peak - s.before),
                       after_mb=round(s.after - idle), answer=first_line(result))
            rows.append(row)
            print(f"{name:52} {row['seconds']:6.1f} {row['peak_mb']:9.0f} {row['after_mb']:9.0f}  {row['answer']}",
                  flush=True)
    finally:
        srv.stop()
    if args.json:
        args.json.write_text(json.dumps(dict(idle_mb=round(idle), rows=rows), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
