"""Photos per second of archive-scale colorization on this machine: one process (`colorize`),
`colorize --workers 2` and `colorize-ray --workers 2` (a local Ray of 2 CPUs, 2 actors), each the
real command in a subprocess, on the same folder of photos and the same model.

    python scripts/bench_scale.py [--photos DIR] [--count 48] [--model default] [--json FILE]

Default photos: the first 48 of ../shared/data/val/imagenet_val where it exists, else 48
synthetic 512 x 512 photos. Default model: the shipped default (weights/lite0_scene.pt).
The photos are read once first (a warm file cache). Each command runs on all the photos and on
2 of them, --rounds times in turn, and the fastest time of each is kept; the difference gives the
steady rate (photos per second once processes, Ray and the model are up) and the fixed start-up
cost. It also compares the outputs of the three commands byte for byte.

Touches: a temporary folder (links to the photos, the outputs; removed at the end) and the
--json file. Needs Ray for the third command (requirements-scale.txt); without it, that row is
left out.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_PHOTOS = REPO.parent / "shared" / "data" / "val" / "imagenet_val"
SMALL = 2  # photos of the start-up run: one per worker


def synthetic_photos(d: Path, n: int, size: int = 512) -> None:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        chans = [0.5 + 0.25 * np.sin(rng.uniform(2, 20) * x + rng.uniform(0, 6)) +
                 0.25 * np.cos(rng.uniform(2, 20) * y + rng.uniform(0, 6)) for _ in range(3)]
        img = np.clip(np.stack(chans, -1) * 255 + rng.normal(0, 8, (size, size, 3)), 0, 255)
        Image.fromarray(img.astype(np.uint8)).save(d / f"synthetic_{i:03d}.jpg", quality=90)


def photo_folder(src: Path | None, n: int, d: Path) -> str:
    """d holds n photos (links to src's first n, or synthetic ones); returns where they came from."""
    d.mkdir(parents=True)
    if src is None and DEFAULT_PHOTOS.is_dir():
        src = DEFAULT_PHOTOS
    if src is None:
        synthetic_photos(d, n)
        return f"{n} synthetic 512 x 512 photos"
    from colorizer.batch import find_photos
    files = find_photos([src]).files[:n]
    if len(files) < n:
        raise SystemExit(f"error: {src} holds {len(files)} photos, fewer than --count {n}")
    for f in files:
        (d / f.name).symlink_to(f.resolve())
    try:
        src = os.path.relpath(src.resolve(), REPO)
    except ValueError:  # another drive
        pass
    return f"the first {n} photos of {src}"


def mean_megapixels(d: Path) -> float:
    sizes = []
    for f in d.iterdir():
        with Image.open(f) as im:
            sizes.append(im.size[0] * im.size[1] / 1e6)
    return round(sum(sizes) / len(sizes), 3)


def run(cmd: list[str], env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "colorizer", *cmd], cwd=REPO, env=env,
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd[:1])} failed ({p.returncode}): "
                         f"{(p.stderr.strip().splitlines() or ['?'])[-1]}")
    return wall, p.stdout


