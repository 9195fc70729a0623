"""Contact sheet of a fixed set of photos: gray input | each model's output | truth.

    python scripts/contact_sheet.py --models default --out docs/model_card/contact_sheet.jpg
    python scripts/contact_sheet.py --set failure_modes --models lite0-hint default \
        --out docs/model_card/failure_modes.jpg
    python scripts/contact_sheet.py --set failure_modes --models vae-gan default --variations 4 \
        --out docs/model_card/variations.jpg

With --variations N each model gets its colorization and then N sampled variations (seed 0:
latent codes z ~ N(0, I) for the VAE-GAN, smooth noise on the logits for the others).

The photos are fixed so sheets of different models and runs can be compared side by side:
`test` (FIXED_PHOTOS, under ../shared/data/test) or `failure_modes` (FAILURE_MODE_PHOTOS, under
../shared/data/val/imagenet_val: foliage, skin and people in scenes, objects whose colour everyone
knows, and street and stadium scenes; the failure modes blind raters named). Photos that are
missing are skipped with a note.
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
# val/imagenet_val photos, by failure mode: foliage (a bird in leaves, elephants in green, a forest
# wedding, a tree); skin and people (kayakers, a woman on a boat, a person before a stupa, a woman
# sitting); well-known object colours (an orange pepper, a red car, a yellow school bus, a
# blue-and-white sign with a green ball); scenes (a street with a tram, a baseball stadium)
FAILURE_MODE_PHOTOS = [f"ILSVRC2012_val_{n:08d}.jpg" for n in (
    5931, 11218, 43162, 28888, 347, 7053, 31615, 45072, 20957, 22587, 31163, 10954, 4778, 25406)]
SETS = {"test": ("data/test", FIXED_PHOTOS), "failure_modes": ("data/val/imagenet_val", FAILURE_MODE_PHOTOS)}
TILE = 220
HEADER = 28


def tile(rgb: np.ndarray, size: int = TILE) -> Image.Image:
    im = Image.fromarray(rgb)
    im.thumbnail((size, size), Image.LANCZOS)
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(im, ((size - im.width) // 2, (size - im.height) // 2))
    return canvas


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["default"])
    ap.add_argument("--set", default="test", choices=list(SETS), help="which fixed photos")
    ap.add_argument("--test-dir", default=None,
                    help="the folder the set's photos are under (default: ../shared/data/test or "
                         "../shared/data/val/imagenet_val)")
    ap.add_argument("--tile", type=int, default=TILE, help="size of each picture")
    ap.add_argument("--variations", type=int, default=0, metavar="N",
                    help="after each model's colorization, N of its variations (seed 0)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    size = args.tile
    folder, names = SETS[args.set]
    test_dir = Path(args.test_dir or ROOT.parent / "shared" / folder)

    from colorizer import load_colorizer, lab
    from colorizer.pipeline import load_image
    colorizers = [load_colorizer(m) for m in args.models]
    photos = []
    for rel in names:
        p = test_dir / rel
        if p.exists():
            photos.append((rel, load_image(p)))
        else:
            print(f"missing {p}, skipped", file=sys.stderr)
    if not photos:
        print(f"error: none of the fixed photos are under {test_dir}", file=sys.stderr)
        return 2
    heads = ["gray input"]
    for c in colorizers:
        heads.append(c.name)
        heads += [f"{c.name} v{k + 1}" for k in range(args.variations)]
    heads.append("truth")
    sheet = Image.new("RGB", (size * len(heads), HEADER + size * len(photos)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=16)
    for j, h in enumerate(heads):
        draw.text((j * size + 8, 6), h, fill=(0, 0, 0), font=font if size >= 200 else ImageFont.load_default(size=12))
    for i, (rel, rgb) in enumerate(photos):
        row = [lab.gray_rgb_from_lightness(lab.rgb_to_lightness(rgb))]
        for c in colorizers:
            row.append(c.colorize(rgb))
            if args.variations:
                row += c.variations(rgb, n=args.variations, seed=0)
        row.append(rgb)
        for j, im in enumerate(row):
            sheet.paste(tile(im, size), (j * size, HEADER + i * size))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, quality=88)
    print(f"wrote {out} ({len(photos)} photos x {len(heads)} columns)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
