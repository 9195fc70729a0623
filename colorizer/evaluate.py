"""Evaluation on folders of color photos: each photo's L channel is the gray input, the colorized
result is compared with the photo. Per-image and mean MSE, PSNR, SSIM, Delta E 76/94/2000, and
the colorfulness of output and truth; optionally the outputs and Delta E heat maps on disk.

Two further modes:
- hints=K: each photo is colorized with K color hints taken from the truth (colorizer.hints.
  hints_from_truth: uniform random points, seeded by the photo's index, each the mean true color
  of a 5 x 5 patch), as a user copying the true colors would;
- variations=N: N sampled colorizations per photo; adds their diversity (mean pairwise Delta E
  2000 between the samples) and each sample's metrics (averaged over the samples).

numpy, colorizer.lab / metrics / data and the pipeline; reads photo folders, writes JSON and PNGs
only where asked; gradio-free.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from . import lab, metrics
from .errors import ImageError
from .pipeline import load_image
from .data import find_images

METRIC_KEYS = ("mse", "psnr", "ssim", "de76", "de94", "de2000", "colorfulness_pred", "colorfulness_truth")
# with variations: mean pairwise dE2000 between a photo's samples, and its least colorful sample
VARIATION_KEYS = ("diversity_de2000", "colorfulness_min_sample")


def _rgb8(a: np.ndarray) -> np.ndarray:
    """Truth photos as 8-bit RGB (the scale every metric here uses)."""
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.dtype == np.uint16:
        return (a.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    if a.dtype != np.uint8:
        return (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)
    return a


def summarize(rows: list[dict]) -> dict:
    """Mean of each metric over the images (PSNR: mean of per-image dB, as in the baselines)."""
    out = {"images": len(rows)}
    for k in METRIC_KEYS + VARIATION_KEYS:
        if k in VARIATION_KEYS and not any(k in r for r in rows):
            continue
        vals = [r[k] for r in rows if k in r and np.isfinite(r[k])]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    if rows:
        out["colorfulness_ratio"] = out["colorfulness_pred"] / max(1e-9, out["colorfulness_truth"])
        # the share of photos that come out with less than half of their truth's colorfulness
        dull = [r["colorfulness_pred"] < 0.5 * r["colorfulness_truth"] for r in rows
                if np.isfinite(r["colorfulness_pred"]) and np.isfinite(r["colorfulness_truth"])]
        out["dull_share"] = float(np.mean(dull)) if dull else float("nan")
    return out


def _variation_row(colorizer, truth: np.ndarray, n: int, seed: int) -> dict:
    samples = colorizer.variations(truth, n=n, seed=seed)
    rows = [metrics.evaluate_pair(s, truth) for s in samples]
    r = {k: float(np.mean([x[k] for x in rows])) for k in rows[0]}
    pair = [float(metrics.delta_e_map(samples[i], samples[j], "2000").mean())
            for i in range(n) for j in range(i + 1, n)]
    r["diversity_de2000"] = float(np.mean(pair)) if pair else 0.0
    r["colorfulness_min_sample"] = float(min(x["colorfulness_pred"] for x in rows))
    return r, samples


class GrayInput:
    """The baseline every colorizer must beat, evaluated like a model (`evaluate --models gray
    ...`): the photo's own lightness with a = b = 0, as the gray input the models are given."""

    name = "gray"
    accepts_hints = False
    predicts_distribution = False

    def colorize(self, image, **_):
        from .pipeline import lightness_of
        return lab.gray_rgb_from_lightness(lightness_of(image))

    def colorize_batch(self, images, **_):
        return [self.colorize(im) for im in images]


def subsample(files: list, limit: int | None) -> list:
    """At most `limit` files, evenly spaced over the sorted list (the same ones every run)."""
    if not limit or len(files) <= limit:
        return files
    step = len(files) / limit
    return [files[int(i * step)] for i in range(limit)]


