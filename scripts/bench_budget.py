#!/usr/bin/env python
"""Calibrate the web app's cost model (colorizer/budget.py): time and peak memory of one
colorization as the photo's megapixels and the working resolution change.

    python scripts/bench_budget.py                     # the default model, 4 sizes x 3 resolutions
    python scripts/bench_budget.py --json docs/results/bench_budget.json

Each measurement runs in a fresh process (so that its peak RSS is its own): the model is loaded,
a synthetic gray photo is made, then one output is colorized the way the app does it
(colorizer.ui.colorize_array) and the seconds and the peak RSS above the process's level before
the job are printed, beside the job's cost in budget units, with seconds and MB per unit.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
import numpy as np
sys.path.insert(0, {repo!r})
from colorizer import ui, budget
mp, size, model = {mp}, {size}, {model!r}
c = ui.get_model(model)
w = int((mp * 1e6 * 4 / 3) ** 0.5); h = int(mp * 1e6 / w)
rng = np.random.default_rng(0)
small = rng.integers(0, 255, (h // 16 + 1, w // 16 + 1), dtype=np.uint8)
gray = np.kron(small, np.ones((16, 16), np.uint8))[:h, :w]
arr = np.repeat(gray[..., None], 3, axis=2)
ui.colorize_array(c, arr[:256, :256], size)  # warm the model at this resolution
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
ui.colorize_array(c, arr, size)
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(megapixels=w * h / 1e6, width=w, height=h, input_size=size, seconds=dt,
                      peak_mb=(peak - before) / 1024, units=budget.output_cost(w, h, size))))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="registry name (default: the default model)")
    ap.add_argument("--megapixels", type=float, nargs="+", default=[1, 4, 12, 40])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--json", type=Path, help="write the rows here")
    args = ap.parse_args(argv)
    rows = []
    print(f"{'MP':>6} {'size':>5} {'units':>7} {'s':>7} {'peak MB':>8} {'s/unit':>7} {'MB/unit':>8}")
    for mp in args.megapixels:
        for size in args.sizes:
            code = CHILD.format(repo=str(REPO), mp=mp, size=size, model=args.model)
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if r.returncode:
                print(r.stderr[-2000:], file=sys.stderr)
                return 1
            row = json.loads(r.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{row['megapixels']:6.1f} {size:5d} {row['units']:7.1f} {row['seconds']:7.2f} "
                  f"{row['peak_mb']:8.0f} {row['seconds'] / row['units']:7.3f} "
                  f"{row['peak_mb'] / row['units']:8.1f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