def compare(a: Path, b: Path) -> dict:
    """Outputs of a and b: how many are byte-identical, and the largest pixel difference."""
    same, worst, differing = 0, 0, 0
    for f in sorted(a.glob("*.png")):
        g = b / f.name
        if f.read_bytes() == g.read_bytes():
            same += 1
            continue
        x = np.asarray(Image.open(f), dtype=np.int16)
        y = np.asarray(Image.open(g), dtype=np.int16)
        worst = max(worst, int(np.abs(x - y).max()))
        differing += int((x != y).any(-1).sum())
    return {"identical_files": same, "files": len(list(a.glob("*.png"))),
            "max_pixel_difference": worst, "pixels_differing": differing}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, default=None, metavar="DIR")
    ap.add_argument("--count", type=int, default=48)
    ap.add_argument("--model", default="default")
    ap.add_argument("--rounds", type=int, default=2, help="timings per command; the fastest is kept")
    ap.add_argument("--json", default=None, metavar="FILE")
    args = ap.parse_args(argv)
    if args.count <= SMALL:
        ap.error(f"--count must be more than {SMALL}")
    try:
        import ray  # noqa: F401
        have_ray = True
    except ImportError:
        have_ray = False
        print("Ray is not installed (pip install -r requirements-scale.txt): its row is left out")

    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.setdefault("COLORIZER_WEIGHTS_DIR", str(REPO / "weights"))
    from colorizer.batch import cores
    n_cores = cores()
    modes = [("1 process", ["colorize"], 1, n_cores),
             ("--workers 2", ["colorize", "--workers", "2"], 2, max(1, n_cores // 2))]
    if have_ray:
        modes.append(("Ray, 2 CPUs", ["colorize-ray", "--workers", "2"], 2, 1))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        tmp = Path(tmp)
        source = photo_folder(args.photos, args.count, tmp / "all")
        megapixels = mean_megapixels(tmp / "all")
        (tmp / "small").mkdir()
        for f in sorted((tmp / "all").iterdir())[:SMALL]:
            (tmp / "small" / f.name).symlink_to(f.resolve())
        for f in (tmp / "all").iterdir():
            f.read_bytes()  # the file cache warm for every command alike
        times: dict[str, list] = {}
        for k in range(args.rounds):
            for label, cmd, procs, threads in modes:
                key = re.sub(r"\W+", "_", label).strip("_")
                small = run([cmd[0], str(tmp / "small"), "-o", str(tmp / f"{key}_small{k}"), "-q",
                             "--model", args.model, *cmd[1:]], env)[0]
                wall, out = run([cmd[0], str(tmp / "all"), "-o", str(tmp / f"{key}{k}"), "-q",
                                 "--model", args.model, *cmd[1:]], env)
                print(f"round {k + 1}, {label}: {wall:.1f} s ({SMALL} photos: {small:.1f} s)", flush=True)
                t = times.setdefault(label, [small, wall, out])
                t[0], t[1] = min(t[0], small), min(t[1], wall)
                if wall <= t[1]:
                    t[2] = out
        for label, cmd, procs, threads in modes:
            key = re.sub(r"\W+", "_", label).strip("_") + "0"
            wall_small, wall, out = times[label]
            steady = (args.count - SMALL) / max(wall - wall_small, 1e-9)
            rows.append({"mode": label, "command": f"python -m colorizer {' '.join(cmd)} DIR -o OUT",
                         "processes": procs, "threads_per_process": threads, "photos": args.count,
                         "wall_s": round(wall, 2), "photos_per_s": round(args.count / wall, 3),
                         "steady_photos_per_s": round(steady, 3),
                         "steady_photos_per_s_per_core": round(steady / n_cores, 3),
                         "startup_s": round(max(0.0, wall - args.count / steady), 2),
                         "summary": out.strip().splitlines()[-1], "dir": key})
        base = tmp / rows[0]["dir"]
        for r in rows[1:]:
            r["outputs_vs_1_process"] = compare(base, tmp / r["dir"])
        if have_ray:
            r_ray, r_two = rows[2], rows[1]
            r_ray["outputs_vs_workers_2"] = compare(tmp / r_two["dir"], tmp / r_ray["dir"])
    for r in rows:
        del r["dir"]

    print(f"\n{args.count} photos ({source}; {megapixels} MP on average), model {args.model}, {n_cores} cores")
    print(f"{'mode':<14} {'procs x threads':>15} {'wall s':>7} {'photos/s':>9} {'steady/s':>9} "
          f"{'per core':>9} {'start-up s':>10}  same bytes as 1 process")
    for r in rows:
        same = r.get("outputs_vs_1_process")
        same = f"{same['identical_files']}/{same['files']} (max diff {same['max_pixel_difference']})" if same else "-"
        print(f"{r['mode']:<14} {str(r['processes']) + ' x ' + str(r['threads_per_process']):>15} "
              f"{r['wall_s']:>7.1f} {r['photos_per_s']:>9.2f} {r['steady_photos_per_s']:>9.2f} "
              f"{r['steady_photos_per_s_per_core']:>9.2f} {r['startup_s']:>10.1f}  {same}")
    if args.json:
        doc = {"photos": source, "count": args.count, "mean_megapixels": megapixels, "model": args.model,
               "cores": n_cores,
               "cpu": _cpu_name(), "python": platform.python_version(),
               "rounds": args.rounds,
               "note": "each command a subprocess (the fastest of the rounds), on a machine that may be "
                       "shared; steady = (count - 2) / (wall(count) - wall(2)); start-up = wall - count / steady",
               "rows": rows}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
