"""Command line of the colorizer package.

    python -m colorizer colorize INPUT... -o OUT_DIR [--model NAME] [--workers N]
    python -m colorizer colorize-ray INPUT... -o OUTPUT [--address ray://...] [--workers N] [--format png|jpeg]
    python -m colorizer evaluate DIR... --model NAME [--json FILE] [--save DIR] [--hints K | --variations N]
    python -m colorizer train --data DIR... --arch ... --head ... --out weights/NAME.pt
    python -m colorizer bench
    python -m colorizer realism --models gray default --train DIR... --test DIR...
    python -m colorizer models
    python -m colorizer weights fetch eccv16 | siggraph17

argparse front end only: one `_add_*` parser function per subcommand, whose work is imported
lazily from the module that does it; model names come from colorizer.registry.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from .errors import ColorizerError


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


# --- colorize ------------------------------------------------------------------------------------

def _output_names(files, out_dir: Path) -> list[Path]:
    """OUT_DIR/<stem>.png, with a numeric suffix where two inputs share a stem (colorizer/batch.py)."""
    from .batch import output_names
    return output_names(files, out_dir)


def _listing(inputs):
    """The image files of the inputs, after a message for each input that does not exist; None
    after a message when there is none."""
    from .batch import find_photos
    listing = find_photos(inputs)
    for p in listing.missing:
        _err(f"{p}: no such file or folder, skipped")
    if not listing.files:
        _err("no image files to colorize")
        return None
    return listing


def _summary(outcome, name: str, out_dir: Path, names: bool = True) -> str:
    """The closing line; names: list the photos skipped (else only their count)."""
    failed = outcome.failed
    line = f"colorized {outcome.done} of {outcome.total} photo(s) with {name} in {outcome.seconds:.1f} s -> {out_dir}"
    if failed and names:
        line += f"; {len(failed)} skipped: " + ", ".join(str(f) for f, _ in failed)
    return line


def _checked_listing(args):
    """--workers checked and the inputs listed (colorize and colorize-ray), or None after the
    message."""
    if args.workers < 1:
        _err(f"--workers must be at least 1, not {args.workers}")
        return None
    return _listing(args.inputs)


def cmd_colorize(args) -> int:
    from .batch import check_model, colorize_parallel, colorize_serial

    listing = _checked_listing(args)
    if listing is None:
        return 2
    files, out_dir = listing.files, Path(args.output)
    if args.workers == 1:
        from . import load_colorizer
        c = load_colorizer(args.model, device=args.device, input_size=args.input_size)
        name = c.name
        out_dir.mkdir(parents=True, exist_ok=True)
        outcome = colorize_serial(c, list(zip(files, _output_names(files, out_dir))), quiet=args.quiet)
    else:
        name = check_model(args.model)  # a bad name or missing weights: the message, before any process
        out_dir.mkdir(parents=True, exist_ok=True)
        workers = min(args.workers, len(files))
        outcome = colorize_parallel(list(zip(files, _output_names(files, out_dir))), workers, args.model,
                                    device=args.device, input_size=args.input_size, quiet=args.quiet,
                                    label=name)
    print(_summary(outcome, name, out_dir))
    if outcome.error:
        _err(outcome.error)
        return 2
    return 1 if outcome.failed or listing.missing else 0


def cmd_colorize_ray(args) -> int:
    try:
        importlib.import_module("ray")  # only to say how to install it when it is missing
    except ImportError:
        _err("colorize-ray needs Ray: pip install -r requirements-scale.txt")
        return 2
    from .scale import RayJob, run_job
    listing = _checked_listing(args)
    if listing is None:
        return 2
    job = RayJob(model=args.model, output=Path(args.output), kind=args.format, quality=args.quality,
                 workers=args.workers, address=args.address, input_size=args.input_size, quiet=args.quiet)
    report = run_job(listing.files, job)
    if report.skipped_existing:
        print(f"skipped {report.skipped_existing} photo(s) whose output is already in {job.output}")
    print(_summary(report.outcome, report.model, job.output, names=False))
    if report.outcome.failed:
        print(f"{len(report.outcome.failed)} photo(s) not colorized: names and reasons in {report.manifest}")
    if report.outcome.error:
        _err(report.outcome.error)
        return 2
    return 1 if report.outcome.failed or listing.missing else 0


# --- evaluate ------------------------------------------------------------------------------------

def _evaluate_sets(c, args, errors) -> dict | None:
    """Each folder's (rows, means) for one loaded model; None after a message when a folder is bad."""
    from .evaluate import evaluate_folder
    sets = {}
    for d in args.dirs:
        save = Path(args.save) / c.name / Path(d).name if args.save and args.models else \
            (Path(args.save) / Path(d).name if args.save else None)
        try:
            rows, means = evaluate_folder(c, [d], save_dir=save, batch_size=args.batch_size,
                                          progress=not args.quiet,
                                          on_error=lambda f, m: errors.append((f, m)),
                                          hints=args.hints, variations=args.variations, limit=args.limit,
                                          spread=not args.no_spread)
        except ValueError as exc:
            _err(str(exc))
            return None
        sets[str(d)] = (rows, means)
    return sets


