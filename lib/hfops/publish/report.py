"""The eval report of a succeeded run and its model card: pure (imports neither the store nor jobs).

- ``eval_report.json``: every metric of the candidate, the production model and their delta with its 95% CI
  and n, the dataset (Hub id, split, source, version; for a custom eval set ``dataset.custom_set``: its name,
  version (content hash) and size, never its rows), the sample size, both models' backend and revision,
  the recommendation and the rule it came from (:func:`build_report` from a run record);
- ``eval_summary.md``: the same as a Markdown table (:func:`summary_markdown`);
- ``README.md``: a model card whose metadata carries the candidate's metrics as ``model-index`` eval results
  (huggingface_hub ``ModelCardData`` / ``EvalResult``); ``ModelCard`` parses it back to the same numbers,
  which :func:`report_files` checks before anything is written.

Task and dataset facts (model-index task type, pretty names, splits, licences) come from the evals task table.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfops.errors import PublishError
from hfops.evals import tasks
from hfops.paths import REPO_ROOT

REPORT_SCHEMA = "hfops.eval_report/v1"
CARD_FILE = "README.md"
REPORT_FILE = "eval_report.json"
SUMMARY_FILE = "eval_summary.md"
SET_EXAMPLES_FILE = "eval_set.jsonl"  # only when the operator asks (--include-set-rows): a custom set's rows
SET_DOCUMENTS_FILE = "eval_set_documents.jsonl"
CARD_TAGS = ["hfops", "eval-report", "shadow-eval"]
CUSTOM_LICENCE = "see the custom eval set's source"
CI_METHOD = "percentile bootstrap over the examples; candidate and production resampled together (paired)"


@dataclass
class PublishFile:
    """One file of a publication: its path in the repo and its bytes."""

    path: str
    content: bytes
    what: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "bytes": len(self.content),
            "sha256": hashlib.sha256(self.content).hexdigest(),
            "what": self.what,
        }


def _number(value: Any) -> float | None:
    """A finite float, or None (NaN/inf/NULL are not JSON and not a result)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _relative_location(location: str | None) -> str | None:
    """A local dataset path relative to the repository (no machine paths in a published report)."""
    if not location or location.startswith("hf://"):
        return location
    try:
        return Path(location).resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return Path(location).name


def check_publishable(run: Any, run_id: int) -> None:
    """:class:`PublishError` unless ``run`` exists and succeeded."""
    if run is None:
        raise PublishError(f"no eval run {run_id}")
    if run["status"] != "succeeded":
        raise PublishError(
            f"eval run {run_id} is {run['status']}: only a finished (succeeded) run can be published"
        )


def _custom_facts(run: Any, custom_set: Mapping[str, Any] | None) -> dict[str, Any]:
    """The custom set's name, version (content hash) and size as a report carries them (never its rows)."""
    given = dict(custom_set or {})
    return {
        "name": run["dataset"],
        "version": run["dataset_version"] or given.get("version"),
        "size": given.get("size"),
        "documents": given.get("documents"),
        "unanswerable": given.get("unanswerable"),
        "source": given.get("source"),
    }


