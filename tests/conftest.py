"""Shared fixtures: an isolated environment (no secrets, no Hub), a fresh store, an artefacts folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.standins.inference import TEST_API_KEY, InferenceStandIn

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.pop("HF_HUB_OFFLINE", None)  # it would block the local stand-in servers too


@pytest.fixture(autouse=True, scope="session")
def test_process_runs_jobs() -> None:
    """Tests that take a task off the huey queue run it here, as the worker would."""
    from hfops import queue, worker

    queue.set_executor(worker.execute_job)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real secrets or console settings leak into a test; each test gets its own working dir."""
    for name in (
        "HUGGINGFACE_API_KEY",
        "HUGGINGFACE_WRITE_TOKEN",
        "HF_TOKEN",
        "SPACE_ID",
        "HFOPS_CONFIG",
        "HFOPS_DB",
        "HFOPS_DEMO",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def no_ledger_left_installed() -> Iterator[None]:
    """An in-process ``hfops`` command installs the free-tier ledger into this process's HTTP session, bound
    to its store and settings; the next test starts from huggingface_hub's own session."""
    yield
    from hfops import ledger

    if ledger.installed() is not None:
        ledger.uninstall()


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    """Path of a fresh, empty store."""
    return str(tmp_path / "hfops.db")


@pytest.fixture
def artifacts() -> Path:
    """Folder for files tests keep (screenshots), under test-artifacts/ at the repo root."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def standin() -> Iterator[InferenceStandIn]:
    """An inference stand-in shared by a module's tests (modules may define their own)."""
    with InferenceStandIn() as server:
        yield server


@pytest.fixture
def fresh_standin() -> Iterator[InferenceStandIn]:
    """An inference stand-in of this test's own: its request log holds this test's requests only."""
    with InferenceStandIn() as server:
        yield server


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """``HUGGINGFACE_API_KEY`` set to :data:`TEST_API_KEY` for this test."""
    monkeypatch.setenv("HUGGINGFACE_API_KEY", TEST_API_KEY)
    return TEST_API_KEY


@pytest.fixture(scope="module")
def warm_local_refiner() -> None:
    """Load the local refiner once per test process, outside any deadline or AppTest timeout; the inference
    client's imports are process start-up too, not part of a request's budget."""
    from hfops.refine.fallback import prepare_client
    from hfops.refine.local import get_local_refiner

    get_local_refiner().load(1)
    prepare_client()
