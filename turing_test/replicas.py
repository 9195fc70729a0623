"""Several survey processes on one database: the checks and the preparation before they start.

Used by `scripts/serve_replicas.sh` (and by hand):

    python -m turing_test.replicas check N      # exit 2 with a message if N replicas cannot share it
    python -m turing_test.replicas prepare N    # check, create tables and keys, the demo survey

The database is `$TURING_DB_URL` (or `--db URL`). Several replicas need PostgreSQL: each
process keeps SQLite's one writer in order with a lock of its own, which other processes do not
see, and a SQLite file cannot be shared by processes on other machines at all. Preparing once,
before the replicas start, spares them racing each other to create tables, keys and the demo
survey. Touches the database only (no gradio).
"""
from __future__ import annotations

import argparse
import sys

from . import db
from .survey import SurveyError


def check_database(url: str | None, replicas: int) -> str:
    """The normalized URL if `replicas` processes can share this database; else SurveyError."""
    if not isinstance(replicas, int) or replicas < 1:
        raise SurveyError("the number of replicas must be a whole number of at least 1")
    url = db.normalize_url(url or db.default_db_url())
    try:
        sqlite = db.is_sqlite(url)
    except Exception as exc:  # an unparsable URL
        raise SurveyError(f"TURING_DB_URL is not a database URL: {exc}") from None
    if replicas > 1 and sqlite:
        raise SurveyError(
            f"{replicas} replicas need one PostgreSQL database (TURING_DB_URL=postgresql://"
            "user:password@host/db), not SQLite: SQLite's writers are kept in order inside one "
            "process only, and its file cannot be shared by other machines. Serve one replica "
            "on SQLite, or set TURING_DB_URL to PostgreSQL (try-out: bash scripts/ci_postgres.sh "
            "prints the URL of a local one)")
    return url


def prepare(url: str | None, replicas: int, demo: bool = True) -> str:
    """Check the database, create its tables, keys and (if it has no survey and demo) the demo
    survey; a line saying what the replicas will serve."""
    from .store import Store
    url = check_database(url, replicas)
    try:
        st = Store(url)  # creates the tables, the missing columns and the secrets
    except Exception as exc:  # unreachable server, wrong password, missing database
        raise SurveyError(f"cannot open the database: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if demo and not st.has_surveys():
        from .pool import ensure_demo_survey
        note = ensure_demo_survey(st)
    else:
        sv = st.active_survey()
        note = (f"active survey: {sv['name']}" if sv else
                "no survey is active: build one (python -m turing_test build-pool ...) or "
                "choose one in the admin tab")
    st.engine.dispose()
    return note


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m turing_test.replicas", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("check", "prepare"))
    p.add_argument("replicas", type=int)
    p.add_argument("--db", default=None, help="database URL (default: $TURING_DB_URL)")
    p.add_argument("--no-demo", action="store_true", help="do not create the demo survey")
    args = p.parse_args(argv)
    try:
        if args.action == "check":
            check_database(args.db, args.replicas)
            print("ok")
        else:
            print(prepare(args.db, args.replicas, demo=not args.no_demo))
    except SurveyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