def cmd_evaluate(args) -> int:
    from . import load_colorizer
    from .evaluate import format_table, write_json

    for d in args.dirs:
        if not Path(d).exists():
            _err(f"{d}: no such file or folder")
            return 2
    if args.models:
        return _evaluate_models(args)
    c = load_colorizer(args.model, device=args.device, input_size=args.input_size)
    for option in ("temperature", "correction", "gain"):
        value = getattr(args, option)
        if value is not None:
            head = getattr(c.model, "head", None)
            if head is None or not hasattr(head, option):
                _err(f"model {c.name} has no decoding {option} (only classification heads do)")
                return 2
            setattr(head, option, value)
    errors: list = []
    sets = _evaluate_sets(c, args, errors)
    if sets is None:
        return 2
    for f, m in errors:
        _err(f"skipped {f}: {m}")
    if args.per_image:
        for rows, _ in sets.values():
            for r in rows:
                print(f"{r['image']}: " + " ".join(f"{k}={r[k]:.3f}" for k in r if k != "image"))
    print(f"model {c.name} (working resolution {c.input_size}{_mode(args)})")
    print(format_table(sets))
    if args.json:
        write_json(args.json, c.name, sets)
        print(f"wrote {args.json}")
    if args.save:
        print(f"outputs and Delta E 2000 heat maps in {args.save}")
    return 0


def _mode(args) -> str:
    return (f", {args.hints} hints from the truth per photo" if args.hints else "") + \
           (" (network only, not spread)" if args.hints and args.no_spread else "") + \
           (f", {args.variations} variations per photo (metrics averaged over them)" if args.variations else "")


def _evaluate_models(args) -> int:
    """evaluate --models A B ... | all: every model on the same photos, one table."""
    from . import load_colorizer
    from .evaluate import GrayInput, format_comparison, write_comparison_json
    from .registry import entries, resolve

    if any(getattr(args, o) is not None for o in ("temperature", "correction", "gain")):
        _err("--temperature, --correction and --gain apply to one model: use --model NAME with them")
        return 2
    if args.models == ["all"]:
        names = [e.name for e in entries(include_missing=False)]
        missing = [e.name for e in entries() if not e.available]
        for name in missing:
            print(f"{name}: weights not present, skipped")
    else:
        names = []
        for name in args.models:
            if name == "gray":  # the gray input itself, the baseline
                names.append("gray")
                continue
            entry = resolve(name)  # unknown names: a clear error listing the models
            if entry.name not in names:
                names.append(entry.name)
    if not names:
        _err("no model has its weights present: `python -m colorizer models` lists them")
        return 2
    results, errors = {}, []
    for name in names:
        try:
            c = GrayInput() if name == "gray" else load_colorizer(name, device=args.device,
                                                                 input_size=args.input_size)
        except ColorizerError as exc:
            if args.models != ["all"]:
                raise
            print(f"{name}: cannot be loaded, skipped ({exc})")
            continue
        if (args.hints and not c.accepts_hints) or (args.variations and not c.predicts_distribution):
            print(f"{name}: takes no hints / variations, skipped")
            continue
        sets = _evaluate_sets(c, args, errors)
        if sets is None:
            return 2
        results[name] = sets
    for f, m in dict.fromkeys(errors):
        _err(f"skipped {f}: {m}")
    print(f"{len(results)} models on the same photos{_mode(args)}")
    print(format_comparison(results))
    if args.json:
        write_comparison_json(args.json, results)
        print(f"wrote {args.json}")
    return 0


