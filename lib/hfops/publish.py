"""Publish a shadow eval run: an eval report (JSON + Markdown) and a model card, pushed to a private Hub repo.

What is built from a succeeded run (:func:`build_report`, :func:`report_files`):

- ``eval_report.json``: every metric of the candidate, the production model and their delta with its 95% CI
  and n, the dataset (Hub id, split, source, version), the sample size, both models' backend and revision,
  the recommendation and the rule it came from;
- ``eval_summary.md``: the same as a Markdown table;
- ``README.md``: a model card whose metadata carries the candidate's metrics as ``model-index`` eval results
  (huggingface_hub ``ModelCardData`` / ``EvalResult``); ``ModelCard.load`` gives back the same numbers,
  which :func:`report_files` checks before anything is written.

With ``HUGGINGFACE_WRITE_TOKEN`` set, :func:`publish_run` creates the repo if needed
(``create_repo(private=True, exist_ok=True)``) and pushes the files in one ``create_commit`` against
``[hub] endpoint``; the commit URL is stored with the run (``eval_publications``). Without the token, or with
``dry_run``, it only writes the files locally and reports what would be pushed where. The write token is read
here and nowhere else; it is never stored, logged, printed or put in an error message.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from hfops import jobs
from hfops.config import Settings, load_settings, write_token
from hfops.errors import PublishError
from hfops.paths import REPO_ROOT
from hfops.store import dumps, get_db, loads, one, rows, utcnow, write_tx

REPORT_SCHEMA = "hfops.eval_report/v1"
CARD_FILE = "README.md"
REPORT_FILE = "eval_report.json"
SUMMARY_FILE = "eval_summary.md"
SYSTEMS = ("candidate", "production", "delta")
TASK_TYPES = {"retrieval": ("text-retrieval", "Passage retrieval"), "qa": ("question-answering", "Question answering")}
DATASETS = {
    # name: (pretty name, split of the shipped sample, licence note)
    "squad_v2": ("SQuAD v2", "validation", "CC BY-SA 4.0"),
    "ms_marco": ("MS MARCO v1.1", "train", "non-commercial research use only"),
}
CARD_TAGS = ["hfops", "eval-report", "shadow-eval"]



@dataclass
class PublishFile:
    """One file of a publication: its path in the repo and its bytes."""

    path: str
    content: bytes
    what: str = ""

    def describe(self) -> dict[str, Any]:
        return {"path": self.path, "bytes": len(self.content), "sha256": hashlib.sha256(self.content).hexdigest(),
                "what": self.what}


# --- the report ------------------------------------------------------------------------------------------------


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


def dataset_info(run: dict[str, Any]) -> dict[str, Any]:
    """Name, Hub id, config, split, source, version and location of a run's dataset."""
    from hfops.evals.data import HUB_SOURCES

    hub_id, config, hub_split = HUB_SOURCES[run["dataset"]]
    pretty, local_split, licence = DATASETS[run["dataset"]]
    local = run["dataset_source"] == "local"
    return {
        "name": run["dataset"],
        "pretty_name": pretty,
        "hub_id": hub_id,
        "config": config,
        "split": local_split if local else hub_split,
        "source": run["dataset_source"],
        "sample": "shipped sample" if local else "slice streamed from the Hub",
        "version": run["dataset_version"],
        "location": _relative_location(run["dataset_location"]),
        "licence": licence,
    }


