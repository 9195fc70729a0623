"""Write a trained checkpoint into weights/ with the decoding chosen for it, ready to ship.

    python scripts/ship_checkpoint.py runs/lite0_scene176.epoch8.pt weights/lite0_scene.pt \
        --correction 0.8 --gain 1.3 --chosen-on "300 photos of val/imagenet_val ..." \
        --stage runs/lite0_scene.epoch9.pt --stage runs/lite0_scene176.epoch8.pt

The decoding (annealed-mean temperature, share of the rebalancing taken back, chroma gain) goes
into the checkpoint's model_args, so the model decodes that way wherever it is loaded; each
--stage checkpoint's training facts (init, crop size, epochs, crops seen, minutes, validation
loss, learning rate, batch) are copied into meta["stages"]. Tensors stay fp16; with --int8 the
big weights are stored as int8 with a scale per output channel (colorizer/weights.py), for a
network that would not fit in 25 MB otherwise (the VGG-16 and ResNet-18 U-Nets).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def stage_facts(path: str) -> dict:
    from colorizer.weights import read_checkpoint
    meta = read_checkpoint(path)["meta"]
    cfg = meta.get("config", {})
    return {"checkpoint": str(path), "init": cfg.get("init"), "crop_size": meta.get("crop_size"),
            "epochs": meta.get("epochs"), "images_seen": meta.get("images_seen"),
            "train_minutes": meta.get("train_minutes"), "val_loss": meta.get("val_loss"),
            "lr": cfg.get("lr"), "batch_size": cfg.get("batch_size"), "data_weights": cfg.get("data_weights"),
            "trained_on": meta.get("trained_on"), "validated_on": meta.get("validated_on")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dest")
    ap.add_argument("--temperature", type=float, default=None)
    ap.add_argument("--correction", type=float, default=None)
    ap.add_argument("--gain", type=float, default=None)
    ap.add_argument("--chosen-on", default="", help="how the decoding was chosen (kept in meta)")
    ap.add_argument("--int8", action="store_true", help="store the big weights as int8 (per-channel scales)")
    ap.add_argument("--stage", action="append", default=[], metavar="CHECKPOINT",
                    help="a training stage's checkpoint, in order (repeat)")
    args = ap.parse_args(argv)

    from colorizer.weights import WeightsError, read_checkpoint, save_checkpoint
    try:
        ck = read_checkpoint(args.src)
        stages = [stage_facts(p) for p in args.stage]
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    decoding = {k: getattr(args, k) for k in ("temperature", "correction", "gain") if getattr(args, k) is not None}
    unknown = [k for k in decoding if k not in ck["model_args"]]
    if unknown:
        print(f"error: {args.src} has no decoding {', '.join(unknown)} (not a classification U-Net)", file=sys.stderr)
        return 2
    ck["model_args"].update(decoding)
    ck["meta"]["decoding"] = {**{k: ck["model_args"][k] for k in ("temperature", "correction", "gain")},
                              "chosen_on": args.chosen_on}
    if stages:
        ck["meta"]["stages"] = stages
    ck["meta"]["source_checkpoint"] = str(args.src)
    dest = Path(args.dest)
    if args.int8:
        ck["meta"]["storage"] = "int8 weights, one fp16 scale per output channel"
    save_checkpoint(dest, ck["state_dict"], ck["arch"], ck["model_args"], ck["meta"], int8=args.int8)
    print(f"wrote {dest} ({dest.stat().st_size / 2**20:.1f} MB{', int8' if args.int8 else ''}): "
          f"decoding {ck['meta']['decoding']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