# --- realism -------------------------------------------------------------------------------------

def cmd_realism(args) -> int:
    from .realism import run
    for d in list(args.train) + list(args.test):
        if not Path(d).exists():
            _err(f"{d}: no such file or folder")
            return 2
    overlap = {Path(d).resolve() for d in args.train} & {Path(d).resolve() for d in args.test}
    if overlap:
        _err("the training and test photos must be disjoint: " + ", ".join(map(str, overlap)))
        return 2
    run(args.models, args.train, args.test, args.train_count, args.test_count, args.json)
    if args.json:
        print(f"wrote {args.json}")
    return 0


# --- models, weights, bench, train ----------------------------------------------------------------

def cmd_models(args) -> int:
    from .registry import list_models
    rows = list_models(include_missing=True)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'name':<14} {'status':<16} {'arch':<14} {'size':>5}  description")
    for r in rows:
        status = "ready" if r["available"] else ("not downloaded" if r["official"] else "weights missing")
        name = r["name"] + (" (default)" if "default" in r["aliases"] else "")
        print(f"{name:<14} {status:<16} {r['arch']:<14} {r['input_size']:>5}  {r['description']}")
        if r.get("paper_note"):
            print(f"{'':<14} paper: note {r['paper_note']}")
        for set_name, sc in (r.get("scores") or {}).items():
            print(f"{'':<14} {set_name}: " + ", ".join(f"{k} {v}" for k, v in sc.items()))
    missing = [r["name"] for r in rows if r["official"] and not r["available"]]
    if missing:
        print(f"\nofficial weights: python -m colorizer weights fetch {' | '.join(missing)}")
    return 0


def cmd_weights(args) -> int:
    from .registry import official_names, weights_dir
    from .weights import fetch_official, official_file, sha256_of
    if args.action == "fetch":
        for name in args.names:
            path = fetch_official(name, dest_dir=args.dir or weights_dir())
            print(f"{name}: {path} (sha256 verified)")
        return 0
    if args.action == "verify":
        ok = True
        for name in official_names():
            spec = official_file(name)
            p = Path(args.dir or weights_dir()) / spec.file
            if not p.exists():
                print(f"{name}: not present ({p})")
                continue
            good = sha256_of(p) == spec.sha256
            ok &= good
            print(f"{name}: {'ok' if good else 'SHA256 MISMATCH: fetch it again'} ({p})")
        return 0 if ok else 1
    return 2


def cmd_pack(args) -> int:
    from .data import write_pack
    write_pack(args.data, args.out, args.data_weights, args.max_mb, args.size, args.seed)
    return 0


def cmd_bench(args) -> int:
    if args.train:
        from . import bench_train
        res = bench_train.run(sizes=args.train_sizes, batch=args.train_batch, rounds=args.rounds,
                              data=args.data, threads=args.threads)
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=1))
            print(f"wrote {args.json}")
        return 0
    from . import bench
    res = bench.run(models=args.models, extra_archs=args.all_archs, size=args.size, batch=args.batch,
                    min_seconds=args.seconds, big=not args.no_big, megapixels=args.megapixels,
                    threads=args.threads)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
        print(f"wrote {args.json}")
    return 0


def _model_help() -> str:
    from .registry import ALIASES, REGISTRY
    return (f"a registered model ({', '.join(REGISTRY)}), {' or '.join(ALIASES)}, or the name of a "
            "checkpoint in the weights folder (default: default)")


