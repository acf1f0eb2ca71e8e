"""Models added with ``hfops models add`` as registry candidates, and what ``hfops models remove``
does to them.

:func:`add_model` stores the folder (``local_models``, what the resolver reads) and, in the same transaction,
its Hub-shaped record (:func:`~hfops.models.resolver.local_model_record`) as a ``models`` row with source
``local`` (parsed, checked against the candidate rule and scored by discovery's own code) and a candidate
(:func:`hfops.registry.add_candidate`: audited ``None -> candidate``). :func:`remove_model` forgets the folder
and retires the candidate (:func:`hfops.registry.set_status`, audited): the registry row and its history stay.

Not imported by :mod:`hfops.models` itself: it reads records with discovery's parser, and discovery reads the
packaged models (:mod:`hfops.models.packaged`), so a package-level import would be an import cycle.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from hfops import registry, store
from hfops.discovery.facts import parse_record
from hfops.discovery.rule import rule_failures, rule_fingerprint
from hfops.discovery.score import quality_score
from hfops.discovery.storing import model_row, raw_json
from hfops.errors import ModelError
from hfops.models.resolver import local_model_record, local_row, remove, save_local

SOURCE = "local"  # models.source of an added folder (never a sync source's name: hub, snapshot:<path>)
ACTOR = "operator"


@dataclass
class RegistryOutcome:
    """What ``models add`` / ``models remove`` did to the registry row of one model."""

    model_id: str
    action: str  # added | refreshed | restored | kept | retired | none
    status: str | None  # the candidate status afterwards (None: not a candidate)
    source: str | None  # models.source (local, or the sync source that listed the id)
    message: str
    rule_failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def registry_row(
    row: dict[str, Any], settings: Any
) -> tuple[dict[str, Any], float, dict[str, Any], list[str]]:
    """The ``models`` row of an added folder as discovery stores a listed record (source ``local``), its
    quality score and breakdown, and the clauses of the candidate rule it fails (kept on the row)."""
    record = local_model_record(row)
    raw, record_hash = raw_json(record)
    try:
        facts = parse_record(record)[1]
    except ValueError as exc:
        raise ModelError(
            f"{row['model_id']}: the folder's facts are not a valid model record ({exc})"
        ) from None
    failures = rule_failures(facts, settings.discovery)
    stored = model_row(facts, raw, record_hash, failures, SOURCE, 0, store.utcnow())
    stored["last_sync_id"] = None  # no sync listed it
    stored["rule_hash"] = rule_fingerprint(settings.discovery)
    score, breakdown = quality_score(facts)
    return stored, score, breakdown, failures


def register(db: sqlite_utils.Database, row: dict[str, Any], settings: Any) -> RegistryOutcome:
    """Store the folder ``row`` (:func:`~hfops.models.resolver.local_row`) and make its model a candidate,
    in one transaction.

    A model the registry does not know, or one added before (source ``local``), gets the folder's facts; an
    id a sync listed keeps its Hub record (the resolver still runs the added folder). A model that is not a
    candidate becomes one (audited); a retired one is moved back to ``candidate`` (audited); any other status
    is kept. The candidate rule is not applied: the operator chose the model (its failures are shown).
    """
    model_id = row["model_id"]
    reason = f"added from the local folder {row['path']} at {row['revision']} (hfops models add)"
    models_row, score, breakdown, failures = registry_row(row, settings)
    with store.write_tx(db):
        save_local(db, row)
        known = registry.get_model(db, model_id)
        ours = known is None or known.source == SOURCE
        if known is None:
            db.table("models").insert({**models_row, "first_seen": models_row["last_seen"]})
        elif ours:
            db.table("models").update(model_id, models_row)
        source = SOURCE if ours else (known.source if known is not None else None)
        candidate = known.candidate if known is not None else None
        if candidate is None:
            if not ours:  # a synced record the rule left out: its own score, from its own facts
                assert known is not None
                score, breakdown = quality_score(parse_record(known.raw)[1])
            registry.add_candidate(db, model_id, score, breakdown, reason, actor=ACTOR)
            return RegistryOutcome(
                model_id,
                "added",
                "candidate",
                source,
                f"{model_id} is now a candidate (source {source})",
                failures,
            )
        if ours:
            db.table("candidates").update(
                model_id,
                {"score": score, "score_breakdown": store.dumps(breakdown), "updated_at": store.utcnow()},
            )
        if candidate.status == "retired":
            registry.set_status(db, model_id, "candidate", reason, actor=ACTOR)
            return RegistryOutcome(
                model_id,
                "restored",
                "candidate",
                source,
                f"{model_id} was retired; it is a candidate again (source {source})",
                failures,
            )
        if ours:
            return RegistryOutcome(
                model_id,
                "refreshed",
                candidate.status,
                source,
                f"{model_id} was already a candidate ({candidate.status}); its registry record now has this "
                f"folder's facts",
                failures,
            )
        return RegistryOutcome(
            model_id,
            "kept",
            candidate.status,
            source,
            f"{model_id} is already a candidate ({candidate.status}) listed by {source}: its Hub record is "
            "kept; evaluations run the added folder",
            failures,
        )


def add_model(path: str | Path, model_id: str, settings: Any) -> dict[str, Any]:
    """``hfops models add``: read the folder's facts and hashes (refusals before anything is stored), then
    store the folder and register its model as a candidate (:func:`register`). The stored row, its facts and
    ``registry`` (a :class:`RegistryOutcome` as a dict)."""
    row = local_row(path, model_id, settings)
    outcome = register(store.get_db(settings.db_path), row, settings)
    return {**row, "registry": outcome.to_dict()}


def retire(db: sqlite_utils.Database, model_id: str, folder: str) -> RegistryOutcome:
    """After the folder of ``model_id`` was forgotten: retire its candidate when the registry row is the
    folder's (source ``local``); the row and its history stay. A synced record is left as it is."""
    known = registry.get_model(db, model_id)
    if known is None:
        return RegistryOutcome(model_id, "none", None, None, f"{model_id} is not in the registry")
    status = known.candidate.status if known.candidate is not None else None
    if known.source != SOURCE:
        return RegistryOutcome(
            model_id,
            "kept",
            status,
            known.source,
            f"the registry record of {model_id} is kept (listed by {known.source}; "
            f"status {status or 'none'})",
        )
    if status is None or status == "retired":
        return RegistryOutcome(
            model_id,
            "kept",
            status,
            SOURCE,
            f"{model_id} stays in the registry ({status or 'not a candidate'}); its history is kept",
        )
    change = registry.set_status(
        db,
        model_id,
        "retired",
        f"its local folder {folder} was removed (hfops models remove); the files stay",
        actor=ACTOR,
    )
    production = " (it was in production: its task has no promoted model now)" if status == "promoted" else ""
    return RegistryOutcome(
        model_id,
        "retired",
        "retired",
        SOURCE,
        f"{model_id} retired (was {change.from_status}){production}; its registry record and history are "
        f"kept (hfops history {model_id})",
    )


def remove_model(model_id: str, settings: Any) -> dict[str, Any]:
    """``hfops models remove``: delete cached revisions, forget an added folder (its files stay) and retire
    its candidate in the same transaction (:func:`retire`). ``removed`` (``cache``, ``local``), the bytes
    freed and ``registry`` (a :class:`RegistryOutcome` as a dict, None when no folder was forgotten)."""
    return remove(
        model_id, settings, on_forget=lambda db, gone: retire(db, model_id, str(gone["path"])).to_dict()
    )
