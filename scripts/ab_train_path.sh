#!/usr/bin/env bash
# A/B of the training path: the same run (same seed, so the same crops and hints) in float32 and in
# the default fast path (bfloat16 autocast with float32 depthwise convolutions, channels_last), from
# the shipped lite0-hint on the whole training pool, one epoch of STEPS steps; prints both
# validation losses and their relative difference.   usage: scripts/ab_train_path.sh [STEPS] [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-100}
OUT=${2:-runs/ab}
D=../shared/data/train
common=(--data $D/caltech101 $D/coco_val2017 $D/nips17_imagenet $D/intel_scenes $D/sun8_scenes
        $D/tiny_imagenet $D/imagenette $D/flowers128 $D/imagenet200x5 $D/bsds500_trainval
        --data-weights 14 16 10 7 9 8 8 4 12 4 --val ../shared/data/val/imagenet_val
        --decoder-channels 160 96 64 --init weights/lite0_hint.pt --hints --decode-weight 100
        --temperature 0.38 --correction 0.5 --lr 2e-4 --batch-size 32 --epoch-size $((STEPS * 32))
        --epochs 1 --threads 2 --workers 1 --seed 7)
rm -f "$OUT"/fp32.pt.resume "$OUT"/fast.pt.resume "$OUT"/fp32.log "$OUT"/fast.log
python -m colorizer train "${common[@]}" --precision fp32 --no-channels-last --out "$OUT/fp32.pt" 2>/dev/null
python -m colorizer train "${common[@]}" --out "$OUT/fast.pt" 2>/dev/null
python - "$OUT" <<'PY'
import re, sys
from pathlib import Path
out = Path(sys.argv[1])
def epoch(name):
    line = [l for l in (out / f"{name}.log").read_text().splitlines() if " epoch 1 train_loss=" in l][-1]
    return {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", line)}
a, b = epoch("fp32"), epoch("fast")
print(f"float32:   val loss {a['val_loss']:.5f}, train loss {a['train_loss']:.5f}, {a['img_per_s']:.1f} img/s")
print(f"fast path: val loss {b['val_loss']:.5f}, train loss {b['train_loss']:.5f}, {b['img_per_s']:.1f} img/s")
print(f"validation loss difference: {100 * (b['val_loss'] - a['val_loss']) / a['val_loss']:+.2f}%; "
      f"speed {b['img_per_s'] / a['img_per_s']:.2f}x")
PY