def _add_colorize(sub) -> None:
    """`colorize INPUT... -o OUT_DIR`: photos into a folder of PNGs, in one or N processes."""
    c = sub.add_parser("colorize", help="colorize photos (files or folders) into a folder of PNGs")
    c.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    c.add_argument("-o", "--output", required=True, metavar="OUT_DIR")
    c.add_argument("--model", default="default", help=_model_help())
    c.add_argument("--input-size", type=int, default=None, help="working resolution (default: the model's)")
    c.add_argument("--device", default=None)
    c.add_argument("--workers", type=int, default=1, metavar="N",
                   help="N processes on this machine, each with its share of the CPU threads (default 1)")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=cmd_colorize)


def _add_colorize_ray(sub) -> None:
    """`colorize-ray INPUT... -o OUTPUT`: an archive through Ray Data actors."""
    cr = sub.add_parser("colorize-ray", help="colorize an archive with Ray Data: a pool of actors, a "
                        "manifest of the photos that failed, reruns skip what is written "
                        "(pip install -r requirements-scale.txt)")
    cr.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    cr.add_argument("-o", "--output", required=True, metavar="OUTPUT")
    cr.add_argument("--address", default=None, metavar="ray://HOST:PORT",
                    help="a Ray cluster (default: start a local Ray with --workers CPUs)")
    cr.add_argument("--model", default="default", help=_model_help())
    cr.add_argument("--input-size", type=int, default=None, help="working resolution (default: the model's)")
    cr.add_argument("--format", choices=["png", "jpeg"], default="png")
    cr.add_argument("--quality", type=int, default=90, metavar="Q", help="JPEG quality, 1 to 95 (default 90)")
    cr.add_argument("--workers", type=int, default=2, metavar="N",
                    help="actors, one CPU each, each loading the model once (default 2)")
    cr.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    cr.set_defaults(func=cmd_colorize_ray)


def _add_evaluate(sub) -> None:
    """`evaluate DIR...`: one model's scores, or several models' on the same photos."""
    e = sub.add_parser("evaluate", help="score a model on folders of color photos")
    e.add_argument("dirs", nargs="+", metavar="DIR")
    e.add_argument("--model", default="default", help=_model_help())
    e.add_argument("--models", nargs="+", default=None, metavar="NAME",
                   help="compare several models on the same photos (`all`: every model whose weights are present; `gray`: the gray input itself, the baseline)")
    e.add_argument("--json", default=None, metavar="FILE", help="write per-image and mean scores")
    e.add_argument("--save", default=None, metavar="DIR", help="write outputs and Delta E heat maps")
    e.add_argument("--input-size", type=int, default=None)
    e.add_argument("--temperature", type=float, default=None, help="annealed-mean temperature override")
    e.add_argument("--correction", type=float, default=None,
                   help="rebalancing correction override (classification heads; 0 vivid .. 1 accurate)")
    e.add_argument("--gain", type=float, default=None, help="chroma gain override (classification heads)")
    e.add_argument("--hints", type=int, default=0, metavar="K",
                   help="colorize with K color hints taken from the truth (hint models)")
    e.add_argument("--no-spread", action="store_true",
                   help="with --hints: give the hints to the network only, without spreading them along edges")
    e.add_argument("--variations", type=int, default=0, metavar="N",
                   help="sample N variations per photo; report their diversity (mean pairwise dE2000)")
    e.add_argument("--limit", type=int, default=None, metavar="N",
                   help="only N photos per folder, evenly spaced (quick checks)")
    e.add_argument("--batch-size", type=int, default=16)
    e.add_argument("--per-image", action="store_true", help="print every image's scores")
    e.add_argument("--device", default=None)
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=cmd_evaluate)


def _add_realism(sub) -> None:
    """`realism`: accuracy of a real-vs-colorized classifier per model."""
    r = sub.add_parser("realism", help="realism score: accuracy of a real-vs-colorized classifier per model")
    r.add_argument("--models", nargs="+", default=["gray", "default"],
                   help="models to score ('gray' is the gray input itself)")
    r.add_argument("--train", nargs="+", required=True, metavar="DIR", help="photos the classifier learns from")
    r.add_argument("--test", nargs="+", required=True, metavar="DIR", help="disjoint photos it is tested on")
    r.add_argument("--train-count", type=int, default=400)
    r.add_argument("--test-count", type=int, default=300)
    r.add_argument("--json", default=None, metavar="FILE")
    r.set_defaults(func=cmd_realism)