def build_report(db: sqlite_utils.Database, run_id: int) -> dict[str, Any]:
    """The eval report of a succeeded run (plain JSON-able data)."""
    from hfops import __version__
    from hfops.evals import runs

    run = runs.get_run(db, run_id)
    if run is None:
        raise PublishError(f"no eval run {run_id}")
    if run["status"] != "succeeded":
        raise PublishError(f"eval run {run_id} is {run['status']}: only a finished (succeeded) run can be published")
    by_metric: dict[str, dict[str, Any]] = {}
    for m in run["metrics"]:
        entry = by_metric.setdefault(m["metric"], {"metric": m["metric"], "n": m["n"]})
        entry[m["system"]] = {"value": _number(m["value"]), "ci_low": _number(m["ci_low"]),
                              "ci_high": _number(m["ci_high"])}
    rule = run["recommendation_rule"] or {}
    return {
        "schema": REPORT_SCHEMA,
        "generator": f"hfops {__version__}",
        "generated_at": utcnow(),
        "run": {k: run[k] for k in ("id", "status", "created_at", "started_at", "finished_at")},
        "task": run["task"],
        "dataset": dataset_info(run),
        "sample_size": {
            "examples": run["total"],
            "scored": run["done"],
            "limit": run["sample_limit"],
            "example_ids_hash": run["example_ids_hash"],
            "candidate_errors": run["candidate_errors"],
            "production_errors": run["production_errors"],
        },
        "candidate": {"model_id": run["model_id"], "backend": run["candidate_backend"],
                      "revision": run["candidate_revision"]},
        "production": {"model_id": run["production_id"], "backend": run["production_backend"],
                       "revision": run["production_revision"]},
        "primary_metric": run["primary_metric"],
        "confidence": rule.get("confidence", 0.95),
        "ci_method": "percentile bootstrap over the examples; candidate and production resampled together (paired)",
        "metrics": list(by_metric.values()),
        "recommendation": {"decision": run["recommendation"], "reason": run["recommendation_reason"], "rule": rule},
        "registry": {"status_before": run["status_before"], "status_after": run["status_after"]},
        "inference": {"cache_hits": run["cache_hits"], "cache_misses": run["cache_misses"],
                      "model_calls": run["model_calls"]},
    }


def _cell(value: dict[str, Any] | None, signed: bool = False) -> str:
    if not value or value.get("value") is None:
        return "–"
    fmt = "+.3f" if signed else ".3f"
    text = format(value["value"], fmt)
    if value.get("ci_low") is not None and value.get("ci_high") is not None:
        text += f" ({format(value['ci_low'], fmt)} to {format(value['ci_high'], fmt)})"
    return text


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
        + (f", config `{ds['config']}`" if ds["config"] else "") + f", split `{ds['split']}`, {ds['sample']})",
        f"- **Dataset version:** `{ds['version']}` · {size['examples']} examples{limit} · "
        f"errors: candidate {size['candidate_errors']}, production {size['production_errors']}",
        f"- **Candidate:** `{cand['model_id']}` ({cand['backend']}, revision `{cand['revision']}`)",
        f"- **Production:** `{prod['model_id']}` ({prod['backend']}, revision `{prod['revision']}`)",
        f"- **Recommendation:** **{rec['decision']}** — {rec['reason']}",
    ]
    if rec["rule"]:
        lines.append(f"- **Rule** `{rec['rule'].get('name', '')}`: {rec['rule'].get('text', '')}")
    lines += [
        "",
        "| metric | candidate (95% CI) | production (95% CI) | delta (95% CI) | n |",
        "|---|---|---|---|---|",
    ]
    for m in report["metrics"]:
        name = f"**{m['metric']}**" if m["metric"] == report["primary_metric"] else m["metric"]
        lines.append(f"| {name} | {_cell(m.get('candidate'))} | {_cell(m.get('production'))} | "
                     f"{_cell(m.get('delta'), signed=True)} | {m['n']} |")
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


def card_results(report: dict[str, Any]) -> list[Any]:
    """The candidate's metrics as huggingface_hub ``EvalResult`` s (one per metric with a value)."""
    from huggingface_hub import EvalResult

    task_type, task_name = TASK_TYPES[report["task"]]
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
        results.append(EvalResult(
            task_type=task_type, task_name=task_name,
            dataset_type=ds["hub_id"], dataset_name=f"{ds['pretty_name']} ({ds['sample']})",
            dataset_config=ds["config"], dataset_split=ds["split"], dataset_revision=ds["version"],
            metric_type=m["metric"], metric_value=value, metric_name=name,
        ))
    return results


