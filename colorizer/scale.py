"""Archive-scale colorization with Ray Data (`python -m colorizer colorize-ray`).

The driver lists the photos and names their outputs exactly as `colorize` does (colorizer/batch.py);
photos whose output is already there are skipped (a rerun carries on). The rest become a dataset:
one read stage loads each photo's bytes, and a pool of actors (`map_batches` with a callable
class, one CPU each) loads the model once per actor, colorizes and writes each output itself
(complete or not at all). Photos that cannot be read or colorized are collected, not fatal, and
listed in OUTPUT/manifest.csv (name, reason); the manifest is rewritten by every run.

Touches: the input photos (read), OUTPUT (outputs and manifest.csv), and a Ray session: a local
one with --workers CPUs that it starts and stops, or the cluster at --address, or the session
already started in this process (left running). Needs Ray (requirements-scale.txt); only the
colorize-ray command imports this module.
"""
from __future__ import annotations

import csv
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .batch import OutputFormat, Outcome, check_model, output_names, save_output
from .errors import ColorizerError

MANIFEST = "manifest.csv"


@dataclass(frozen=True)
class RayJob:
    """One colorize-ray run: the model, where the outputs go and how, and the Ray to run on."""
    model: str = "default"
    output: Path = Path("out")
    kind: str = "png"
    quality: int = 90
    workers: int = 2  # actors (one CPU each); also the CPUs of a local Ray
    address: str | None = None  # ray://HOST:PORT of a cluster; None: a local Ray
    input_size: int | None = None
    quiet: bool = False


@dataclass
class RayReport:
    """What a run did: the outcome of the photos it tried, those skipped as already written, the
    manifest's path and the model's registered name."""
    outcome: Outcome
    skipped_existing: int
    manifest: Path
    model: str


def _read_photo(row: dict) -> dict:
    """Read stage: the photo's bytes, or the reason they cannot be read."""
    try:
        row["data"] = Path(row["src"]).read_bytes()
        row["reason"] = ""
    except OSError as exc:
        row["data"] = b""
        row["reason"] = f"cannot read {row['src']}: {exc.strerror or exc}"
    return row


class ColorizeActor:
    """A Ray Data actor: loads the model once, then colorizes and writes each photo it is given.
    Returns per photo its index, name, status (written | failed | fatal) and reason."""

    def __init__(self, model: str, input_size, kind: str, quality: int, threads: int = 1):
        import torch
        torch.set_num_threads(threads)
        from . import load_colorizer
        self.fmt = OutputFormat(kind, quality)
        self.error = None
        try:
            self.c = load_colorizer(model, input_size=input_size)
        except ColorizerError as exc:  # e.g. the weights are not on this node
            self.c, self.error = None, f"the model could not be loaded on a Ray node: {exc}"

    def _one(self, src: str, dst: str, data, read_error: str) -> tuple[str, str]:
        if self.c is None:
            return "fatal", self.error
        if read_error:
            return "failed", read_error
        try:
            rgb = self.c.colorize(bytes(data))
        except ColorizerError as exc:
            return "failed", str(exc)
        except Exception as exc:  # an archive job goes on; the manifest says what happened
            return "failed", f"{type(exc).__name__}: {exc}"
        try:
            save_output(rgb, Path(dst), self.fmt)
        except OSError as exc:
            return "failed", f"cannot write {dst}: {exc.strerror or exc}"
        return "written", ""

    def __call__(self, batch: dict) -> dict:
        status, reason = [], []
        for src, dst, data, err in zip(batch["src"], batch["dst"], batch["data"], batch["reason"]):
            s, r = self._one(str(src), str(dst), data, str(err))
            status.append(s)
            reason.append(r)
        return {"index": batch["index"], "name": batch["name"], "status": status, "reason": reason}


def write_manifest(path: Path, failed) -> None:
    """OUTPUT/manifest.csv: one row (name, reason) per photo that was not colorized."""
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["name", "reason"])
        for name, reason in failed:
            w.writerow([str(name), reason])
    tmp.replace(path)


def read_manifest(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _connect(job: RayJob) -> bool:
    """Make sure this process has a Ray session; True when this call started it (and so stops it)."""
    import ray
    if ray.is_initialized():
        return False
    # the notice that a new local Ray enables token authentication (it does, and stays on)
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    opts = dict(logging_level=logging.WARNING, log_to_driver=False)
    try:
        if job.address:
            ray.init(address=job.address, **opts)
        else:
            ray.init(num_cpus=job.workers, include_dashboard=False, **opts)
    except Exception as exc:  # a bad address, a cluster that does not answer, a version mismatch
        where = job.address or "a local Ray"
        raise ColorizerError(f"cannot start or reach {where}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    return True


def run_job(files, job: RayJob) -> RayReport:
    """Colorize `files` into job.output on Ray; see the module's docstring."""
    import ray
    import ray.data
    from tqdm import tqdm

    fmt = OutputFormat(job.kind, job.quality)  # a bad quality: ValueError, before anything starts
    if job.address:
        from .registry import resolve
        model = resolve(job.model).name  # the weights need to be on the cluster's nodes, not here
    else:
        model = check_model(job.model)
    out_dir = Path(job.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / MANIFEST
    pairs = list(zip(files, output_names(files, out_dir, fmt.suffix)))
    todo = [(i, src, dst) for i, (src, dst) in enumerate(pairs) if not dst.exists()]
    report = RayReport(Outcome(total=len(todo)), len(pairs) - len(todo), manifest, model)
    if not todo:
        write_manifest(manifest, [])
        return report

    started = _connect(job)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its notice that progress bars are off
    failed: dict[int, str] = {}
    t0 = time.perf_counter()
    bar = tqdm(total=len(todo), unit="img", desc=f"colorize-ray ({model}, {job.workers} actors)",
               disable=job.quiet or None)
    try:
        ds = ray.data.from_items([{"index": i, "name": str(src), "src": str(Path(src).resolve()),
                                   "dst": str(dst.resolve())} for i, src, dst in todo])
        ds = ds.map(_read_photo)
        ds = ds.map_batches(ColorizeActor, batch_size=1, num_cpus=1,
                            compute=ray.data.ActorPoolStrategy(size=min(job.workers, len(todo))),
                            fn_constructor_kwargs=dict(model=job.model, input_size=job.input_size,
                                                       kind=fmt.kind, quality=fmt.quality))
        for row in ds.iter_rows():
            if row["status"] == "fatal":
                report.outcome.error = row["reason"]
                break
            if row["status"] == "failed":
                failed[int(row["index"])] = row["reason"]
                tqdm.write(f"not colorized {row['name']}: {row['reason']}", file=sys.stderr)
            else:
                report.outcome.done += 1
            bar.update(1)
    except ray.exceptions.RayError as exc:
        report.outcome.error = (f"the Ray job stopped ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                                "the outputs written so far are kept: run the command again to carry on")
    finally:
        bar.close()
        report.outcome.seconds = time.perf_counter() - t0
        report.outcome.failed = [(pairs[i][0], failed[i]) for i in sorted(failed)]
        write_manifest(manifest, report.outcome.failed)
        if started:
            ray.shutdown()
    return report
