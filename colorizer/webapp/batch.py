"""Batch: many photos and zip archives of photos in, one zip of colorized PNGs out (/batch).
The batch's cost is checked before any work (`check_batch_cost`) and charged photo by photo
(BatchMeter); archives are read one member at a time against one InflateBudget.

Imports gradio (handler).
"""
from __future__ import annotations

import html
import io
import logging
import time
import zipfile
from pathlib import Path

import gradio as gr
from PIL import Image

from ..budget import BatchMeter, Budget, BudgetError, output_cost
from ..errors import ColorizerError, ImageError
from ..uploads import IMAGE_SUFFIXES, ZIP_MAX_FILES, InflateBudget, ZipImages, inspect_image, shown_name
from .files import display_name, new_output_dir
from .models import get_model
from .request import check_input_size, check_vividness, colorize_array, load, request_budget
from .running import heavy, user_errors
from .state import INPUT_SIZE_DEFAULT

log = logging.getLogger("colorizer.app")


def is_archive(p: Path) -> bool:
    return p.suffix.lower() == ".zip" or (p.suffix.lower() not in IMAGE_SUFFIXES and zipfile.is_zipfile(p))


def check_batch_cost(files, size: int, budget: Budget) -> None:
    """Before any work: the photos uploaded as files (not inside archives, whose members are
    charged as they are read) must fit the batch's budget together; their headers say how big."""
    costs = []
    for f in files or []:
        p = Path(str(getattr(f, "name", f)))
        if is_archive(p):
            continue
        try:
            info = inspect_image(p, name=shown_name(p.name))
        except ImageError:  # reported with its reason when the batch reaches it
            continue
        costs.append(output_cost(info.width, info.height, size))
    total = sum(costs)
    if total > budget.batch_units:
        fits, run = 0, 0.0
        for c in costs:
            if run + c > budget.batch_units:
                break
            fits, run = fits + 1, run + c
        raise BudgetError(f"these {len(costs)} photos would cost {total:.0f} units of work at {size} px "
                          f"working resolution; the limit of one batch is {budget.batch_units:.0f}: send "
                          f"at most {fits} of them at a time, or use a lower working resolution")


def batch_items(files):
    """Uploaded files and zip archives -> (how many photos, an iterator of (name, path, bytes or
    ImageError), [skip reasons]). Archives are listed first (nothing inflated) and read one
    member at a time while iterating, all of them against one InflateBudget for the request."""
    sources, skipped, count = [], [], 0
    budget = InflateBudget()
    for f in files or []:
        p = Path(str(getattr(f, "name", f)))
        if is_archive(p):
            z = ZipImages(p, budget=budget)
            sources.append(z)
            skipped += z.skipped
            count += len(z)
        else:
            sources.append([(shown_name(p.name), str(p))])
            count += 1
    if count > ZIP_MAX_FILES:
        raise gr.Error(f"{count} photos were sent; at most {ZIP_MAX_FILES} are colorized at once")

    def items():
        for src in sources:
            yield from src
    return count, items(), skipped


def _unique_name(stem: str, used: set[str]) -> str:
    out_name, k = f"{stem}.png", 1
    while out_name in used:
        k += 1
        out_name = f"{stem}_{k}.png"
    used.add(out_name)
    return out_name


def _colorize_into(zf: zipfile.ZipFile, items, count: int, c, size: int, vivid: float,
                   meter: BatchMeter, problems: list[str], progress) -> int:
    """Colorize every item into the open zip (a bad photo is noted in `problems` and skipped);
    returns how many were written."""
    used: set[str] = set()
    done = 0
    for i, (name, src) in enumerate(items):
        progress((i, count), desc=f"Colorizing {name}", unit="photos")
        try:
            if isinstance(src, ImageError):  # an archive member that could not be unpacked
                raise src
            info = inspect_image(src, name=name)
            meter.charge(info.width, info.height, name)
            rgb, _ = colorize_array(c, load(src, name), size, vivid)
        except ColorizerError as exc:
            problems.append(str(exc))
            src = None  # nothing of a refused member is kept either
            continue
        except Exception as exc:  # one bad photo never stops the batch
            log.exception("batch: %s failed", name)
            problems.append(f"{name}: could not be colorized ({type(exc).__name__})")
            continue
        out_name = _unique_name(display_name(name), used)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG", compress_level=3)
        zf.writestr(out_name, buf.getvalue())
        done += 1
        del src, rgb, buf  # nothing of a photo is kept once it is written
    return done


@user_errors
@heavy
def run_batch(files, model_name, input_size=INPUT_SIZE_DEFAULT, vividness=1.0,
              progress=gr.Progress()):
    """Many photos (and zips of photos) -> (zip of colorized PNGs, markdown summary)."""
    if not files:
        raise gr.Error("upload some photos or a zip of photos first")
    size = check_input_size(input_size)
    vivid = check_vividness(vividness)
    budget = request_budget()
    check_batch_cost(files, size, budget)
    meter = BatchMeter(budget, size)
    progress(0, desc="Unpacking")
    count, items, problems = batch_items(files)
    if not count:
        raise gr.Error(html.escape("no photos found in the upload" + (": " + "; ".join(problems[:5]) if problems else ""),
                                   quote=False), print_exception=False)
    c = get_model(model_name)
    out = new_output_dir()
    zpath = out / f"colorized_{count}_photos.zip"
    t0 = time.perf_counter()
    with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_STORED) as zf:
        done = _colorize_into(zf, items, count, c, size, vivid, meter, problems, progress)
        report = [f"{done} of {count} photos colorized with {c.name} at {size} px"]
        report += [f"skipped: {p}" for p in problems]
        zf.writestr("report.txt", "\n".join(report) + "\n")
    if done == 0:  # the page shows messages as HTML, and these hold names from the archive
        raise gr.Error(html.escape("none of the photos could be colorized: " + "; ".join(problems[:5]),
                                   quote=False), print_exception=False)
    progress((count, count), desc="Done", unit="photos")
    md = f"**{done} of {count}** photos colorized with {c.name} in {time.perf_counter() - t0:.1f} s."
    if problems:
        md += "\n\nSkipped (also listed in report.txt inside the zip):\n" + "\n".join(
            f"- {html.escape(p, quote=False)}" for p in problems[:50])
    return str(zpath), md
