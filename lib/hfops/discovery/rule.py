"""The candidate rule: which clauses a model fails, licence matching, and the rule's fingerprint (pure)."""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import hashlib
import json

from hfops.config import DiscoveryConfig
from hfops.discovery.facts import ModelFacts


def license_allowed(license_id: str | None, patterns: list[str]) -> bool:
    """True when the licence id matches one of the configured ids / glob patterns (``*openrail*``)."""
    return bool(license_id) and _license_matches(license_id or "", tuple(patterns))


@functools.lru_cache(maxsize=4096)
def _license_matches(license_id: str, patterns: tuple[str, ...]) -> bool:
    """A listing holds a few hundred distinct licence ids: each is matched against the patterns once."""
    return any(fnmatch.fnmatchcase(license_id, p.lower()) for p in patterns)


def rule_failures(facts: ModelFacts, rule: DiscoveryConfig) -> list[str]:
    """The clauses of the candidate rule that a model fails (empty list = it is a candidate)."""
    failures = []
    if facts.pipeline_tag not in rule.pipeline_tags:
        failures.append(f"pipeline tag {facts.pipeline_tag or 'none'} not in {', '.join(rule.pipeline_tags)}")
    if not license_allowed(facts.license, rule.licenses):
        failures.append(f"licence {facts.license or 'none'} not allowed")
    library_ok = (
        any(lib in facts.tags or facts.library_name == lib for lib in rule.libraries if lib == "transformers")
        or facts.library_name in rule.libraries
    )
    if not library_ok:
        failures.append(f"library {facts.library_name or 'none'} not in {', '.join(rule.libraries)}")
    if rule.require_safetensors and not (facts.safetensors or "gguf" in facts.quantization):
        failures.append("no safetensors or GGUF weights")  # both are safe to load; pickle weights never are
    if facts.downloads < rule.min_downloads:
        failures.append(f"downloads {facts.downloads} < {rule.min_downloads}")
    if facts.likes < rule.min_likes:
        failures.append(f"likes {facts.likes} < {rule.min_likes}")
    return failures


def rule_fingerprint(rule: DiscoveryConfig) -> str:
    """Hash of the rule settings: a stored model is re-evaluated when the rule changes.

    Same value as ``hfops.store.stable_hash(asdict(rule))[:16]`` (stores written before the split stay valid).
    """
    text = json.dumps(dataclasses.asdict(rule), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
