"""Contact sheet of a fixed set of test photos: gray input | each model's output | truth.

    python scripts/contact_sheet.py --models default --out docs/model_card/contact_sheet.jpg

The photos are fixed (FIXED_PHOTOS, under ../shared/data/test) so sheets of different models and
runs can be compared side by side. Photos that are missing are skipped with a note.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIXED_PHOTOS = [
    "kodak24/kodim03.png", "kodak24/kodim04.png", "kodak24/kodim05.png", "kodak24/kodim14.png",
    "kodak24/kodim20.png", "kodak24/kodim23.png", "mcmaster18/1.png", "mcmaster18/8.png",
    "bsds500_test/100007.jpeg", "bsds500_test/101027.jpeg",
]
TILE = 220
HEADER = 28


def tile(rgb: np.ndarray) -> Image.Image:
    im = Image.fromarray(rgb)
    im.thumbnail((TILE, TILE), Image.LANCZOS)
    canvas = Image.new("RGB", (TILE, TILE), (255, 255, 255))
    canvas.paste(im, ((TILE - im.width) // 2, (TILE - im.height) // 2))
    return canvas


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["default"])
    ap.add_argument("--test-dir", default=str(ROOT.parent / "shared" / "data" / "test"))
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    from colorizer import load_colorizer, lab
    from colorizer.pipeline import load_image
    colorizers = [load_colorizer(m) for m in args.models]
    photos = []
    for rel in FIXED_PHOTOS:
        p = Path(args.test_dir) / rel
        if p.exists():
            photos.append((rel, load_image(p)))
        else:
            print(f"missing {p}, skipped", file=sys.stderr)
    if not photos:
        print(f"error: none of the fixed photos are under {args.test_dir}", file=sys.stderr)
        return 2
    heads = ["gray input"] + [c.name for c in colorizers] + ["truth"]
    sheet = Image.new("RGB", (TILE * len(heads), HEADER + TILE * len(photos)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=16)
    for j, h in enumerate(heads):
        draw.text((j * TILE + 8, 6), h, fill=(0, 0, 0), font=font)
    for i, (rel, rgb) in enumerate(photos):
        row = [lab.gray_rgb_from_lightness(lab.rgb_to_lightness(rgb))]
        row += [c.colorize(rgb) for c in colorizers]
        row.append(rgb)
        for j, im in enumerate(row):
            sheet.paste(tile(im), (j * TILE, HEADER + i * TILE))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, quality=88)
    print(f"wrote {out} ({len(photos)} photos x {len(heads)} columns)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
