"""How each model can run here, as a registry fact: ``packaged``, ``local``, ``cached``,
``downloadable (N GB)``, ``api only``, ``too large (N GB > limit)``, ``pickle weights only``, ``gated``,
``cannot run locally: needs X``, or ``unknown`` (not checked yet, or the Hub did not answer).

The local states need no network. The remote check is one ``model_info`` + one tree listing per model; it is
run by the ``models_check`` job (rate-limited, cancellable), never on a page's script thread, and its result
is stored in ``model_evaluability``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from hfops import config as hfconfig
from hfops import store
from hfops.errors import ModelError, ModelRefusedError
from hfops.models import hub as hubmod
from hfops.models import resolver
from hfops.models.settings import gigabytes, models_settings

RUNNABLE_STATES = frozenset({"packaged", "local", "cached", "downloadable", "api_only"})
STATES = (
    "packaged",
    "local",
    "cached",
    "downloadable",
    "api_only",
    "too_large",
    "pickle_only",
    "gated",
    "unsupported",
    "unknown",
)
RANK = {state: i for i, state in enumerate(STATES)}  # order the Evals page offers candidates in


@dataclass
class Evaluability:
    model_id: str
    state: str
    label: str
    runnable: bool
    task: str = ""
    size_bytes: int | None = None
    revision: str = ""
    format: str = ""
    quantization: str = ""
    detail: str = ""
    checked_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fact(model_id: str, state: str, label: str, **values: Any) -> Evaluability:
    return Evaluability(model_id, state, label, state in RUNNABLE_STATES, checked_at=store.utcnow(), **values)


def local_evaluability(model_id: str, settings: Any, task: str = "") -> Evaluability | None:
    """The state from local sources only (packaged, added folder, HF cache); None when none has it."""
    try:
        found = (
            resolver.from_packaged(model_id, task)
            or resolver.from_local(model_id, settings, task)
            or resolver.from_cache(model_id, settings, task=task)
        )
    except ModelRefusedError as exc:
        return _fact(model_id, "unsupported", "cannot run locally", task=task, detail=str(exc))
    if found is None:
        return None
    label = {"packaged": "packaged", "local": "local", "cached": "cached"}[found.source]
    return _fact(
        model_id,
        found.source,
        label,
        task=found.task or task,
        size_bytes=found.size_bytes,
        revision=found.revision,
        format=found.format,
        quantization=found.quantization,
    )


def _api_or(model_id: str, state: str, label: str, **values: Any) -> Evaluability:
    """A local blocker that the Inference API can get around (no local weights, a quantization needing
    another runtime) becomes ``api only`` when ``HUGGINGFACE_API_KEY`` is set."""
    if hfconfig.api_key() and state == "unsupported":
        return _fact(model_id, "api_only", "api only", **values)
    return _fact(model_id, state, label, **values)


def evaluability(
    model_id: str, settings: Any, *, task: str = "", remote: bool = True, api: Any = None
) -> Evaluability:
    """How ``model_id`` can be evaluated here. ``remote=False`` never touches the network (``unknown`` when no
    local copy); otherwise one ``model_info`` + one tree listing decide the remote states."""
    local = local_evaluability(model_id, settings, task)
    if local is not None:
        return local
    if not remote:
        return _fact(model_id, "unknown", "unknown", task=task, detail="not checked against the Hub yet")
    try:
        plan = hubmod.remote_plan(model_id, settings, task=task, api=api)
    except ModelRefusedError as exc:
        return _fact(
            model_id, exc.reason, "gated" if exc.reason == "gated" else exc.reason, task=task, detail=str(exc)
        )
    except ModelError as exc:
        return _fact(model_id, "unknown", "unknown", task=task, detail=str(exc))
    common = {
        "task": plan.task,
        "revision": plan.commit,
        "format": plan.selection.format,
        "quantization": plan.quantization,
    }
    limit_gb = models_settings(settings).max_download_gb
    try:
        hubmod.check_plan(plan, settings)
    except ModelRefusedError as exc:
        if exc.reason in ("too_large", "no_disk"):  # over [models] max_download_gb, or over the free disk
            bound = f"{limit_gb:g} GB" if exc.reason == "too_large" else "free disk"
            return _fact(
                model_id,
                "too_large",
                f"too large ({gigabytes(plan.download_bytes)} > {bound})",
                size_bytes=plan.download_bytes,
                detail=str(exc),
                **common,
            )
        if exc.reason == "pickle_only":
            return _fact(model_id, "pickle_only", "pickle weights only", detail=str(exc), **common)
        if exc.reason == "gated":
            return _fact(
                model_id, "gated", "gated", size_bytes=plan.download_bytes, detail=str(exc), **common
            )
        label = (
            f"cannot run locally: {plan.blocker}" if plan.blocker else "cannot run locally: no usable weights"
        )
        return _api_or(model_id, "unsupported", label, detail=str(exc), **common)
    if plan.gated:  # a token is set: whether it has access is only known by asking for a file
        if not hubmod.has_access(plan, settings):
            return _fact(
                model_id,
                "gated",
                "gated",
                size_bytes=plan.download_bytes,
                detail=hubmod.gated_message(model_id, settings),
                **common,
            )
    if not models_settings(settings).auto_download and hfconfig.api_key():
        return _fact(
            model_id,
            "api_only",
            "api only",
            size_bytes=plan.download_bytes,
            detail=(
                "[models] auto_download = false: evals use the Inference API ('hfops pull' to run locally)"
            ),
            **common,
        )
    return _fact(
        model_id,
        "downloadable",
        f"downloadable ({gigabytes(plan.download_bytes)})",
        size_bytes=plan.download_bytes,
        **common,
    )


# --- stored facts -----------------------------------------------------------------------------------------


def save(db: Any, facts: Iterable[Evaluability]) -> int:
    rows = [f.to_dict() | {"runnable": int(f.runnable)} for f in facts]
    if rows:
        with store.write_tx(db):
            db.table("model_evaluability").upsert_all(rows, pk="model_id")
    return len(rows)


def stored(db: Any, model_ids: Iterable[str] | None = None) -> dict[str, Evaluability]:
    """Stored facts by model id (all, or those of ``model_ids``)."""
    if model_ids is None:
        found = store.rows(db, "SELECT * FROM model_evaluability")
    else:
        ids = list(model_ids)
        found = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found += store.rows(db, f"SELECT * FROM model_evaluability WHERE model_id IN ({marks})", chunk)
    return {r["model_id"]: Evaluability(**{**r, "runnable": bool(r["runnable"])}) for r in found}


def facet(db: Any, model_id: str, settings: Any, task: str = "") -> Evaluability:
    """What to show for one candidate without network: a local state now, else the stored check,
    else unknown."""
    local = local_evaluability(model_id, settings, task)
    if local is not None:
        return local
    return stored(db, [model_id]).get(model_id) or _fact(
        model_id, "unknown", "unknown", task=task, detail="not checked against the Hub yet"
    )


def iter_checks(
    model_ids: Iterable[str],
    settings: Any,
    *,
    tasks: dict[str, str] | None = None,
    per_minute: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    cancelled: Callable[[], bool] = lambda: False,
    progress: Callable[[int, int, str], None] | None = None,
    api: Any = None,
) -> Iterator[Evaluability]:
    """Check each model (local first, else one model_info + tree call), at most ``per_minute`` remote checks
    per minute; stops early when ``cancelled()`` or the Hub rate-limits us."""
    ids = list(dict.fromkeys(model_ids))
    rate = per_minute or models_settings(settings).check_per_minute
    interval = 60.0 / rate if rate > 0 else 0.0
    last_remote = -interval
    for i, model_id in enumerate(ids):
        if cancelled():
            break
        task = (tasks or {}).get(model_id, "")
        local = local_evaluability(model_id, settings, task)
        if local is None:
            wait = last_remote + interval - time.monotonic()
            if wait > 0:
                sleep(wait)
            last_remote = time.monotonic()
            local = evaluability(model_id, settings, task=task, api=api)
        yield local
        if progress is not None:
            progress(i + 1, len(ids), f"{model_id}: {local.label}")
        if local.state == "unknown" and "rate limited" in local.detail:
            return


def check_models(model_ids: Iterable[str], settings: Any, **kwargs: Any) -> list[Evaluability]:
    """:func:`iter_checks` as a list."""
    return list(iter_checks(model_ids, settings, **kwargs))


def unchecked_candidates(db: Any, settings: Any, *, limit: int = 0) -> dict[str, str]:
    """``{model_id: task}`` of the registry's candidates (not rejected or retired) whose evaluability is
    ``unknown``: no local copy and no stored check. What ``hfops models check --candidates`` checks.
    No network."""
    from hfops import registry
    from hfops.models.files import task_for

    flt = registry.CandidateFilter(statuses=["candidate", "evaluating", "shadow", "promoted"])
    out: dict[str, str] = {}
    page = 1
    while True:
        found, total = registry.list_candidates(db, flt, sort="score", page=page, page_size=1000)
        known = stored(db, [c.model_id for c in found])
        for c in found:
            task = task_for(c.pipeline_tag)
            if c.model_id not in known and local_evaluability(c.model_id, settings, task) is None:
                out[c.model_id] = task
                if limit and len(out) >= limit:
                    return out
        if page * 1000 >= total:
            return out
        page += 1
