"""The colorization Turing test: real and colorized photos, "Is this photo real?", fooling rates.

    python -m turing_test build-pool --photos DIR --models default --survey pilot
    python -m turing_test export -o votes.csv

    import turing_test
    df = turing_test.export_votes("sqlite:///data/turing.db")   # one row per vote

The Gradio tabs live in turing_test.ui (build_turing_tabs); the database URL comes from
$TURING_DB_URL and the admin token from $TURING_ADMIN_TOKEN.
"""
from __future__ import annotations

__all__ = ["export_votes", "VOTE_COLUMNS"]

VOTE_COLUMNS = ["participant", "stimulus", "source", "kind", "model", "answer_real",
                "response_ms", "voted_at", "practice", "server_ms", "repeat_of", "paradigm", "fooled"]


def export_votes(db_url: str | None = None, survey: str | None = None):
    """All votes as a pandas DataFrame, one row per vote, oldest first.

    Columns: participant (random participant id; the Prolific/typed ids are in the participants
    export), stimulus (random stimulus id), source (source photo name), kind ("real",
    "generated", "attention"), model (generated only, else None), answer_real (bool),
    response_ms (Int64, may be missing: the browser's measure when plausible, else the server's),
    voted_at (UTC datetime), practice (bool), server_ms (Int64: the server's own time from
    handing out the image to the vote; missing for votes stored before it was recorded),
    repeat_of (for a repeated photo, a consistency check: the stimulus id of its first showing;
    else None; repeats never count in the fooling rates), paradigm ("single" or "pair"), fooled
    (pair trials: True when the real photo was picked as the colorized one; else None). In a pair
    survey kind is "pair" (a colorization beside its real photo) or "pair_catch" (the wrongly
    colored version beside it) and answer_real equals fooled.
    db_url: a SQLAlchemy URL (default: $TURING_DB_URL, else the default SQLite file);
    survey: only this survey's votes.
    """
    from pathlib import Path

    from sqlalchemy.engine import make_url

    from . import db
    from .store import Store
    url = make_url(db.normalize_url(db_url or db.default_db_url()))
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not Path(url.database).exists():
        raise FileNotFoundError(f"there is no Turing test database at {url.database}")
    return Store(url.render_as_string(hide_password=False)).votes_frame(survey)
