"""The one SQLite store: connections, write transactions, versioned migrations, small helpers.

- WAL journal, so readers never block; every writer starts with ``BEGIN IMMEDIATE`` (:func:`write_tx`) so
  the busy timeout applies instead of an instant "database is locked".
- One connection per thread (:func:`get_db`); Streamlit runs each session in its own thread.
- Schema changes are SQL files in ``hfops/migrations/NNNN_name.sql``, applied once each, in order, and
  recorded in ``schema_migrations``; later features add a file, never edit an applied one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import sys
import threading
import types
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hfops.errors import StoreError


def _import_sqlite_utils() -> types.ModuleType:
    """sqlite-utils without its optional pandas/numpy imports (0.7-0.9 s of a CLI start-up).

    It only uses them to map pandas/numpy scalar types to column types when it creates tables from Python
    values; the store's tables come from SQL migrations, so nothing is lost. Already imported, they are used.
    """
    blocked = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # import of a None entry raises ImportError
    try:
        import sqlite_utils as module
    finally:
        for name in blocked:
            if sys.modules.get(name) is None:
                del sys.modules[name]
    return module


if TYPE_CHECKING:
    import sqlite_utils
else:
    sqlite_utils = _import_sqlite_utils()

BUSY_TIMEOUT_MS = 30_000
_local = threading.local()
_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def utcnow() -> str:
    """Current UTC time as ISO-8601 with a ``Z`` suffix (the store's one timestamp format)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(value: str | None) -> datetime | None:
    """Parse a store timestamp back to an aware datetime (None stays None)."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def stable_hash(value: Any) -> str:
    """SHA-256 of a JSON-serialisable value with sorted keys (record and input fingerprints)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def dumps(value: Any) -> str:
    """Compact JSON for columns holding structured values."""
    return json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)


def listed(values: Iterable[Any]) -> tuple[str, list[str]]:
    """``(subquery, params)`` for ``column IN (subquery)`` over ``values``: one parameter however many."""
    return "SELECT value FROM json_each(?)", [dumps(list(values))]


def loads(value: str | None, default: Any = None) -> Any:
    """Inverse of :func:`dumps`, tolerant of NULL."""
    return default if value in (None, "") else json.loads(value)


def describe_db_error(path: str | Path, exc: BaseException) -> str:
    """One line naming the store and the cause of a SQLite / OS failure, with what to do about it."""
    text = str(exc).strip() or type(exc).__name__
    low = text.lower()
    if isinstance(exc, OSError):
        return f"store {path}: {exc.strerror or text} ({exc.filename or path})"
    if "not a database" in low or "malformed" in low or "corrupt" in low:
        return (
            f"store {path} is not a SQLite database or is damaged ({text}); move it aside and run "
            f"`hfops init --db {path}` to start a new one"
        )
    if "readonly" in low or "read-only" in low:
        return (
            f"store {path} is read-only ({text}): hfops needs write access to the file and to its folder "
            "(for the -wal and -shm files)"
        )
    if "unable to open" in low:
        return (
            f"store {path} cannot be opened ({text}): "
            "check that the file and its folder exist and are writable"
        )
    if "full" in low:
        return f"store {path}: the disk is full ({text})"
    if "locked" in low or "busy" in low:
        return (
            f"store {path} is busy ({text}): "
            f"another process held the write lock over {BUSY_TIMEOUT_MS // 1000} s"
        )
    return f"store {path}: {text}"


_ENVIRONMENTAL = (
    "readonly",
    "read-only",
    "full",
    "locked",
    "busy",
    "disk i/o",
    "unable to open",
    "not a database",
    "malformed",
)


def is_environmental(exc: BaseException) -> bool:
    """Whether a SQLite failure comes from the store's file or its disk (not from a statement)."""
    return isinstance(exc, sqlite3.DatabaseError) and any(word in str(exc).lower() for word in _ENVIRONMENTAL)


def check_location(path: str | Path, create: bool) -> None:
    """The store's folder exists (``create``: make it); a :class:`StoreError` naming the path otherwise."""
    folder = Path(path).parent
    if folder.is_dir():
        return
    if folder.exists():
        raise StoreError(f"store {path}: {folder} is not a folder")
    if not create:
        raise StoreError(
            f"store {path}: folder {folder} does not exist (create it, or run `hfops init --db {path}`)"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"store {path}: cannot create folder {folder}: {exc.strerror or exc}") from None


