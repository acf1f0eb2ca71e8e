"""Discovery: sync Hub model listings into the registry, apply the candidate rule, score, detect quantization.

Modules, from pure to stateful:

- :mod:`~hfops.discovery.facts`: one API record parsed by ``huggingface_hub.hf_api.ModelInfo`` into
  :class:`ModelFacts` (licence, library, safetensors, quantization, counts, dates);
- :mod:`~hfops.discovery.rule`: the candidate rule (:func:`rule_failures`) and its fingerprint;
- :mod:`~hfops.discovery.score`: the quality score and its breakdown;
- :mod:`~hfops.discovery.sources`: pages of raw records from the Hub's ``/api/models`` (:class:`HubSource`,
  through :mod:`hfops.net`) or a snapshot file (:class:`SnapshotSource`);
- :mod:`~hfops.discovery.sync`: a sync run storing pages into the store (:func:`run_sync`, :func:`sync_hub`,
  :func:`sync_snapshot`, the worker's :func:`sync_job`);
- :mod:`~hfops.discovery.runs`: sync runs as typed :class:`SyncRun` records and their queries.

The pure parts (facts, rule, score) import neither the store nor jobs. See docs/discovery.md.
"""

from __future__ import annotations

from hfops.discovery.facts import (
    QUANT_METHODS,
    ModelFacts,
    detect_quantization,
    facts_from,
    license_of,
    parse_record,
    skip_reason,
)
from hfops.discovery.rule import license_allowed, rule_failures, rule_fingerprint
from hfops.discovery.runs import SyncRun, endpoint_in_use, get_sync_run, last_sync_run, list_sync_runs
from hfops.discovery.score import (
    DOWNLOADS_SCALE,
    LIKES_SCALE,
    OPEN_LICENSES,
    RECENCY_HALF_LIFE_DAYS,
    SCORE_WEIGHTS,
    quality_score,
)
from hfops.discovery.sources import EXPAND_FIELDS, KNOWN_OPENRAIL_IDS, HubSource, Page, SnapshotSource, Source
from hfops.discovery.sync import (
    ensure_embedded_default,
    incremental_watermark,
    model_row,
    raw_json,
    run_sync,
    sync_hub,
    sync_job,
    sync_snapshot,
)
from hfops.errors import SyncError

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
