"""The console server (``python -m hfops.console_server``): the landing page's imports happen before it
listens, and it is Streamlit's own ``streamlit run`` underneath."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hfops import discovery
from hfops.console_server import WARM_MODULES, command, warm_imports
from hfops.paths import HUB_SNAPSHOT, REPO_ROOT

# Packages whose import in a visitor's session the warm-up exists to prevent (tens to hundreds of ms each)
HEAVY = ("hfops", "pandas", "pyarrow", "numpy", "huggingface_hub", "httpx2", "sqlite_utils")

FIRST_VISIT = """
import json, sys
from hfops.console_server import warm_imports
failed = warm_imports()
from streamlit.testing.v1 import AppTest
before = set(sys.modules)
at = AppTest.from_file(sys.argv[1], default_timeout=120).run()
print(json.dumps({
    "failed": failed,
    "exceptions": [str(e.value) for e in at.exception],
    "tables": len(at.dataframe),
    "new": sorted(set(sys.modules) - before),
}))
"""


def small_store(tmp_path: Path) -> str:
    """A store synced from the first records of the embedded snapshot (enough for a candidates table)."""
    records = tmp_path / "snapshot.jsonl"
    lines = HUB_SNAPSHOT.read_text(encoding="utf-8").splitlines()
    records.write_text("\n".join(lines[:400]) + "\n", encoding="utf-8")
    path = str(tmp_path / "hfops.db")
    discovery.sync_snapshot(path, records)
    return path


def test_the_first_visit_imports_nothing_heavy_after_the_warm_up(tmp_path: Path) -> None:
    db_path = small_store(tmp_path)
    env = {"HFOPS_DB": db_path, "HF_HUB_DISABLE_TELEMETRY": "1", "PATH": "/usr/bin:/bin"}
    found = subprocess.run(
        [sys.executable, "-c", FIRST_VISIT, str(REPO_ROOT / "app.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
        check=True,
    )
    visit = json.loads(found.stdout.strip().splitlines()[-1])
    assert visit["failed"] == [] and visit["exceptions"] == []
    assert visit["tables"] >= 1  # the landing page drew its candidates table
    late = [name for name in visit["new"] if name.split(".")[0] in HEAVY]
    assert late == [], f"imported in the first visit, not by the warm-up: {late}"


def test_warm_imports_reports_a_module_that_fails_and_goes_on() -> None:
    assert warm_imports(["hfops.no_such_module", "hfops.console_server"]) == ["hfops.no_such_module"]
    assert "hfops.console" in WARM_MODULES


def test_the_command_runs_streamlit_with_the_given_flags(tmp_path: Path) -> None:
    argv = command("app.py", port=8599, address="127.0.0.1", flags=("--server.headless", "true"))
    assert argv[:5] == [sys.executable, "-m", "hfops.console_server", "run", "app.py"]
    assert argv[5:9] == ["--server.port", "8599", "--server.address", "127.0.0.1"]
    assert "--browser.gatherUsageStats" in argv and argv[-2:] == ["--server.headless", "true"]
    # the same command line Streamlit's own CLI takes: its help for `run` comes back through the launcher
    shown = subprocess.run(
        [sys.executable, "-m", "hfops.console_server", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "Usage: streamlit run" in shown.stdout
