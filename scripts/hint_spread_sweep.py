"""Compare settings of hint spreading (colorizer/hints.py) with K hints taken from the truth.

    python scripts/hint_spread_sweep.py ../shared/data/train/imagenette --limit 100 \\
        --settings 0.25,0.3,3 0.32,0.75,3

A setting is SPREAD_SIGMA,EDGE_COST,GLOBAL_RIDGE. For each photo (the same evenly spaced ones
`python -m colorizer evaluate --limit N` takes; hints seeded by the photo's index, as there) the
network runs once with its K hints; each setting then spreads them over its colours, and the
script prints each setting's mean dE2000 and PSNR against the truth, and the network's without
spreading. Choose on training photos, never on the val or test sets that report the figures.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def setting(text: str) -> tuple[float, float, float]:
    try:
        sigma, edge, ridge = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a setting is SIGMA,EDGE_COST,RIDGE (3 numbers), got {text!r}")
    return sigma, edge, ridge


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--model", default="default")
    ap.add_argument("--hints", type=int, default=10)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--settings", type=setting, nargs="+",
                    default=[(0.25, 0.3, 3.0), (0.32, 0.75, 3.0)])
    args = ap.parse_args(argv)

    import numpy as np

    import colorizer.hints as H
    from colorizer import lab, load_colorizer, metrics
    from colorizer.evaluate import _rgb8, subsample
    from colorizer.pipeline import lightness_of, load_image, upsample_ab
    from colorizer.errors import ColorizerError
    from colorizer.data import find_images

    try:
        c = load_colorizer(args.model)
    except (ColorizerError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    shipped = (H.SPREAD_SIGMA, H.EDGE_COST, H.GLOBAL_RIDGE)
    files = subsample(find_images(args.dirs), args.limit)
    scores = {st: [] for st in [None, *args.settings]}

    def score(ab, L, truth):
        m = metrics.evaluate_pair(lab.l_ab_to_rgb_uint8(L, upsample_ab(ab, L.shape)), truth)
        return m["de2000"], m["psnr"]

    try:
        for i, f in enumerate(files):
            truth = _rgb8(load_image(f))
            L = lightness_of(truth)
            hints = H.hints_from_truth(truth, args.hints, seed=i)
            ab = c.predict_small(*c.working_input(L, hints, None))
            scores[None].append(score(ab, L, truth))
            for st in args.settings:
                H.SPREAD_SIGMA, H.EDGE_COST, H.GLOBAL_RIDGE = st
                scores[st].append(score(c.spread(ab, c.spread_plan(L, hints, ab.shape[-2:])), L, truth))
    finally:
        H.SPREAD_SIGMA, H.EDGE_COST, H.GLOBAL_RIDGE = shipped
    for st, rows in scores.items():
        de, ps = np.mean(rows, axis=0)
        what = ({"spread": False} if st is None else
                {"sigma": st[0], "edge_cost": st[1], "ridge": st[2], "spread": True})
        tag = " (shipped)" if st == shipped else ""
        print(json.dumps({**what, "photos": len(rows), "de2000": round(float(de), 3),
                          "psnr": round(float(ps), 3)}) + tag, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
