"""Database engines from a URL: SQLite (WAL, busy timeout, durable commits) or PostgreSQL.

    TURING_DB_URL=sqlite:///data/turing.db            (the default, under ./data or /data)
    TURING_DB_URL=postgresql://user:pw@127.0.0.1/turing

A plain ``postgresql://`` URL uses psycopg (version 3) when it is installed. SQLite transactions
that write start with ``BEGIN IMMEDIATE`` so that concurrent writers queue on the busy timeout
instead of failing when a read lock cannot be upgraded; read-only work uses :func:`reader`.
"""
from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import StaticPool

from .settings import settings

SQLITE_BUSY_TIMEOUT_S = 30.0

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def default_db_url() -> str:
    """$TURING_DB_URL, else a SQLite file: /data/turing.db on a Space with persistent storage
    (/data exists and is writable), else ./data/turing.db."""
    return settings().database


def normalize_url(url: str) -> str:
    """postgres:// and postgresql:// -> postgresql+psycopg:// when psycopg 3 is the driver here."""
    url = str(url).strip()
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        try:
            import psycopg  # noqa: F401
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        except ImportError:  # psycopg2 (SQLAlchemy's default driver) then
            pass
    return url


def add_missing_columns(engine: Engine, metadata) -> list[str]:
    """Add the columns of `metadata` that an existing database lacks (a database made by an
    earlier version): nullable columns only, with ALTER TABLE ... ADD COLUMN, which SQLite and
    PostgreSQL both have. Returns "table.column" of each column added."""
    from sqlalchemy import inspect
    insp = inspect(engine)
    existing_tables = set(insp.get_table_names())
    missing = []  # read everything first: on SQLite a write transaction would lock the reads out
    for table in metadata.sorted_tables:
        if table.name not in existing_tables:
            continue
        have = {c["name"] for c in insp.get_columns(table.name)}
        missing += [(table.name, col) for col in table.columns if col.name not in have]
    added = []
    if missing:
        with engine.begin() as conn:
            for table_name, col in missing:
                if not col.nullable:
                    raise RuntimeError(f"cannot add the required column {table_name}.{col.name} to "
                                       "an existing database: build a new one")
                kind = col.type.compile(dialect=engine.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {table_name} ADD COLUMN {col.name} {kind}")
                added.append(f"{table_name}.{col.name}")
    return added


def is_sqlite(engine_or_url) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(normalize_url(engine_or_url))
    return url.get_backend_name() == "sqlite"


def _sqlite_engine(url) -> Engine:
    db = url.database
    memory = db in (None, "", ":memory:")
    if not memory:
        Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
    kwargs = dict(connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False})
    if memory:
        kwargs["poolclass"] = StaticPool
    else:
        kwargs.update(pool_size=8, max_overflow=24, pool_timeout=60)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # let SQLAlchemy's "begin" event below emit BEGIN, not pysqlite's own transaction logic
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk (WAL fsynced) before we acknowledge a vote, so neither kill -9
        # nor a power cut loses it
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        if not memory:
            # no checkpoint inside a request's commit (it would stall that vote, and every vote
            # queued behind it, for a whole fsync of the database file): the checkpointer
            # thread below does them in the background
            cur.execute("PRAGMA wal_autocheckpoint=0")
        cur.close()

    if not memory:
        _checkpointer.add(str(Path(db).expanduser().resolve()))

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


class _Checkpointer:
    """Moves committed WAL pages into the SQLite database files in the background (PASSIVE
    checkpoints never block readers or writers), every CHECKPOINT_EVERY_S seconds while a WAL
    file holds data."""

    CHECKPOINT_EVERY_S = 1.0

    def __init__(self):
        self.paths: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, path: str) -> None:
        with self._lock:
            self.paths.add(path)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="turing-wal-checkpoint",
                                                daemon=True)
                self._thread.start()

    def checkpoint(self, path: str, mode: str = "PASSIVE") -> None:
        import sqlite3
        wal = Path(path + "-wal")
        if not wal.exists() or wal.stat().st_size == 0:
            return
        con = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            con.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        finally:
            con.close()

    def _run(self) -> None:
        import time
        while True:
            time.sleep(self.CHECKPOINT_EVERY_S)
            with self._lock:
                paths = list(self.paths)
            for path in paths:
                if not Path(path).exists():
                    with self._lock:
                        self.paths.discard(path)
                    continue
                try:
                    self.checkpoint(path)
                except Exception:  # a locked or vanished file: try again next round
                    pass


_checkpointer = _Checkpointer()


def get_engine(url: str | None = None) -> Engine:
    """One engine per URL and process (engines are thread-safe pools)."""
    url = normalize_url(url or default_db_url())
    with _lock:
        eng = _engines.get(url)
        if eng is None:
            u = make_url(url)
            if u.get_backend_name() == "sqlite":
                eng = _sqlite_engine(u)
            else:
                eng = create_engine(u, pool_pre_ping=True, pool_size=8, max_overflow=24, pool_timeout=60)
            _engines[url] = eng
        return eng


def reader(engine: Engine) -> Engine:
    """The same engine for read-only transactions (SQLite: BEGIN DEFERRED, no write lock)."""
    if engine.url.get_backend_name() == "sqlite":
        return engine.execution_options(sqlite_begin="DEFERRED")
    return engine


def dispose_all() -> None:
    """Close every pooled connection (tests, and before a process forks)."""
    with _lock:
        for eng in _engines.values():
            eng.dispose()
        _engines.clear()