def evaluate_folder(colorizer, paths, save_dir: str | Path | None = None, batch_size: int = 16,
                    progress: bool = True, on_error=None, hints: int = 0, variations: int = 0,
                    limit: int | None = None, spread: bool = True) -> tuple[list[dict], dict]:
    """Evaluate a colorizer on image files. Returns (per-image rows, means).

    Unreadable files are passed to on_error(path, message) and skipped. hints / variations: see
    the module's docstring; limit: evaluate only that many photos (evenly spaced); spread=False:
    hints reach only the network, not the edge-aware spreading after it (to measure each part).
    """
    from tqdm import tqdm
    from .hints import hints_from_truth

    if hints and not colorizer.accepts_hints:
        raise ValueError(f"model {colorizer.name!r} does not take color hints")
    files = subsample(find_images(paths), limit)
    save = Path(save_dir) if save_dir else None
    if save:
        (save / "outputs").mkdir(parents=True, exist_ok=True)
        (save / "heatmaps").mkdir(parents=True, exist_ok=True)
    rows = []
    bar = tqdm(total=len(files), unit="img", desc=f"evaluate {colorizer.name}", disable=not progress)
    for s in range(0, len(files), batch_size):
        chunk, truths = [], []
        for f in files[s:s + batch_size]:
            try:
                truths.append(_rgb8(load_image(f)))
                chunk.append(f)
            except ImageError as exc:
                if on_error:
                    on_error(f, str(exc))
                bar.update(1)
        if not chunk:
            continue
        if variations:
            preds = []
        elif hints:
            preds = [colorizer.colorize(t, hints=hints_from_truth(t, hints, seed=s + j), spread=spread)
                     for j, t in enumerate(truths)]
        else:
            preds = colorizer.colorize_batch(truths, batch_size=batch_size)
        for j, (f, truth) in enumerate(zip(chunk, truths)):
            r = {"image": str(f)}
            if variations:
                scores, samples = _variation_row(colorizer, truth, variations, seed=s + j)
                r.update(scores)
                pred = samples[0]
            else:
                pred = preds[j]
                r.update(metrics.evaluate_pair(pred, truth))
            rows.append(r)
            if save:
                stem = f"{f.parent.name}_{f.stem}"
                from PIL import Image
                Image.fromarray(pred).save(save / "outputs" / f"{stem}.png")
                metrics.render_heatmap(metrics.delta_e_map(pred, truth, "2000"),
                                       path=save / "heatmaps" / f"{stem}_de2000.png")
            bar.update(1)
    bar.close()
    return rows, summarize(rows)


def write_json(path, model: str, sets: dict) -> None:
    """sets: name -> (rows, means)."""
    doc = {"model": model, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
           "sets": {name: {"mean": means, "images": rows} for name, (rows, means) in sets.items()}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc, indent=1))


def _metric_cells(m: dict, truth: bool) -> str:
    """A row's metric columns: MSE, PSNR, SSIM, dE76/94/2000, colorfulness (and the truth's),
    its ratio and the share of photos below half of their truth's colorfulness."""
    return (f"{m['mse']:>8.1f} {m['psnr']:>6.2f} {m['ssim']:>6.3f} {m['de76']:>6.2f} {m['de94']:>6.2f} "
            f"{m['de2000']:>6.2f} {m['colorfulness_pred']:>7.1f} "
            + (f"{m['colorfulness_truth']:>6.1f} " if truth else "")
            + f"{m['colorfulness_ratio']:>6.2f} {m.get('dull_share', float('nan')):>6.0%}")


def format_table(sets: dict) -> str:
    head = f"{'set':<34} {'n':>5} {'MSE':>8} {'PSNR':>6} {'SSIM':>6} {'dE76':>6} {'dE94':>6} {'dE2000':>6} {'colorf.':>7} {'truth':>6} {'ratio':>6} {'<half':>6}"
    diverse = any("diversity_de2000" in m for _, m in sets.values())
    if diverse:
        head += f" {'divers.':>7} {'min cf':>6}"
    lines = [head, "-" * len(head)]
    for name, (_, m) in sets.items():
        if not m.get("images"):
            lines.append(f"{name:<34} {0:>5}  (no readable images)")
            continue
        lines.append(f"{name[-34:]:<34} {m['images']:>5} " + _metric_cells(m, truth=True)
                     + (f" {m['diversity_de2000']:>7.2f} {m['colorfulness_min_sample']:>6.1f}" if diverse else ""))
    return "\n".join(lines)


def write_comparison_json(path, results: dict) -> None:
    """results: model -> {set name -> (rows, means)}."""
    doc = {"created": time.strftime("%Y-%m-%d %H:%M:%S"),
           "models": {m: {"sets": {name: {"mean": means, "images": rows} for name, (rows, means) in sets.items()}}
                      for m, sets in results.items()}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc, indent=1))


def format_comparison(results: dict) -> str:
    """One table: a row per model and set, with the metrics the papers report."""
    head = (f"{'model':<20} {'set':<26} {'n':>5} {'MSE':>8} {'PSNR':>6} {'SSIM':>6} {'dE76':>6} {'dE94':>6} "
            f"{'dE2000':>6} {'colorf.':>7} {'ratio':>6} {'<half':>6}")
    lines = [head, "-" * len(head)]
    for model, sets in results.items():
        for name, (_, m) in sets.items():
            if not m.get("images"):
                lines.append(f"{model[:20]:<20} {name[-26:]:<26} {0:>5}  (no readable images)")
                continue
            lines.append(f"{model[:20]:<20} {name[-26:]:<26} {m['images']:>5} " + _metric_cells(m, truth=False))
    return "\n".join(lines)