def dataset_info(run: Any, custom_set: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Name, Hub id, config, split, source, version and location of a run's dataset; for a custom eval set
    also its size, documents and unanswerable questions from ``custom_set``
    (:func:`hfops.evals.custom.report_facts`: the store's facts of the set at the run's version)."""
    name = run["dataset"]
    local = run["dataset_source"] != "hub"
    if tasks.is_builtin(name):
        spec = tasks.dataset_spec(name)
        hub_id, config, pretty, licence = spec.hub.repo, spec.hub.config, spec.title, spec.licence
        split = spec.local_split if local else spec.hub.split
        sample = "shipped sample" if local else "slice streamed from the Hub"
    else:  # a custom eval set stored with hfops
        hub_id, config, pretty, licence, split, sample = (
            name,
            None,
            name,
            CUSTOM_LICENCE,
            "custom",
            "custom eval set",
        )
    info = {
        "name": name,
        "pretty_name": pretty,
        "hub_id": hub_id,
        "config": config,
        "split": split,
        "source": run["dataset_source"],
        "sample": sample,
        "version": run["dataset_version"],
        "location": _relative_location(run["dataset_location"]),
        "licence": licence,
    }
    if not tasks.is_builtin(name):
        info["custom_set"] = _custom_facts(run, custom_set)
    return info


def build_report(run: Any, generated_at: str, custom_set: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The eval report of a succeeded run record (plain JSON-able data); ``custom_set``: what the store knows
    of the run's custom eval set (:func:`hfops.evals.custom.report_facts`), carried as ``dataset.custom_set``
    (name, version, size; never its rows)."""
    from hfops import __version__

    check_publishable(run, run["id"])
    by_metric: dict[str, dict[str, Any]] = {}
    for m in run["metrics"]:
        entry = by_metric.setdefault(m["metric"], {"metric": m["metric"], "n": m["n"]})
        entry[m["system"]] = {
            "value": _number(m["value"]),
            "ci_low": _number(m["ci_low"]),
            "ci_high": _number(m["ci_high"]),
        }
    rule = run["recommendation_rule"] or {}
    return {
        "schema": REPORT_SCHEMA,
        "generator": f"hfops {__version__}",
        "generated_at": generated_at,
        "run": {k: run[k] for k in ("id", "status", "created_at", "started_at", "finished_at")},
        "task": run["task"],
        "dataset": dataset_info(run, custom_set),
        "sample_size": {
            "examples": run["total"],
            "scored": run["done"],
            "limit": run["sample_limit"],
            "example_ids_hash": run["example_ids_hash"],
            "candidate_errors": run["candidate_errors"],
            "production_errors": run["production_errors"],
        },
        "candidate": {
            "model_id": run["model_id"],
            "backend": run["candidate_backend"],
            "revision": run["candidate_revision"],
        },
        "production": {
            "model_id": run["production_id"],
            "backend": run["production_backend"],
            "revision": run["production_revision"],
        },
        "primary_metric": run["primary_metric"],
        "confidence": rule.get("confidence", 0.95),
        "ci_method": CI_METHOD,
        "metrics": list(by_metric.values()),
        "recommendation": {
            "decision": run["recommendation"],
            "reason": run["recommendation_reason"],
            "rule": rule,
        },
        "registry": {"status_before": run["status_before"], "status_after": run["status_after"]},
        "inference": {
            "cache_hits": run["cache_hits"],
            "cache_misses": run["cache_misses"],
            "model_calls": run["model_calls"],
        },
    }


def _cell(value: dict[str, Any] | None, signed: bool = False) -> str:
    if not value or value.get("value") is None:
        return "–"
    fmt = "+.3f" if signed else ".3f"
    text = format(value["value"], fmt)
    if value.get("ci_low") is not None and value.get("ci_high") is not None:
        text += f" ({format(value['ci_low'], fmt)} to {format(value['ci_high'], fmt)})"
    return text


def _custom_line(facts: dict[str, Any]) -> str:
    size = f"{facts['size']} examples" if facts.get("size") is not None else "size not known"
    if facts.get("documents"):
        size += f", {facts['documents']} documents"
    if facts.get("unanswerable"):
        size += f", {facts['unanswerable']} unanswerable"
    return f"`{facts['name']}`, version `{facts['version']}`, {size} (its rows are not published)"


def summary_markdown(report: dict[str, Any], heading: str = "#") -> str:
    """The report as Markdown: what was compared on which data, the metric table and the recommendation."""
    ds, cand, prod = report["dataset"], report["candidate"], report["production"]
    size = report["sample_size"]
    rec = report["recommendation"]
    limit = f", sample limit {size['limit']}" if size["limit"] else ""
    lines = [
        f"{heading} Shadow evaluation: `{cand['model_id']}` vs `{prod['model_id']}`",
        "",
        f"- **Task:** {report['task']} on {ds['pretty_name']} (`{ds['hub_id']}`"
        + (f", config `{ds['config']}`" if ds["config"] else "")
        + f", split `{ds['split']}`, {ds['sample']})",
        f"- **Dataset version:** `{ds['version']}` · {size['examples']} examples{limit} · "
        f"errors: candidate {size['candidate_errors']}, production {size['production_errors']}",
        f"- **Candidate:** `{cand['model_id']}` ({cand['backend']}, revision `{cand['revision']}`)",
        f"- **Production:** `{prod['model_id']}` ({prod['backend']}, revision `{prod['revision']}`)",
        f"- **Recommendation:** **{rec['decision']}** — {rec['reason']}",
    ]
    if ds.get("custom_set"):
        lines.insert(3, "- **Custom eval set:** " + _custom_line(ds["custom_set"]))
    if rec["rule"]:
        lines.append(f"- **Rule** `{rec['rule'].get('name', '')}`: {rec['rule'].get('text', '')}")
    lines += [
        "",
        "| metric | candidate (95% CI) | production (95% CI) | delta (95% CI) | n |",
        "|---|---|---|---|---|",
    ]
    for m in report["metrics"]:
        name = f"**{m['metric']}**" if m["metric"] == report["primary_metric"] else m["metric"]
        lines.append(
            f"| {name} | {_cell(m.get('candidate'))} | {_cell(m.get('production'))} | "
            f"{_cell(m.get('delta'), signed=True)} | {m['n']} |"
        )
    lines += [
        "",
        f"Primary metric: {report['primary_metric']} (retrieval metrics 0–1, QA metrics 0–100). "
        f"CIs: {report['ci_method']}.",
        "",
        f"Generated by {report['generator']} from eval run {report['run']['id']} "
        f"(finished {report['run']['finished_at']}). Data: {ds['pretty_name']}, {ds['licence']}.",
        "",
    ]
    return "\n".join(lines)


def _size_note(ds: dict[str, Any]) -> str:
    size = (ds.get("custom_set") or {}).get("size")
    return f", {size} examples" if size is not None else ""


def card_results(report: dict[str, Any]) -> list[Any]:
    """The candidate's metrics as huggingface_hub ``EvalResult`` s (one per metric with a value)."""
    from huggingface_hub import EvalResult

    spec = tasks.task_spec(report["task"])
    ds = report["dataset"]
    results = []
    for m in report["metrics"]:
        value = (m.get("candidate") or {}).get("value")
        if value is None:
            continue
        ci = m["candidate"]
        name = m["metric"]
        if ci.get("ci_low") is not None and ci.get("ci_high") is not None:
            name += f" (95% CI {ci['ci_low']:.4g} to {ci['ci_high']:.4g}, n={m['n']})"
        results.append(
            EvalResult(
                task_type=spec.model_index_type,
                task_name=spec.title,
                dataset_type=ds["hub_id"],
                dataset_name=f"{ds['pretty_name']} ({ds['sample']}{_size_note(ds)})",
                dataset_config=ds["config"],
                dataset_split=ds["split"],
                dataset_revision=ds["version"],
                metric_type=m["metric"],
                metric_value=value,
                metric_name=name,
            )
        )
    return results


def model_card_text(report: dict[str, Any]) -> str:
    """README.md of the report repo: model-index metadata + the summary."""
    from huggingface_hub import ModelCard, ModelCardData

    results = card_results(report)
    if not results:
        raise PublishError(f"eval run {report['run']['id']} has no candidate metric to publish")
    data = ModelCardData(
        model_name=report["candidate"]["model_id"], eval_results=results, tags=list(CARD_TAGS)
    )
    body = "\n".join(
        [
            f"# Eval report for `{report['candidate']['model_id']}`",
            "",
            "This repository holds a shadow-evaluation report produced by hfops: the candidate model was run "
            "next to the production model on the same examples. The metadata above lists the candidate's "
            f"results as `model-index` entries; `{REPORT_FILE}` has every number with its confidence "
            "interval.",
            "",
            summary_markdown(report, heading="##"),
        ]
    )
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}"))


