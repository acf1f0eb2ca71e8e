"""Store faults: a damaged, read-only, unreachable or newer store gives one line naming the path and the
cause.

Each case runs the real CLI (``hfops candidates`` / ``status show``) in a subprocess and checks: exit 2, a
single ``error:`` line that names the store, no traceback, and the file left as it was. Read-only cases run
the CLI as an unprivileged user when the suite runs as root (root ignores file modes).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hfops.errors import StoreError
from hfops.store import connect, write_tx

AS_ROOT = os.geteuid() == 0


def hfops(
    *args: str, read_only: Path | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI; ``read_only``: with that folder mounted read-only (root) or its modes dropped (others)."""
    command = [sys.executable, "-m", "hfops.cli", *args]
    if read_only is not None and AS_ROOT:
        folder = shlex.quote(str(read_only))
        inner = f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} {folder} && exec "
        command = ["unshare", "-m", "sh", "-c", inner + " ".join(shlex.quote(c) for c in command)]
    env = {**os.environ, "HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def ro_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder the CLI will see read-only (a read-only bind mount as root, mode 0555 otherwise)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    yield folder
    folder.chmod(0o755)


def make_read_only(folder: Path) -> None:
    if not AS_ROOT:
        for path in folder.iterdir():
            path.chmod(0o444)
        folder.chmod(0o555)


def test_damaged_file_is_refused_by_name(tmp_path: Path) -> None:
    store = tmp_path / "hfops.db"
    store.write_bytes(b"this is not a database, it is a shopping list\n" * 100)
    before = store.read_bytes()
    line = assert_one_line_error(hfops("candidates", "--db", str(store)), str(store), "not a SQLite database")
    assert "hfops init" in line
    assert store.read_bytes() == before


def test_truncated_database_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "hfops.db"
    connect(store).conn.close()
    data = store.read_bytes()
    store.write_bytes(data[:100] + b"\x00" * 50)  # a valid header over garbage pages
    result = hfops("status", "show", "--db", str(store))
    assert_one_line_error(result, str(store))


def test_missing_folder_is_an_error_except_for_init(tmp_path: Path) -> None:
    store = tmp_path / "not-there" / "hfops.db"
    assert_one_line_error(hfops("candidates", "--db", str(store)), str(store.parent), "does not exist")
    assert not store.parent.exists()
    created = hfops("init", "--db", str(store))
    assert created.returncode == 0, created.stderr
    assert store.is_file()


def test_uncreatable_parent_names_the_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    store = blocker / "sub" / "hfops.db"
    assert_one_line_error(hfops("init", "--db", str(store)), str(store), "cannot create folder")


NEEDS_MOUNT = pytest.mark.skipif(
    AS_ROOT and shutil.which("unshare") is None, reason="needs unshare for a ro mount"
)


@NEEDS_MOUNT
def test_read_only_store_is_refused(ro_dir: Path) -> None:
    store = ro_dir / "hfops.db"
    db = connect(store)
    db.conn.execute("PRAGMA journal_mode = DELETE")  # no -wal/-shm left behind
    db.conn.close()
    before = store.read_bytes()
    make_read_only(ro_dir)
    result = hfops(
        "status", "set", "nobody/none", "shadow", "--reason", "x", "--db", str(store), read_only=ro_dir
    )
    line = assert_one_line_error(result, str(store))
    assert "read-only" in line or "cannot be opened" in line
    assert store.read_bytes() == before


@NEEDS_MOUNT
def test_read_only_folder_for_a_new_store(ro_dir: Path) -> None:
    store = ro_dir / "hfops.db"
    make_read_only(ro_dir)
    result = hfops("init", "--db", str(store), read_only=ro_dir)
    assert_one_line_error(result, str(store))
    assert not store.exists()


def test_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "hfops.db"
    db = connect(store)
    with write_tx(db):
        db.execute("INSERT INTO schema_migrations (version, applied_at) VALUES ('9999_future', 'x')")
    db.conn.close()
    line = assert_one_line_error(hfops("candidates", "--db", str(store)), "newer hfops", "9999_future")
    assert str(store) in line
    rows = sqlite3.connect(store).execute(
        "SELECT COUNT(*) FROM schema_migrations WHERE version = '9999_future'"
    )
    assert rows.fetchone()[0] == 1  # refused, not "repaired"


def test_library_raises_store_error_not_sqlite_error(tmp_path: Path) -> None:
    store = tmp_path / "hfops.db"
    store.write_bytes(b"\x00garbage" * 64)
    with pytest.raises(StoreError, match="not a SQLite database"):
        connect(store)