def model_card_text(report: dict[str, Any]) -> str:
    """README.md of the report repo: model-index metadata + the summary."""
    from huggingface_hub import ModelCard, ModelCardData

    results = card_results(report)
    if not results:
        raise PublishError(f"eval run {report['run']['id']} has no candidate metric to publish")
    data = ModelCardData(model_name=report["candidate"]["model_id"], eval_results=results, tags=list(CARD_TAGS))
    body = "\n".join([
        f"# Eval report for `{report['candidate']['model_id']}`",
        "",
        "This repository holds a shadow-evaluation report produced by hfops: the candidate model was run "
        "next to the production model on the same examples. The metadata above lists the candidate's "
        f"results as `model-index` entries; `{REPORT_FILE}` has every number with its confidence interval.",
        "",
        summary_markdown(report, heading="##"),
    ])
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}"))


def check_card_round_trip(card_text: str, report: dict[str, Any]) -> None:
    """Parse the card back as the Hub would and require the candidate's numbers unchanged."""
    from huggingface_hub import ModelCard

    loaded = ModelCard(card_text)
    got = {r.metric_type: r.metric_value for r in loaded.data.eval_results or []}
    want = {m["metric"]: m["candidate"]["value"] for m in report["metrics"]
            if (m.get("candidate") or {}).get("value") is not None}
    if got != want or loaded.data.model_name != report["candidate"]["model_id"]:
        raise PublishError("the model card does not load back with the report's numbers; not publishing")


def report_files(report: dict[str, Any]) -> list[PublishFile]:
    """The three files of a publication (the card checked to round-trip)."""
    card = model_card_text(report)
    check_card_round_trip(card, report)
    return [
        PublishFile(CARD_FILE, card.encode("utf-8"), f"model card ({len(card_results(report))} model-index results)"),
        PublishFile(REPORT_FILE, (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
                    "eval report (every metric with its CI)"),
        PublishFile(SUMMARY_FILE, summary_markdown(report).encode("utf-8"), "Markdown summary"),
    ]


# --- pushing -------------------------------------------------------------------------------------------------


def check_repo_id(repo_id: str) -> str:
    """``ORG/NAME`` as the Hub accepts it, or a :class:`PublishError`."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    repo_id = repo_id.strip()
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise PublishError(f"invalid repo id {repo_id!r}: {exc}") from None
    if repo_id.count("/") != 1:
        raise PublishError(f"invalid repo id {repo_id!r}: expected ORG/NAME")
    return repo_id


def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


def _server_message(exc: BaseException) -> str:
    """What the Hub said about a failed request (first line, short), if anything."""
    response = getattr(exc, "response", None)
    message = ""
    if response is not None:
        message = response.headers.get("X-Error-Message") or ""
        if not message:
            try:
                message = str((response.json() or {}).get("error") or "")
            except Exception:  # a body that is not JSON says nothing useful
                message = ""
    message = (message.strip().splitlines() or [""])[0]
    return message[:200]


def describe_hub_error(exc: BaseException, repo_id: str, endpoint: str, step: str, token: str | None) -> str:
    """A clear operator message for a failed Hub call (status first, the token scrubbed)."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    namespace = repo_id.split("/")[0]
    if status == 401:
        text = (f"the Hub at {endpoint} rejected HUGGINGFACE_WRITE_TOKEN (401 Unauthorized) while {step}: "
                "the token is invalid, expired or revoked; create a write token at "
                "https://huggingface.co/settings/tokens")
    elif status == 403:
        text = (f"HUGGINGFACE_WRITE_TOKEN may not write to {repo_id} (403 Forbidden) while {step}: use a token "
                f"with write access to the {namespace!r} namespace (a fine-grained token needs write permission "
                "on that repo or organisation)")
    elif status == 409:
        text = (f"conflict on {repo_id} (409 Conflict) while {step}: the repo changed or another operation was in "
                "progress; nothing was committed, run publish again")
    elif status is not None and status >= 500:
        text = f"the Hub at {endpoint} failed (HTTP {status}) while {step}; nothing was committed, try again later"
    elif status == 404:
        text = f"{repo_id} was not found on {endpoint} (404) while {step}"
    elif status is not None:
        text = f"the Hub at {endpoint} refused the request (HTTP {status}) while {step}"
    elif isinstance(exc, ValueError):
        text = f"the Hub client refused the request while {step}: {exc}"
    else:
        text = f"cannot reach the Hub at {endpoint} while {step} ({type(exc).__name__})"
    server = _server_message(exc)
    if server:
        text += f" [Hub: {server}]"
    return _scrub(text, token)


def push_files(endpoint: str, token: str, repo_id: str, files: list[PublishFile], message: str,
               description: str) -> tuple[str, str]:
    """Create the private repo if needed and push ``files`` in one commit; returns ``(commit_url, oid)``."""
    import httpx2
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from hfops import __version__

    api = HfApi(endpoint=endpoint, token=token, library_name="hfops", library_version=__version__)
    step = f"creating the private repo {repo_id}"
    try:
        api.create_repo(repo_id, private=True, exist_ok=True, repo_type="model")
        step = f"committing {len(files)} files to {repo_id}"
        info = api.create_commit(
            repo_id,
            [CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=f.content) for f in files],
            commit_message=message, commit_description=description, repo_type="model",
        )
    except (HfHubHTTPError, httpx2.HTTPError, ValueError, OSError) as exc:
        raise PublishError(describe_hub_error(exc, repo_id, endpoint, step, token)) from None
    return str(info.commit_url), str(info.oid)


