"""Sweep a classification model's decoding (temperature T, correction c, chroma gain g) on photos.

    python scripts/decoding_sweep.py --model default --limit 300 ../shared/data/val/imagenette_val1000
    (--input-size N: at another working resolution)

The network runs once per photo; each (T, c, g) then only decodes the cached logits, so a sweep
costs little more than one evaluation. Prints the gray baseline PSNR of the photos and, per
setting, mean PSNR, mean Delta E 2000 and the colorfulness ratio (output / truth). Any point can
be re-measured with `python -m colorizer evaluate ... --temperature T --correction c --gain g`.
Choose the decoding on validation photos, not on the test sets.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--model", default="default")
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--input-size", type=int, default=None,
                    help="working resolution the network sees (default: the model's own)")
    ap.add_argument("--temperatures", type=float, nargs="+", default=[0.38])
    ap.add_argument("--corrections", type=float, nargs="+", default=[0.5, 0.6, 0.75, 1.0])
    ap.add_argument("--gains", type=float, nargs="+", default=[1.0, 1.1, 1.2, 1.3, 1.45, 1.6, 1.9])
    args = ap.parse_args(argv)

    from colorizer import lab, load_colorizer, metrics
    from colorizer.evaluate import subsample
    from colorizer.models.heads import annealed_mean
    from colorizer.pipeline import lightness_of, load_image, upsample_ab
    from colorizer.errors import ColorizerError
    from colorizer.data import find_images

    try:
        c = load_colorizer(args.model, input_size=args.input_size)
    except (ColorizerError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    head = getattr(c.model, "head", None)
    if head is None or not hasattr(head, "bins"):
        print(f"error: {c.name} has no classification head to decode", file=sys.stderr)
        return 2
    for d in args.dirs:
        cache = []
        for f in subsample(find_images([d]), args.limit):
            rgb = load_image(f)
            L = lightness_of(rgb)
            logits = c.logits(L, None, None).float()  # at the working resolution, as colorizing
            cache.append((rgb, L, logits))
        gray = np.mean([metrics.psnr(lab.gray_rgb_from_lightness(L), rgb) for rgb, L, _ in cache])
        print(f"{d}: {len(cache)} photos, gray PSNR {gray:.3f}, working resolution {c.input_size}", flush=True)
        for t, corr, g in itertools.product(args.temperatures, args.corrections, args.gains):
            ps, de, cp, ct = [], [], [], []
            for rgb, L, logits in cache:
                z = logits - corr * head.log_class_weights.float()[None, :, None, None]
                ab = annealed_mean(z, head.bins.float(), t) * g
                pred = lab.l_ab_to_rgb_uint8(L, upsample_ab(ab, L.shape))
                ps.append(metrics.psnr(pred, rgb))
                de.append(float(metrics.delta_e_map(pred, rgb, "2000").mean()))
                cp.append(metrics.colorfulness(pred))
                ct.append(metrics.colorfulness(rgb))
            print(json.dumps({"T": t, "c": corr, "g": g, "psnr": round(float(np.mean(ps)), 3),
                              "de2000": round(float(np.mean(de)), 3),
                              "colorfulness_ratio": round(float(np.mean(cp) / np.mean(ct)), 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
