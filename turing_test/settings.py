"""The Turing test's settings, read from the environment in this one place.

    TURING_DB_URL           the database (default: /data/turing.db on a Space with persistent
                            storage, else ./data/turing.db; SQLite)
    TURING_ADMIN_TOKEN      the admin tab's secret (empty: the tab is off)
    TURING_DEMO             0/false/no/off: no demo survey on an empty database (default on)
    TURING_STIMULUS_CACHE   folder the stimulus files are served from (default: turing_stimuli
                            in the system temp folder)
    TURING_CONCURRENCY      participant events (votes) handled at once (default 16)

`Settings.from_env()` reads them; a bad number is reported in the log and the default used.
Nothing else in the package reads these variables, and nothing writes them: the command line
passes its `--db` down as an argument. (TURING_TRUSTED_PROXY is read by
scripts/serve_replicas.sh for nginx, not by Python.) Pure: no database, no gradio.
"""
from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("turing_test.settings")

ADMIN_ENV = "TURING_ADMIN_TOKEN"
CONCURRENCY = 16
OFF = ("0", "false", "no", "off")


def space_db_url() -> str:
    """The default database: /data/turing.db on a Space with persistent storage (/data exists
    and is writable), else ./data/turing.db."""
    space = Path("/data")
    if space.is_dir() and os.access(space, os.W_OK):
        return f"sqlite:///{space / 'turing.db'}"
    return f"sqlite:///{Path.cwd() / 'data' / 'turing.db'}"


def _count(env, name: str, default: int, minimum: int = 1, maximum: int = 1024) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        v = int(raw)
    except ValueError:
        v = minimum - 1
    if not minimum <= v <= maximum:
        log.warning("%s=%r is not a whole number from %d to %d: using %d", name, raw[:40],
                    minimum, maximum, default)
        return default
    return v


@dataclass(frozen=True)
class Settings:
    db_url: str = ""  # empty: space_db_url()
    admin_token: str = ""
    demo: bool = True
    stimulus_cache: Path = Path(tempfile.gettempdir()) / "turing_stimuli"
    concurrency: int = CONCURRENCY

    @property
    def database(self) -> str:
        """The database URL to use: db_url, else the default SQLite file."""
        return self.db_url or space_db_url()

    @classmethod
    def from_env(cls, env=None) -> "Settings":
        env = os.environ if env is None else env
        d = cls()
        return cls(
            db_url=(env.get("TURING_DB_URL") or "").strip(),
            admin_token=env.get(ADMIN_ENV, "") or "",
            demo=(env.get("TURING_DEMO") or "1").strip().lower() not in OFF,
            stimulus_cache=Path(env.get("TURING_STIMULUS_CACHE") or d.stimulus_cache),
            concurrency=_count(env, "TURING_CONCURRENCY", d.concurrency),
        )


def settings() -> Settings:
    """The settings of this process, read from the environment now."""
    return Settings.from_env()
