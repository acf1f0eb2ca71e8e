"""Publish a shadow eval run: an eval report (JSON + Markdown) and a model card, pushed to a private Hub repo.

- :mod:`hfops.publish.report` (pure: imports neither the store nor jobs): the report, the Markdown summary and
  the model card with ``model-index`` results, checked to load back with the same numbers;
- :mod:`hfops.publish.hub`: repo ids, the write token (read there and nowhere else), one commit, Hub errors as
  operator messages;
- :mod:`hfops.publish.records`: the ``eval_publications`` rows and a run's publish jobs;
- :mod:`hfops.publish.publisher`: :func:`publish_run` (write the files, push unless a dry run, record the
  attempt) and the worker job :func:`publish_job`.

With ``HUGGINGFACE_WRITE_TOKEN`` set, :func:`publish_run` creates the repo if needed
(``create_repo(private=True, exist_ok=True)``) and pushes the files in one ``create_commit`` against
``[hub] endpoint``; the commit URL is stored with the run. Without the token, or with ``dry_run``, it only
writes the files locally and reports what would be pushed where.
"""

from hfops.errors import PublishError
from hfops.publish.hub import check_repo_id, describe_hub_error, push_files, token_status
from hfops.publish.publisher import build_report, default_out_dir, enqueue_publish, publish_job, publish_run
from hfops.publish.records import (
    latest_commit,
    latest_publish_job,
    publications,
    publish_active,
    publish_jobs,
)
from hfops.publish.report import (
    CARD_FILE,
    REPORT_FILE,
    REPORT_SCHEMA,
    SUMMARY_FILE,
    PublishFile,
    card_results,
    check_card_round_trip,
    dataset_info,
    model_card_text,
    report_files,
    summary_markdown,
)

__all__ = [
    "CARD_FILE",
    "REPORT_FILE",
    "REPORT_SCHEMA",
    "SUMMARY_FILE",
    "PublishError",
    "PublishFile",
    "build_report",
    "card_results",
    "check_card_round_trip",
    "check_repo_id",
    "dataset_info",
    "default_out_dir",
    "describe_hub_error",
    "enqueue_publish",
    "latest_commit",
    "latest_publish_job",
    "model_card_text",
    "publications",
    "publish_active",
    "publish_job",
    "publish_jobs",
    "publish_run",
    "push_files",
    "report_files",
    "summary_markdown",
    "token_status",
]
