"""Two processes writing the same store at once: no 'database is locked', nothing lost."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from hfops.config import Settings
from hfops.discovery import sync_snapshot
from hfops.paths import HUB_SNAPSHOT
from hfops.store import apply_migrations, connect, schema_version

SYNC = textwrap.dedent(
    """
    import sys
    from hfops.config import Settings
    from hfops.discovery import sync_snapshot
    for _ in range(2):
        sync_snapshot(sys.argv[1], sys.argv[2], Settings())
    print("sync ok")
    """
)
FLIP = textwrap.dedent(
    """
    import sys
    from hfops.jobs import create_job
    from hfops.registry import set_status
    from hfops.store import connect
    db = connect(sys.argv[1])
    for i in range(40):
        set_status(db, "microsoft/phi-2", "evaluating" if i % 2 == 0 else "candidate",
                   f"flip {i}", actor="p2")
        create_job(db, "noop", {"i": i})
    print("flip ok")
    """
)


def test_two_writer_processes_never_hit_database_is_locked(db_path: str) -> None:
    sync_snapshot(db_path, HUB_SNAPSHOT, Settings())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SYNC, db_path, str(HUB_SNAPSHOT)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
        subprocess.Popen(
            [sys.executable, "-c", FLIP, db_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ),
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "database is locked" not in err
    db = connect(db_path)
    assert db.execute("SELECT COUNT(*) FROM status_transitions WHERE actor = 'p2'").fetchone()[0] == 40
    assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 40
    assert db.execute("SELECT COUNT(*) FROM sync_runs WHERE status = 'succeeded'").fetchone()[0] == 3
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrations_are_versioned_and_applied_once(db_path: str) -> None:
    db = connect(db_path)
    versions = schema_version(db)
    assert versions[0] == "0001_core" and versions == sorted(versions)
    assert apply_migrations(db) == []  # nothing left to apply on an up-to-date file
