"""Discovery: sync Hub model listings into the registry, apply the candidate rule, score, detect quantization.

Modules, from pure to stateful:

- :mod:`~hfops.discovery.facts`: one API record parsed by ``huggingface_hub.hf_api.ModelInfo`` into
  :class:`ModelFacts` (licence, library, safetensors, quantization, counts, dates);
- :mod:`~hfops.discovery.rule`: the candidate rule (:func:`rule_failures`) and its fingerprint;
- :mod:`~hfops.discovery.score`: the quality score and its breakdown;
- :mod:`~hfops.discovery.sources`: what a source is (:class:`Page`, :class:`Source`); its two kinds,
  :mod:`~hfops.discovery.hub` (:class:`HubSource`: the Hub's ``/api/models`` through :mod:`hfops.net`, with
  the pagination guards) and :mod:`~hfops.discovery.snapshot` (:class:`SnapshotSource`: a file, streamed);
- :mod:`~hfops.discovery.storing`: one page into ``models`` / ``candidates`` and the run's counts;
- :mod:`~hfops.discovery.runstate`: a run's row (start, resume, save, live or dead) and the watermark;
- :mod:`~hfops.discovery.sync`: a sync run (:func:`run_sync`, :func:`sync_hub`, :func:`sync_snapshot`, the
  worker's :func:`sync_job`);
- :mod:`~hfops.discovery.runs`: sync runs as typed :class:`SyncRun` records and their queries.

The pure parts (facts, rule, score) and the sources import neither the store nor jobs. See docs/discovery.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hfops.discovery.facts import (
        QUANT_METHODS,
        ModelFacts,
        detect_quantization,
        facts_from,
        license_of,
        parse_record,
        skip_reason,
    )
    from hfops.discovery.hub import EXPAND_FIELDS, KNOWN_OPENRAIL_IDS, HubSource
    from hfops.discovery.rule import license_allowed, rule_failures, rule_fingerprint
    from hfops.discovery.runs import SyncRun, endpoint_in_use, get_sync_run, last_sync_run, list_sync_runs
    from hfops.discovery.runstate import incremental_watermark
    from hfops.discovery.score import (
        DOWNLOADS_SCALE,
        LIKES_SCALE,
        OPEN_LICENSES,
        RECENCY_HALF_LIFE_DAYS,
        SCORE_WEIGHTS,
        quality_score,
    )
    from hfops.discovery.snapshot import SnapshotSource
    from hfops.discovery.sources import Page, Source
    from hfops.discovery.storing import model_row, raw_json
    from hfops.discovery.sync import ensure_embedded_default, run_sync, sync_hub, sync_job, sync_snapshot
    from hfops.errors import SyncError

# Names re-exported lazily (PEP 562): importing hfops.discovery for a query costs no huggingface_hub import.
_EXPORTS: dict[str, str] = {
    "QUANT_METHODS": "hfops.discovery.facts",
    "ModelFacts": "hfops.discovery.facts",
    "detect_quantization": "hfops.discovery.facts",
    "facts_from": "hfops.discovery.facts",
    "license_of": "hfops.discovery.facts",
    "parse_record": "hfops.discovery.facts",
    "skip_reason": "hfops.discovery.facts",
    "EXPAND_FIELDS": "hfops.discovery.hub",
    "KNOWN_OPENRAIL_IDS": "hfops.discovery.hub",
    "HubSource": "hfops.discovery.hub",
    "license_allowed": "hfops.discovery.rule",
    "rule_failures": "hfops.discovery.rule",
    "rule_fingerprint": "hfops.discovery.rule",
    "SyncRun": "hfops.discovery.runs",
    "endpoint_in_use": "hfops.discovery.runs",
    "get_sync_run": "hfops.discovery.runs",
    "last_sync_run": "hfops.discovery.runs",
    "list_sync_runs": "hfops.discovery.runs",
    "incremental_watermark": "hfops.discovery.runstate",
    "DOWNLOADS_SCALE": "hfops.discovery.score",
    "LIKES_SCALE": "hfops.discovery.score",
    "OPEN_LICENSES": "hfops.discovery.score",
    "RECENCY_HALF_LIFE_DAYS": "hfops.discovery.score",
    "SCORE_WEIGHTS": "hfops.discovery.score",
    "quality_score": "hfops.discovery.score",
    "SnapshotSource": "hfops.discovery.snapshot",
    "Page": "hfops.discovery.sources",
    "Source": "hfops.discovery.sources",
    "model_row": "hfops.discovery.storing",
    "raw_json": "hfops.discovery.storing",
    "ensure_embedded_default": "hfops.discovery.sync",
    "run_sync": "hfops.discovery.sync",
    "sync_hub": "hfops.discovery.sync",
    "sync_job": "hfops.discovery.sync",
    "sync_snapshot": "hfops.discovery.sync",
    "SyncError": "hfops.errors",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hfops.discovery' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DOWNLOADS_SCALE",
    "EXPAND_FIELDS",
    "KNOWN_OPENRAIL_IDS",
    "LIKES_SCALE",
    "OPEN_LICENSES",
    "QUANT_METHODS",
    "RECENCY_HALF_LIFE_DAYS",
    "SCORE_WEIGHTS",
    "HubSource",
    "ModelFacts",
    "Page",
    "SnapshotSource",
    "Source",
    "SyncError",
    "SyncRun",
    "detect_quantization",
    "endpoint_in_use",
    "ensure_embedded_default",
    "facts_from",
    "get_sync_run",
    "incremental_watermark",
    "last_sync_run",
    "license_allowed",
    "license_of",
    "list_sync_runs",
    "model_row",
    "parse_record",
    "quality_score",
    "raw_json",
    "rule_failures",
    "rule_fingerprint",
    "run_sync",
    "skip_reason",
    "sync_hub",
    "sync_job",
    "sync_snapshot",
]