# --- publishing a run ----------------------------------------------------------------------------------------


def default_out_dir(settings: Settings, run_id: int) -> Path:
    """``[publish] out_dir`` or ``<store folder>/publish``, then ``run-<id>``."""
    base = Path(settings.publish.out_dir) if settings.publish.out_dir else Path(settings.store.path).parent / "publish"
    return base / f"run-{run_id}"


def _record(db: sqlite_utils.Database, **fields: Any) -> int:
    with write_tx(db):
        return int(db.execute(
            f"INSERT INTO eval_publications ({', '.join(fields)}) VALUES ({', '.join('?' for _ in fields)})",
            list(fields.values()),
        ).lastrowid)


def _finish(db: sqlite_utils.Database, publication_id: int, **fields: Any) -> None:
    fields["finished_at"] = utcnow()
    with write_tx(db):
        db.execute(f"UPDATE eval_publications SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                   [*fields.values(), publication_id])


def publish_run(db_path: str, run_id: int, settings: Settings, repo: str | None = None, dry_run: bool = False,
                out_dir: str | Path | None = None) -> dict[str, Any]:
    """Build the report files of ``run_id``, write them to ``out_dir`` and push them unless this is a dry run.

    A dry run happens when ``dry_run`` is set or ``HUGGINGFACE_WRITE_TOKEN`` is not; it needs no repo.
    Returns what was (or would be) pushed where; every attempt is recorded in ``eval_publications``.
    """
    db = get_db(db_path)
    token = write_token()
    repo_id = (repo or settings.publish.repo or "").strip()
    reason = "--dry-run" if dry_run else (None if token else "HUGGINGFACE_WRITE_TOKEN is not set")
    if repo_id:
        repo_id = check_repo_id(repo_id)
    elif reason is None:
        raise PublishError("no target repo: pass --repo ORG/NAME or set [publish] repo")
    report = build_report(db, run_id)
    files = report_files(report)
    folder = Path(out_dir) if out_dir else default_out_dir(settings, run_id)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for f in files:
            (folder / f.path).write_bytes(f.content)
    except OSError as exc:
        raise PublishError(f"cannot write the report files to {folder}: {exc.strerror or exc}") from None
    endpoint = settings.hub.endpoint.rstrip("/")
    message = (f"hfops eval report: run {run_id} ({report['candidate']['model_id']}, {report['task']} on "
               f"{report['dataset']['name']})")
    outcome: dict[str, Any] = {
        "run_id": run_id, "mode": "dry-run" if reason else "push", "dry_run_reason": reason, "repo_id": repo_id,
        "endpoint": endpoint, "private": True, "commit_message": message,
        "files": [f.describe() for f in files], "out_dir": str(folder), "commit_url": None, "commit_oid": None,
    }
    publication_id = _record(
        db, run_id=run_id, repo_id=repo_id, endpoint=endpoint, mode=outcome["mode"], dry_run_reason=reason,
        status="succeeded" if reason else "running", files=dumps(outcome["files"]), out_dir=str(folder),
        created_at=utcnow(), finished_at=utcnow() if reason else None,
    )
    outcome["publication_id"] = publication_id
    if reason:
        return outcome
    description = f"Shadow eval run {run_id}: {report['recommendation']['decision']} — {report['recommendation']['reason']}"
    try:
        commit_url, oid = push_files(endpoint, token or "", repo_id, files, message, description)
    except PublishError as exc:
        _finish(db, publication_id, status="failed", error=str(exc))
        raise
    except Exception as exc:  # unexpected: recorded as failed (never left "running"), then raised as is
        _finish(db, publication_id, status="failed", error=_scrub(f"{type(exc).__name__} while pushing", token))
        raise
    _finish(db, publication_id, status="succeeded", commit_url=commit_url, commit_oid=oid)
    outcome.update(commit_url=commit_url, commit_oid=oid)
    return outcome


def token_status() -> str:
    """What a page may show about the write token: ``set`` or ``not set``."""
    from hfops.config import secret_status

    return secret_status(write_token())


def publications(db: sqlite_utils.Database, run_id: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Publication attempts, newest first (of one run when ``run_id`` is given)."""
    where, params = ("WHERE run_id = ?", [run_id]) if run_id is not None else ("", [])
    found = rows(db, f"SELECT * FROM eval_publications {where} ORDER BY id DESC LIMIT ?", [*params, limit])
    for row in found:
        row["files"] = loads(row["files"], [])
    return found


def latest_commit(db: sqlite_utils.Database, run_id: int) -> dict[str, Any] | None:
    """The last successful push of a run (its commit URL), or None."""
    return one(db, "SELECT * FROM eval_publications WHERE run_id = ? AND mode = 'push' AND status = 'succeeded' "
                   "ORDER BY id DESC LIMIT 1", [run_id])


# --- as a worker job (the console's Publish button) ----------------------------------------------------------


def enqueue_publish(db_path: str, run_id: int, repo: str | None = None, dry_run: bool = False,
                    config_path: str | None = None) -> int:
    """Queue a ``publish`` job for the worker (checks the run and the repo id first); returns the job id."""
    db = get_db(db_path)
    run = one(db, "SELECT status FROM eval_runs WHERE id = ?", [run_id])
    if run is None:
        raise PublishError(f"no eval run {run_id}")
    if run["status"] != "succeeded":
        raise PublishError(f"eval run {run_id} is {run['status']}: only a finished (succeeded) run can be published")
    if repo and repo.strip():
        repo = check_repo_id(repo)
    params = {"run_id": run_id, "repo": repo or None, "dry_run": dry_run, "config": config_path}
    return jobs.enqueue(db_path, "publish", params)


def publish_jobs(db: sqlite_utils.Database, run_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """Publish jobs of one run, newest first."""
    return [j for j in jobs.list_jobs(db, kind="publish", limit=limit) if j["params"].get("run_id") == run_id]


@jobs.handler("publish")
def publish_job(db_path: str, params: dict[str, Any], progress: jobs.Progress) -> dict[str, Any]:
    """Worker job ``{"run_id", "repo", "dry_run", "config"}``: :func:`publish_run` in the worker."""
    if "run_id" not in params:
        raise PublishError("a publish job needs a run_id")
    settings = load_settings(params.get("config"), **{"store.path": db_path})
    progress(0, 1, f"publishing eval run {params['run_id']}", force=True)
    result = publish_run(db_path, int(params["run_id"]), settings, params.get("repo"), bool(params.get("dry_run")))
    progress(1, 1, "published" if result["mode"] == "push" else "dry run: files written", force=True)
    return result
