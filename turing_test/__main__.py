"""python -m turing_test: build-pool, export, surveys, activate, results, serve."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _store(args):
    from .store import Store
    return Store(args.db)


def cmd_build_pool(args) -> int:
    from .pool import build_pool
    models = [m.strip() for m in args.models.split(",") if m.strip()]

    from tqdm import tqdm
    bar = tqdm(total=100, unit="%", disable=None if not args.verbose else True, file=sys.stderr,
               bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}]")

    def progress(frac, text):
        if args.verbose:
            print(f"[{frac * 100:3.0f}%] {text}", file=sys.stderr)
        else:
            bar.n = round(100 * frac)
            bar.set_description(text[:48], refresh=True)

    settings = {}
    for k in ("max_trials", "n_practice", "n_attention", "exposure_ms", "completion_code", "n_repeats"):
        v = getattr(args, k)
        if v is not None:
            settings[k] = v
    if settings:
        from .survey import check_settings
        full = dict(exposure_ms=1000, max_trials=20, n_practice=2, n_attention=2,
                    completion_code="", n_repeats=2)
        full.update(settings)
        settings = {k: v for k, v in check_settings(**full).items() if k in settings}
    rep = build_pool(_store(args), args.photos, models, survey=args.survey, size=args.size,
                     practice=args.practice, attention=args.attention, repeats=args.repeats,
                     paradigm=args.paradigm,
                     activate=not args.no_activate, seed=args.seed, progress=progress,
                     settings=settings or None)
    bar.close()
    print(rep.text())
    return 0


def _rules(st, survey_name, max_attention_failures=None):
    """The exclusion rules of a survey (the active one without a name; the defaults if none)."""
    from . import stats
    info = st.get_survey(survey_name) if survey_name else st.active_survey()
    try:
        rules = stats.ExclusionRules.from_dict((info or {}).get("exclusion_rules") or None)
    except (TypeError, ValueError):
        rules = stats.ExclusionRules()
    if max_attention_failures is not None:
        rules.max_attention_failures = int(max_attention_failures)
    return rules


def cmd_export(args) -> int:
    from . import stats
    st = _store(args)
    df = st.votes_frame(args.survey)
    rules = _rules(st, args.survey)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    stats.flag_votes(df, rules).to_csv(out, index=False)  # + fast, excluded_participant, exclusion_reason
    print(f"{len(df)} votes -> {out}")
    if args.aggregates:
        d = Path(args.aggregates)
        d.mkdir(parents=True, exist_ok=True)
        s = stats.summary(df, rules=rules)
        for key in ("models", "images", "real", "real_images", "participants", "model_stats",
                    "model_differences", "exclusions"):
            s[key].to_csv(d / f"{key}.csv", index=False)
        st.participants_frame(args.survey).to_csv(d / "participant_ids.csv", index=False)
        print(f"aggregates -> {d}/")
    return 0


def cmd_surveys(args) -> int:
    for s in _store(args).list_surveys():
        st = s["stimuli"]
        print(f"{'*' if s['active'] else ' '} {s['name']}: {s['sources']} photos, {st['real']} real, "
              f"{st['generated']} colorized, {st['attention']} attention; {s['participants']} "
              f"participants ({s['finished']} finished), {s['votes']} votes")
    return 0


def cmd_activate(args) -> int:
    _store(args).set_active(args.survey)
    print(f"survey {args.survey!r} is now the one participants get")
    return 0


def cmd_results(args) -> int:
    import pandas as pd
    from . import stats
    st = _store(args)
    df = st.votes_frame(args.survey)
    s = stats.summary(df, rules=_rules(st, args.survey, args.max_attention_failures))
    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.max_colwidth", 120):
        print(f"{s['n_votes']} counted votes from {s['n_participants']} participants; "
              f"excluded by the survey's rules: {len(s['excluded'])}")
        ex = s["exclusions"]
        if len(ex) and ex["excluded"].any():
            print(ex.loc[ex["excluded"], ["participant", "reasons"]].to_string(index=False))
        print("\nper model (fooling rate = share judged real; 95% Wilson and bootstrap intervals, "
              "d' and criterion):")
        print(s["model_stats"].round(3).to_string(index=False) if len(s["model_stats"]) else "  no votes yet")
        if len(s["model_differences"]):
            print("\ndifferences between models (bootstrap over participants and photos):")
            print(s["model_differences"].round(3).to_string(index=False))
        print("\nreal photos (share judged real):")
        print(s["real"].to_string(index=False) if len(s["real"]) else "  no votes yet")
    return 0


def cmd_serve(args) -> int:
    from .ui import serve
    serve(args.db, host=args.host, port=args.port, demo_survey=not args.no_demo, concurrency=args.concurrency)
    return 0


def main(argv=None) -> int:
    from .survey import SurveyError
    p = argparse.ArgumentParser(prog="python -m turing_test", description=__doc__)
    p.add_argument("--db", default=None, help="database URL (default: $TURING_DB_URL or ./data/turing.db)")
    sub = p.add_subparsers(dest="cmd", required=True)

    b = sub.add_parser("build-pool", help="make the stimuli of a survey from a folder of color photos")
    b.add_argument("--photos", required=True, help="folder (searched recursively) or one photo")
    b.add_argument("--models", required=True, help="model names, comma-separated (python -m colorizer models), or `all`: every model "
                        "whose weights are present")
    b.add_argument("--size", type=int, default=256, help="stimulus size in px (square; default 256)")
    b.add_argument("--survey", required=True, help="survey name (created, or extended when it exists)")
    b.add_argument("--practice", type=int, default=2, help="source photos kept for practice trials (default 2)")
    b.add_argument("--attention", type=int, default=None,
                   help="source photos that also get an attention-check version (default: a tenth, at least 1)")
    b.add_argument("--paradigm", choices=["single", "pair"], default=None,
                   help="single: one photo at a time, real or colorized? (default); pair: a real photo "
                        "and its colorization side by side, which is colorized? (Zhang et al. 2016)")
    b.add_argument("--repeats", type=int, default=None,
                   help="source photos whose versions get a twin for consistency checks (default: as --attention)")
    b.add_argument("--n-repeats", dest="n_repeats", type=int, default=None,
                   help="repeated photos per participant, a consistency check each (default 2)")
    b.add_argument("--max-trials", dest="max_trials", type=int, default=None, help="counted trials per participant (default 20)")
    b.add_argument("--n-practice", dest="n_practice", type=int, default=None, help="practice trials per participant (default 2)")
    b.add_argument("--n-attention", dest="n_attention", type=int, default=None, help="attention checks per participant (default 2)")
    b.add_argument("--exposure-ms", dest="exposure_ms", type=int, default=None, help="how long each photo shows, 0 = until answered (default 1000)")
    b.add_argument("--completion-code", dest="completion_code", default=None, help="code shown at the end (e.g. Prolific's)")
    b.add_argument("--no-activate", action="store_true", help="do not make it the survey participants get")
    b.add_argument("--seed", type=int, default=None)
    b.add_argument("--db", default=argparse.SUPPRESS)
    b.add_argument("-v", "--verbose", action="store_true")
    b.set_defaults(fn=cmd_build_pool)

    e = sub.add_parser("export", help="votes to CSV (and aggregates)")
    e.add_argument("-o", "--output", default="votes.csv")
    e.add_argument("--survey", default=None)
    e.add_argument("--aggregates", default=None, metavar="DIR", help="also write per-model/image/participant CSVs here")
    e.add_argument("--db", default=argparse.SUPPRESS)
    e.set_defaults(fn=cmd_export)

    s = sub.add_parser("surveys", help="list surveys with their counts")
    s.add_argument("--db", default=argparse.SUPPRESS)
    s.set_defaults(fn=cmd_surveys)

    a = sub.add_parser("activate", help="make a survey the one participants get")
    a.add_argument("survey")
    a.add_argument("--db", default=argparse.SUPPRESS)
    a.set_defaults(fn=cmd_activate)

    r = sub.add_parser("results", help="fooling rates per model")
    r.add_argument("--survey", default=None)
    r.add_argument("--max-attention-failures", type=int, default=None,
                   help="override the survey's rule (failed attention checks allowed)")
    r.add_argument("--db", default=argparse.SUPPRESS)
    r.set_defaults(fn=cmd_results)

    v = sub.add_parser("serve", help="serve only the Turing test tabs (app.py serves the whole app)")
    v.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    v.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    v.add_argument("--no-demo", action="store_true", help="do not create the demo survey on an empty database")
    v.add_argument("--concurrency", type=int, default=4)
    v.add_argument("--db", default=argparse.SUPPRESS)
    v.set_defaults(fn=cmd_serve)

    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except SurveyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