def _open(path: Path) -> sqlite_utils.Database:
    check_location(path, create=True)
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(
            "SELECT COUNT(*) FROM sqlite_master"
        ).fetchone()  # a damaged header fails here, not later
    except (sqlite3.Error, OSError) as exc:
        if conn is not None:
            conn.close()
        raise StoreError(describe_db_error(path, exc)) from None
    return sqlite_utils.Database(conn)


def connect(path: str | Path, migrate: bool = True) -> sqlite_utils.Database:
    """Open a new connection to the store at ``path`` (created if missing) and bring its schema up to date.

    Every failure to open, read or migrate it is a :class:`StoreError` naming the path and the cause; a store
    migrated by a newer hfops (migrations this version does not know) is refused.
    """
    db = _open(Path(path))
    if migrate:
        key = str(Path(path).resolve())
        with _migrate_lock:
            if key not in _migrated:
                try:
                    apply_migrations(db)
                except sqlite3.Error as exc:
                    db.conn.close()
                    raise StoreError(describe_db_error(path, exc)) from None
                except StoreError:
                    db.conn.close()
                    raise
                _migrated.add(key)
    return db


def get_db(path: str | Path) -> sqlite_utils.Database:
    """This thread's connection to ``path`` (one connection per thread, opened on first use)."""
    cache: dict[str, sqlite_utils.Database] = getattr(_local, "dbs", None) or {}
    _local.dbs = cache
    key = str(Path(path).resolve())
    if key not in cache:
        cache[key] = connect(path)
    return cache[key]


def close_thread_connections() -> None:
    """Close this thread's cached connections (tests, worker shutdown)."""
    for db in (getattr(_local, "dbs", None) or {}).values():
        db.conn.close()
    _local.dbs = {}


def _path_of(db: sqlite_utils.Database) -> str:
    try:
        return str(db.conn.execute("PRAGMA database_list").fetchone()[2])
    except sqlite3.Error:
        return "(unknown path)"


@contextlib.contextmanager
def write_tx(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """A writer transaction started with ``BEGIN IMMEDIATE``; nested calls become savepoints."""
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    try:
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            raise
        else:
            db.conn.execute("COMMIT")
    except (
        sqlite3.OperationalError
    ) as exc:  # read-only, full, locked past the timeout, I/O: the store's fault
        raise StoreError(describe_db_error(_path_of(db), exc)) from None


def _migration_files() -> list[tuple[str, str]]:
    folder = resources.files("hfops") / "migrations"
    files = sorted(
        (f.name, f.read_text(encoding="utf-8")) for f in folder.iterdir() if f.name.endswith(".sql")
    )
    return [(name.removesuffix(".sql"), sql) for name, sql in files]


def _statements(sql: str) -> Iterator[str]:
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer
            buffer = ""
    if buffer.strip() and not buffer.strip().startswith("--"):
        yield buffer


def apply_migrations(db: sqlite_utils.Database) -> list[str]:
    """Apply every migration file not yet recorded; return the versions applied now."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    applied_now: list[str] = []
    files = _migration_files()
    with write_tx(db):
        done = {row[0] for row in db.execute("SELECT version FROM schema_migrations").fetchall()}
        unknown = sorted(done - {version for version, _ in files})
        if unknown:
            where = _path_of(db)
            raise StoreError(
                f"store {where} was migrated by a newer hfops (unknown migrations: {', '.join(unknown)}); "
                "refusing to use it: upgrade hfops or use another --db"
            )
        for version, sql in files:
            if version in done:
                continue
            for statement in _statements(sql):
                try:
                    db.execute(statement)
                except sqlite3.OperationalError as exc:
                    if "fts5" not in str(exc) and "tokenizer" not in str(exc):
                        raise
                    raise StoreError(
                        f"store {_path_of(db)}: migration {version} needs SQLite 3.34 or newer with FTS5 and "
                        f"its trigram tokenizer ({exc}; this Python's SQLite is {sqlite3.sqlite_version}): "
                        "run hfops with a Python linked against a newer SQLite (the store is unchanged)"
                    ) from None
            db.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", [version, utcnow()]
            )
            applied_now.append(version)
    return applied_now


def schema_version(db: sqlite_utils.Database) -> list[str]:
    """Versions recorded as applied, in order."""
    return [r[0] for r in db.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()]


def rows(db: sqlite_utils.Database, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    """Run a query and return its rows as dicts."""
    cursor = db.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def one(db: sqlite_utils.Database, sql: str, params: Any = ()) -> dict[str, Any] | None:
    """First row of a query as a dict, or None."""
    found = rows(db, sql, params)
    return found[0] if found else None
