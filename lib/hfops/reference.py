"""Published reference scores (MTEB) joined to the registry by model id, and by revision where it matches.

The shipped table ``data/reference/mteb_results_2026-08-20_retrieval_scores.csv`` (CC0, from
embeddings-benchmark/results, see ``data/reference/SOURCE.md``) holds one row per model revision: a commit
sha, or ``external`` for rows imported from the old leaderboard. Task columns are MTEB main scores on a
0-1 scale: nDCG@10 for the retrieval tasks (``MSMARCO`` included), Spearman correlation for STSBenchmark.

A model may have several scored rows. :func:`reference_for` picks one row and never mixes rows:

1. the row whose revision equals the registry's revision (the model's ``sha``), when there is one;
2. else a row with an ``MSMARCO`` score (the published number beside our own MS MARCO runs);
3. then the row with the most task scores; then a per-revision row over ``external``; then by revision.

Rows without any task score are not references. Published numbers come from the full MTEB benchmarks;
our measured numbers come from small samples (200 MS MARCO queries): keep them in separate columns.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from hfops.paths import DATA_DIR

MTEB_SCORES = DATA_DIR / "reference" / "mteb_results_2026-08-20_retrieval_scores.csv"
MTEB_SOURCE = "MTEB (embeddings-benchmark/results@f4cc6c8b, 2026-08-20)"
EXTERNAL = "external"  # revision of rows imported from the old MTEB leaderboard
MSMARCO = "MSMARCO"  # the published task that matches our ms_marco retrieval runs (nDCG@10)
RETRIEVAL_TASKS = (
    "ArguAna",
    "SciFact",
    "NFCorpus",
    "FiQA2018",
    "SCIDOCS",
    "TRECCOVID",
    "Touche2020",
    "QuoraRetrieval",
    "CQADupstackGamingRetrieval",
    "CQADupstackUnixRetrieval",
    "NQ",
    "HotpotQA",
    "DBPedia",
    "ClimateFEVER",
    "FEVER",
    "MSMARCO",
)
STS_TASKS = ("STSBenchmark",)
TASKS = RETRIEVAL_TASKS + STS_TASKS
METRIC_OF_TASK = {**dict.fromkeys(RETRIEVAL_TASKS, "nDCG@10"), **dict.fromkeys(STS_TASKS, "Spearman")}


@dataclass(frozen=True)
class Reference:
    """One published MTEB row for a model: its revision and per-task scores (0-1)."""

    model_id: str
    source: str
    revision: str  # a commit sha, or "external" (imported from the old leaderboard)
    scores: dict[str, float]
    revision_match: bool | None = None  # True: equals the registry's sha; False: differs; None: sha unknown
    release_date: str | None = None
    license: str | None = None
    n_parameters: int | None = None
    embed_dim: int | None = None
    max_tokens: float | None = None  # inf for models without a length limit
    other_revisions: tuple[str, ...] = field(default=())  # the model's other scored rows, not used here

    @property
    def msmarco(self) -> float | None:
        """The published MS MARCO nDCG@10, or None."""
        return self.scores.get(MSMARCO)

    def as_json(self) -> dict[str, Any]:
        """``{source, revision, scores}``: the ``reference`` field of ``hfops candidates --json``."""
        return {"source": self.source, "revision": self.revision, "scores": dict(self.scores)}


def _number(value: str, kind: type[int] | type[float]) -> Any:
    if not value.strip():
        return None
    number = float(value)
    if kind is int:
        return int(number) if math.isfinite(number) else None
    return number


def parse_rows(lines: Iterable[str], source: str = MTEB_SOURCE) -> dict[str, list[Reference]]:
    """Scored rows of an MTEB score table (CSV text lines), by model id, in file order."""
    by_model: dict[str, list[Reference]] = {}
    for row in csv.DictReader(lines):
        scores = {task: float(row[task]) for task in TASKS if (row.get(task) or "").strip()}
        if not scores:
            continue
        by_model.setdefault(row["model"], []).append(
            Reference(
                model_id=row["model"],
                source=source,
                revision=row["revision"],
                scores=scores,
                release_date=row.get("release_date") or None,
                license=row.get("license") or None,
                n_parameters=_number(row.get("n_parameters", ""), int),
                embed_dim=_number(row.get("embed_dim", ""), int),
                max_tokens=_number(row.get("max_tokens", ""), float),
            )
        )
    return by_model


@functools.lru_cache(maxsize=4)
def load_table(path: str | Path = MTEB_SCORES) -> dict[str, list[Reference]]:
    """The scored rows of the shipped table by model id (read once per path, then cached)."""
    with open(path, encoding="utf-8", newline="") as fh:
        return parse_rows(fh)


def choose(rows: list[Reference], revision: str | None = None) -> Reference | None:
    """The row to show for a model whose registry revision is ``revision`` (see the module docstring)."""
    if not rows:
        return None
    wanted = (revision or "").strip().lower()

    def rank(ref: Reference) -> tuple[bool, bool, int, bool, str]:
        matches = bool(wanted) and ref.revision.lower() == wanted
        return (matches, MSMARCO in ref.scores, len(ref.scores), ref.revision != EXTERNAL, ref.revision)

    best = max(rows, key=rank)
    match = (best.revision.lower() == wanted) if wanted else None
    others = tuple(r.revision for r in rows if r is not best)
    return dataclasses.replace(best, revision_match=match, other_revisions=others)


def reference_for(
    model_id: str, revision: str | None = None, table: Mapping[str, list[Reference]] | None = None
) -> Reference | None:
    """The published reference of one model (``revision`` = its registry sha, if known), or None."""
    rows = (table if table is not None else load_table()).get(model_id, [])
    return choose(list(rows), revision)


def all_references(model_id: str, table: Mapping[str, list[Reference]] | None = None) -> list[Reference]:
    """Every scored published row of one model (for the detail view's revision list)."""
    return list((table if table is not None else load_table()).get(model_id, []))


def references_for(
    models: Iterable[tuple[str, str | None]], table: Mapping[str, list[Reference]] | None = None
) -> dict[str, Reference]:
    """References of many ``(model_id, revision)`` pairs; models without published scores are left out."""
    table = table if table is not None else load_table()
    found: dict[str, Reference] = {}
    for model_id, revision in models:
        ref = reference_for(model_id, revision, table)
        if ref is not None:
            found[model_id] = ref
    return found


def references_for_models(db: sqlite_utils.Database, model_ids: Iterable[str]) -> dict[str, Reference]:
    """References of stored models, matched by model id and by the stored ``sha`` as revision."""
    ids = list(dict.fromkeys(model_ids))
    revisions: dict[str, str | None] = dict.fromkeys(ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        sql = f"SELECT model_id, sha FROM models WHERE model_id IN ({', '.join('?' for _ in chunk)})"
        for model_id, sha in db.execute(sql, chunk).fetchall():
            revisions[model_id] = sha
    return references_for(revisions.items())


def published_retrieval_scores(refs: Mapping[str, Reference]) -> dict[str, float]:
    """``{model_id: published MSMARCO nDCG@10}`` of the references that have one (the sort key and column)."""
    return {model_id: ref.msmarco for model_id, ref in refs.items() if ref.msmarco is not None}


def discordant_pairs(measured: Mapping[str, float], published: Mapping[str, float]) -> list[tuple[str, str]]:
    """Pairs ``(a, b)`` that our measurement ranks a above b while the published scores rank b above a.

    Only models present in both mappings count; ties on either side are not disagreements.
    """
    both = sorted(set(measured) & set(published))
    pairs = []
    for i, a in enumerate(both):
        for b in both[i + 1 :]:
            ours = measured[a] - measured[b]
            theirs = published[a] - published[b]
            if ours * theirs < 0:
                pairs.append((a, b) if ours > 0 else (b, a))
    return pairs


def disagreement_notice(
    measured: Mapping[str, float],
    published: Mapping[str, float],
    queries: int | None = None,
    dataset: str = "MS MARCO",
    published_task: str = MSMARCO,
) -> str | None:
    """A plain sentence naming where our measured and the published ranking disagree, or None when they agree.

    ``queries``: how many queries our runs scored (the sample size shown in the sentence).
    """
    pairs = discordant_pairs(measured, published)
    if not pairs:
        return None
    sample = f"{queries} {dataset} queries" if queries else f"a {dataset} sample"
    shown = "; ".join(
        f"{a} is ahead of {b} in our runs ({measured[a]:.3f} vs {measured[b]:.3f}) but behind it in MTEB "
        f"{published_task} ({published[a]:.3f} vs {published[b]:.3f})"
        for a, b in pairs[:5]
    )
    more = f"; and {len(pairs) - 5} more pairs" if len(pairs) > 5 else ""
    return (
        f"Our measured ranking and the published MTEB ranking disagree: {shown}{more}. "
        f"Our nDCG@10 comes from {sample} on this setup; the published score is the full MTEB benchmark. "
        "They are different measurements: compare the orders, not the values."
    )