def check_card_round_trip(card_text: str, report: dict[str, Any]) -> None:
    """Parse the card back as the Hub would and require the candidate's numbers unchanged."""
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCard(card_text).data
    if not isinstance(data, ModelCardData):
        raise PublishError("the model card has no model metadata; not publishing")
    got = {r.metric_type: r.metric_value for r in data.eval_results or []}
    want = {
        m["metric"]: m["candidate"]["value"]
        for m in report["metrics"]
        if (m.get("candidate") or {}).get("value") is not None
    }
    if got != want or data.model_name != report["candidate"]["model_id"]:
        raise PublishError("the model card does not load back with the report's numbers; not publishing")


def set_rows_files(set_rows: dict[str, list[dict[str, Any]]], name: str) -> list[PublishFile]:
    """The custom set's rows as JSON Lines (examples, and documents when it has a corpus)."""

    def jsonl(items: list[dict[str, Any]]) -> bytes:
        return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items).encode("utf-8")

    files = [
        PublishFile(
            SET_EXAMPLES_FILE, jsonl(set_rows["examples"]), f"{name}: {len(set_rows['examples'])} examples"
        )
    ]
    if set_rows["documents"]:
        files.append(
            PublishFile(
                SET_DOCUMENTS_FILE,
                jsonl(set_rows["documents"]),
                f"{name}: {len(set_rows['documents'])} documents",
            )
        )
    return files


def report_files(report: dict[str, Any]) -> list[PublishFile]:
    """The three files of a publication (the card checked to round-trip)."""
    card = model_card_text(report)
    check_card_round_trip(card, report)
    return [
        PublishFile(
            CARD_FILE, card.encode("utf-8"), f"model card ({len(card_results(report))} model-index results)"
        ),
        PublishFile(
            REPORT_FILE,
            (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
            "eval report (every metric with its CI)",
        ),
        PublishFile(SUMMARY_FILE, summary_markdown(report).encode("utf-8"), "Markdown summary"),
    ]


def commit_message(report: dict[str, Any]) -> str:
    return (
        f"hfops eval report: run {report['run']['id']} ({report['candidate']['model_id']}, "
        f"{report['task']} on "
        f"{report['dataset']['name']})"
    )


def commit_description(report: dict[str, Any]) -> str:
    rec = report["recommendation"]
    return f"Shadow eval run {report['run']['id']}: {rec['decision']} — {rec['reason']}"
