#!/usr/bin/env python
"""Can a script tell real from colorized stimuli by their files alone? The AUC of the best file
feature (byte size, header and table lengths: turing_test/leak.py) for the survey's encoder and
for the encoder it replaced (JPEG q90 4:2:0 with optimized Huffman tables).

    python scripts/stimulus_leak.py ../shared/data/val/imagenet_val --limit 200 --model default
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def old_encode(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90, subsampling=2, optimize=True)
    return buf.getvalue()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photos", help="a folder of color photos")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--model", default="default")
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args(argv)
    import colorizer
    from turing_test import leak, pool
    files = pool.list_photos(args.photos)[: args.limit]
    if not files:
        print(f"no photos in {args.photos}", file=sys.stderr)
        return 2
    c = colorizer.load_colorizer(args.model)
    real_new, fake_new, real_old, fake_old, smaller = [], [], [], [], 0
    for f in files:
        try:
            rgb = pool.load_source(f, args.size)
        except Exception:
            continue
        gen = pool.to_rgb8(c.colorize(rgb))
        real_new.append(pool.encode(rgb))
        fake_new.append(pool.encode(gen))
        real_old.append(old_encode(rgb))
        fake_old.append(old_encode(gen))
        smaller += len(fake_old[-1]) < len(real_old[-1])
    n = len(real_new)
    for name, r, g in (("before (optimized JPEG)", real_old, fake_old), ("now (pool.encode)", real_new, fake_new)):
        feat, auc = leak.leak_auc(r, g)
        sizes = {len(b) for b in r + g}
        print(f"{name:24} best feature {feat:12} AUC {auc:.3f}; distinct file sizes: {len(sizes)}")
    print(f"{n} photos with {c.name}; before, the colorized file was the smaller of its pair "
          f"{100 * smaller / max(1, n):.0f}% of the time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