def _add_train(sub) -> None:
    """`train`: its options are colorizer.train's."""
    from . import train as train_mod
    t = sub.add_parser("train", help="train a model on folders of color photos")
    train_mod.add_arguments(t)
    t.set_defaults(func=train_mod.main)


def _add_pack(sub) -> None:
    """`pack DIR... -o DIR`: a compact training pack."""
    k = sub.add_parser("pack", help="write a compact training pack (decoded square crops) to copy to another machine")
    k.add_argument("data", nargs="+", metavar="DIR", help="folders of color photos")
    k.add_argument("-o", "--out", required=True, metavar="DIR", help="the pack's folder (train --pack DIR)")
    k.add_argument("--data-weights", type=float, nargs="+", default=None, metavar="W",
                   help="each folder's relative share of the pack (default: in proportion to its photos)")
    k.add_argument("--max-mb", type=float, default=60.0, help="size limit of the pack's pixels")
    k.add_argument("--size", type=int, default=128, help="side of the square crops")
    k.add_argument("--seed", type=int, default=0)
    k.set_defaults(func=cmd_pack)


def _add_bench(sub) -> None:
    """`bench`: inference (or, with --train, training) speed."""
    b = sub.add_parser("bench", help="images per second per architecture; 12 MP photo time and memory")
    b.add_argument("--models", nargs="*", default=None, help="registered models to time (default: all usable)")
    b.add_argument("--all-archs", action="store_true", help="also time our other architectures (random weights)")
    b.add_argument("--size", type=int, default=256)
    b.add_argument("--batch", type=int, default=8)
    b.add_argument("--seconds", type=float, default=3.0, help="minimum timing per model")
    b.add_argument("--megapixels", type=float, default=12.0)
    b.add_argument("--no-big", action="store_true", help="skip the 12 MP photo")
    b.add_argument("--threads", type=int, default=None)
    b.add_argument("--json", default=None, metavar="FILE")
    b.add_argument("--train", action="store_true",
                   help="time training instead: images per second of the old and the new training path")
    b.add_argument("--train-sizes", type=int, nargs="+", default=[128, 224], metavar="PX",
                   help="crop sizes for --train")
    b.add_argument("--train-batch", type=int, default=32, help="batch size for --train")
    b.add_argument("--rounds", type=int, default=5, help="timed rounds per path for --train")
    b.add_argument("--data", nargs="*", default=None, metavar="DIR",
                   help="photos for --train (default: scikit-image's sample photos)")
    b.set_defaults(func=cmd_bench)


def _add_models(sub) -> None:
    """`models`: the registry's models, whether their weights are present, their scores."""
    m = sub.add_parser("models", help="list models, whether their weights are present, and scores")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)


def _add_weights(sub) -> None:
    """`weights fetch NAME... | verify`: the official weights the registry names."""
    from .registry import official_names
    w = sub.add_parser("weights", help="download (fetch) or check (verify) the official Zhang et al. weights")
    wsub = w.add_subparsers(dest="action", required=True, metavar="ACTION")
    f = wsub.add_parser("fetch", help="download official weights, checking size and sha256")
    f.add_argument("names", nargs="+", choices=official_names())
    f.add_argument("--dir", default=None, help="destination (default: the weights folder)")
    v = wsub.add_parser("verify", help="check the sha256 of official weights present")
    v.add_argument("--dir", default=None)
    w.set_defaults(func=cmd_weights)


_SUBCOMMANDS = (_add_colorize, _add_colorize_ray, _add_evaluate, _add_realism, _add_train, _add_pack,
                _add_bench, _add_models, _add_weights)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m colorizer",
                                description="Colorize black-and-white photos; evaluate, train and time models.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ColorizerError as exc:
        _err(str(exc))
        return 2
    except (FileNotFoundError, ValueError) as exc:
        _err(str(exc))
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
