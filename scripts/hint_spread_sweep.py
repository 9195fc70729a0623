"""Sweep the constants of hint spreading (colorizer/hints.py) with K hints taken from the truth.

    python scripts/hint_spread_sweep.py ../shared/data/val/imagenette_val1000 --limit 200

Each setting changes one constant from its shipped value (fall-off SPREAD_SIGMA, EDGE_COST,
GLOBAL_RIDGE) and runs `python -m colorizer evaluate DIR --hints K --limit N`; it prints the
setting with the mean dE2000 and PSNR. Choose on validation photos, not on the test sets.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--model", default="default")
    ap.add_argument("--hints", type=int, default=10)
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--sigmas", type=float, nargs="*", default=[0.15, 0.4])
    ap.add_argument("--edge-costs", type=float, nargs="*", default=[0.15, 0.6])
    ap.add_argument("--ridges", type=float, nargs="*", default=[1.5])
    args = ap.parse_args(argv)

    import colorizer.hints as H
    from colorizer.__main__ import main as cli

    shipped = dict(SPREAD_SIGMA=H.SPREAD_SIGMA, EDGE_COST=H.EDGE_COST, GLOBAL_RIDGE=H.GLOBAL_RIDGE)
    settings = [dict(shipped)]
    settings += [{**shipped, "SPREAD_SIGMA": v} for v in args.sigmas]
    settings += [{**shipped, "EDGE_COST": v} for v in args.edge_costs]
    settings += [{**shipped, "GLOBAL_RIDGE": v} for v in args.ridges]
    out = Path(tempfile.mkdtemp(prefix="hint_sweep_")) / "scores.json"
    try:
        for st in settings:
            for k, v in st.items():
                setattr(H, k, v)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                rc = cli(["evaluate", args.dir, "--model", args.model, "--hints", str(args.hints),
                          "--limit", str(args.limit), "-q", "--json", str(out)])
            if rc:
                print(f"evaluate failed for {st}", file=sys.stderr)
                return rc
            score = next(iter(json.loads(out.read_text())["sets"].values()))
            score = score.get("mean", score)
            tag = " (shipped)" if st == shipped else ""
            print(json.dumps({**{k.lower(): v for k, v in st.items()},
                              "de2000": round(score["de2000"], 3), "psnr": round(score["psnr"], 3)})
                  + tag, flush=True)
    finally:
        for k, v in shipped.items():
            setattr(H, k, v)
    return 0


if __name__ == "__main__":
    sys.exit(main())
