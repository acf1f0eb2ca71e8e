"""View model of the Candidates page: filter options, one page of the table, one model's detail, status moves.

Hub text (ids, tags, file names, card data) is untrusted: this module returns it as data for dataframes and
``st.text``; the page escapes anything it puts in Markdown.
"""

from __future__ import annotations

import dataclasses
import math
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlite_utils

from hfops import discovery, registry, search_index
from hfops.config import Settings
from hfops.store import get_db, listed, loads, one
from hfops.views import as_dict

if TYPE_CHECKING:
    import altair as alt

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
PUBLISHED = "published"  # the sort key and column of the published retrieval score (MTEB MSMARCO nDCG@10)
SORT_LABELS = {
    "score": "Score",
    "downloads": "Downloads (30 days)",
    "likes": "Likes",
    "last_modified": "Last modified",
    "created_at": "Created",
    "model_id": "Model id",
    "status": "Status",
    PUBLISHED: "Published retrieval score (MTEB)",
}
# The table's columns, in order (the page gives each a Streamlit column type).
TABLE_COLUMNS = (
    "model_id",
    "score",
    "status",
    "runnable",
    "pipeline_tag",
    "license",
    "quantization",
    "downloads",
    "likes",
    "flag",
    "last_modified",
)
# The optional column, after the score: the published MSMARCO nDCG@10 (never mixed into our own columns).
PUBLISHED_AFTER = "score"
HISTORY_COLUMNS = ("at", "from_status", "to_status", "actor", "reason", "evidence")
Filter = registry.CandidateFilter


def hub_url(endpoint: str, model_id: str) -> str:
    """The model's page on the configured Hub; the id is percent-encoded (it is untrusted)."""
    return f"{endpoint.rstrip('/')}/{urllib.parse.quote(model_id, safe='/')}"


# --- filter options -----------------------------------------------------------------------------------------


def facets_marker(db: sqlite_utils.Database) -> tuple[Any, ...]:
    """What changes when a sync run changes the models: the key under which filter options may be cached
    (status changes never add options).

    The last run's stored row, not :func:`hfops.discovery.last_sync_run`: a key needs what is stored (a run
    that only reads as interrupted changed no model), and the liveness check behind that function imports
    the sync machinery (huggingface_hub, 0.5 s of the console's first page on 2 cores).
    """
    last = one(db, "SELECT id, status, finished_at, seen FROM sync_runs ORDER BY id DESC LIMIT 1") or {}
    return (last.get("id"), last.get("status"), last.get("finished_at"), last.get("seen"))


def facets(store_path: str) -> dict[str, list[str]]:
    """Filter options (:func:`hfops.registry.facet_values`); cache them under :func:`facets_marker`."""
    return registry.facet_values(get_db(store_path))


# --- published reference scores ---------------------------------------------------------------------------


def published_marker(db: sqlite_utils.Database) -> tuple[Any, ...]:
    """The key under which :func:`published_values` may be cached.

    The models' revisions change only by a sync.
    """
    return facets_marker(db)


def published_values(store_path: str) -> dict[str, float]:
    """``{model_id: published MTEB MSMARCO nDCG@10}`` of the stored models that have one (a few hundred at
    most: the shipped table's models), matched by id and by the stored revision (:mod:`hfops.reference`)."""
    from hfops import reference

    db = get_db(store_path)
    return reference.published_retrieval_scores(
        reference.references_for_models(db, reference.load_table().keys())
    )


# --- the table ----------------------------------------------------------------------------------------------


@dataclass
class CandidatePage:
    """One page of the candidate table."""

    rows: list[Any]  # registry.Candidate records
    total: int
    page: int
    page_size: int
    text_used: str | None = None  # the id search that matched (a separator variant of what was typed)
    runnable: dict[str, str] = field(default_factory=dict)  # model id -> how it can run here (short label)
    published: dict[str, float] | None = (
        None  # model id -> published score; None: the column is not asked for
    )

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))

    @property
    def caption(self) -> str:
        first = (self.page - 1) * self.page_size + 1
        shown = f"Showing {first:,}–{first + len(self.rows) - 1:,} of {self.total:,} candidates"
        return shown + (f" whose id contains “{self.text_used}”" if self.text_used else "")

    @property
    def ids(self) -> list[str]:
        return [str(row["model_id"]) for row in self.rows]

    @property
    def columns(self) -> list[str]:
        """:data:`TABLE_COLUMNS`, with :data:`PUBLISHED` after the score when the column is asked for."""
        columns = list(TABLE_COLUMNS)
        if self.published is not None:
            columns.insert(columns.index(PUBLISHED_AFTER) + 1, PUBLISHED)
        return columns

    def frame(self) -> pd.DataFrame:
        """The rows as a frame with :attr:`columns` (drawn on a canvas by the page: never HTML)."""
        frame = pd.DataFrame([as_dict(r) for r in self.rows], columns=list(TABLE_COLUMNS))
        modified = pd.to_datetime(frame["last_modified"], utc=True, errors="coerce")
        frame["last_modified"] = [d.strftime("%Y-%m-%d") if not pd.isna(d) else "" for d in modified]
        frame["flag"] = frame["flag"].fillna("")
        frame["runnable"] = [self.runnable.get(m, "unknown") for m in frame["model_id"]]
        if self.published is not None:
            values = self.published
            frame[PUBLISHED] = pd.array([values.get(m) for m in frame["model_id"]], dtype="Float64")
        return frame[self.columns]


# Up to this many matches, a page is cut from one scan of the matches rather than by walking a sort index
# (which looks up every row it passes until the page is full: 0.4 s at 100,000 candidates for a 1-row search).
SCAN_BELOW = 5000
# The table's row, from candidate_rows (same fields as hfops.registry.list_candidates gives).
ROW_COLUMNS = (
    "r.model_id, r.pipeline_tag, r.license, r.library_name AS library, r.downloads, r.likes, r.safetensors, "
    "r.quantization, r.score, r.status, r.flag, r.use_restricted, r.last_modified"
)


def _narrowed_by_index(db: sqlite_utils.Database, text: str) -> tuple[str, list[str]] | None:
    """``(subquery, params)`` of the candidates the search index allows for the id filter ``text``
    (:func:`hfops.search_index.matches`), or None (no filter, or one the index cannot narrow). The filter
    is ``model_id LIKE '%text%'``: every such id's search key holds ``text`` lower-cased without the
    separators when ``text`` is ASCII (``LIKE`` folds ASCII case only; a tab in ``text`` stays, as it stays
    in the key)."""
    key = _table_key(text)
    found = search_index.matches(db, key) if key else None
    return listed(found.candidates) if found is not None else None


def _common_word(db: sqlite_utils.Database, text: str) -> bool:
    """Whether the id filter ``text`` is a word so common that its page is sooner found by a walk than by the
    index's matches (:func:`hfops.search_index.common`)."""
    key = _table_key(text)
    return bool(key) and search_index.common(db, key)


def _table_key(text: str) -> str:
    """The search key every id matching the id filter ``text`` holds (see :func:`_narrowed_by_index`), or ""
    when ``text`` is empty or not ASCII."""
    text = text.strip()
    if not text or not text.isascii():
        return ""
    return _without_separators(text.lower())  # as SQL derives model_search.search_key: these separators only


def _narrowing(narrowed: tuple[str, list[str]] | None, only: set[str] | None) -> tuple[str, list[Any]]:
    """The clauses (starting ``" AND "``) and parameters keeping the candidates the index allows
    (``narrowed``, from :func:`_narrowed_by_index`) and the model ids ``only``."""
    clauses, params = "", []
    for kept in (narrowed, listed(only) if only is not None else None):
        if kept is not None:
            clauses += f" AND r.model_id IN ({kept[0]})"
            params += kept[1]
    return clauses, params


def _where(
    flt: registry.CandidateFilter, indexed: bool = True, narrowing: tuple[str, list[Any]] = ("", [])
) -> tuple[str, list[Any]]:
    """The registry's filter (:func:`hfops.registry.where_clause`, ``indexed`` as there) over
    ``candidate_rows r``, which carries the model facts and the candidate state under the same column names,
    with ``narrowing`` (clauses starting ``" AND "``, and their parameters) after it."""
    where, params = registry.where_clause(flt, models="r", candidates="r", indexed=indexed)
    if narrowing[0]:
        where = (where or " WHERE 1") + narrowing[0]
    return where, [*params, *narrowing[1]]


def count_candidates(db: sqlite_utils.Database, flt: registry.CandidateFilter) -> int:
    """How many candidates match ``flt``."""
    return _count(db, *_where(flt))


def _count(db: sqlite_utils.Database, where: str, params: list[Any]) -> int:
    return int(db.execute(f"SELECT COUNT(*) FROM candidate_rows r{where}", params).fetchone()[0])


def list_candidates(
    db: sqlite_utils.Database,
    flt: registry.CandidateFilter,
    sort: str = "score",
    descending: bool = True,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    published: dict[str, float] | None = None,
    only: set[str] | None = None,
) -> tuple[list[registry.Candidate], int]:
    """:func:`hfops.registry.list_candidates` over the narrow ``candidate_rows`` (same filters, order, rows
    and errors), plus the sort key :data:`PUBLISHED`: models with a published score first (by that score),
    then the rest by our score; ``published`` holds the values (:func:`published_values`). ``only``: keep
    these model ids (one parameter however many)."""
    if sort not in registry.SORT_KEYS and sort != PUBLISHED:
        raise registry.RegistryError(
            f"cannot sort by {sort!r}; choose one of {', '.join([*registry.SORT_KEYS, PUBLISHED])}"
        )
    if page < 1 or page_size < 1:
        raise registry.RegistryError("page and page_size must be >= 1")
    offset = (page - 1) * page_size
    walkable = bool(flt.text.strip()) and sort in WALKED_SORTS and offset + page_size <= WALK_CANDIDATES
    # A common word's page is looked for among the first candidates in the page's order before the index's
    # matches are read (hfops.search_index.common); a page found there is exact.
    common = walkable and _common_word(db, flt.text)
    narrowed = None if common else _narrowed_by_index(db, flt.text)
    narrowing = _narrowing(narrowed, only)
    where, params = _where(flt, narrowing=narrowing)
    if walkable and not narrowed:  # (a common word's page: among the first candidates in the page's order)
        walked = _walked_page(db, sort, descending, where, params, page_size, offset, flt.text)
        if walked is not None:
            return walked, _count(db, where, params)
        if common and (narrowed := _narrowed_by_index(db, flt.text)):  # the walk fell short: the matches
            narrowing = _narrowing(narrowed, only)
            where, params = _where(flt, narrowing=narrowing)
    if flt.text.strip() and sort != PUBLISHED:  # an id search scans anyway: count and page in one scan
        column = registry.sort_column(sort, models="r", candidates="r")
        order = f"+{column} {'DESC' if descending else 'ASC'}, r.model_id ASC"
        found = db.execute(
            f"SELECT {ROW_COLUMNS}, COUNT(*) OVER () AS matches FROM candidate_rows r{where} "
            f"ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, page_size, offset],
        )
        names = [d[0] for d in found.description]
        got = [dict(zip(names, row, strict=True)) for row in found.fetchall()]
        if got:
            return [registry.Candidate.from_row(r) for r in got], int(got[0]["matches"])
    total = _count(db, where, params)
    # A few matches (a search, a rare facet) are found through the filters' indexes (migration 0020) and
    # sorted; walking a sort index would visit every row. Many matches are paged by walking the sort
    # column's index, the filters checked on the rows it passes: a facet index would hand them all to a sort.
    few = total <= SCAN_BELOW
    if not few:
        where, params = _where(flt, indexed=False, narrowing=narrowing)
    if sort != PUBLISHED:
        column = registry.sort_column(sort, models="r", candidates="r")
        column = f"+{column}" if few else column
        order = f"{column} {'DESC' if descending else 'ASC'}, r.model_id ASC"
        return _rows(db, where, params, order, page_size, offset), total
    # Published first: the few candidates with a published score (a few hundred at most) ordered here, then
    # the others by our score, paged in SQL.
    values = published or {}
    ids = sorted(values)
    marks = f"({', '.join('?' for _ in ids)})"
    joiner = " AND " if where else " WHERE "
    head = (
        _rows(db, f"{where}{joiner}r.model_id IN {marks}", [*params, *ids], "r.model_id", len(ids) or 1, 0)
        if ids
        else []
    )
    head.sort(key=lambda r: r.model_id)
    head.sort(key=lambda r: values[r.model_id], reverse=descending)
    shown = head[offset : offset + page_size]
    if len(shown) < page_size:
        rest_where = f"{where}{joiner}r.model_id NOT IN {marks}" if ids else where
        rest_offset = max(0, offset - len(head))
        shown += _rows(
            db,
            rest_where,
            [*params, *ids],
            f"{'+' if few else ''}r.score DESC, r.model_id ASC",
            page_size - len(shown),
            rest_offset,
        )
    return shown, total


# A search the index cannot narrow (a common word, a short one), or a word common enough that reading its
# matches costs more (hfops.search_index.common), first looks for its rows among this many candidates in the
# order it shows them (one walk of an index); a page found there is exact.
WALK_CANDIDATES = 2000
# The sort keys with an index of candidate_rows to walk (migration 0014, and the primary key).
WALKED_SORTS = ("score", "downloads", "model_id")


def _walked_page(
    db: sqlite_utils.Database,
    sort: str,
    descending: bool,
    where: str,
    params: list[Any],
    page_size: int,
    offset: int,
    text: str,
) -> list[registry.Candidate] | None:
    """The page of the candidates matching ``where``, found among the :data:`WALK_CANDIDATES` first of all
    candidates in the page's order; None when those hold fewer matches than the page needs (the caller
    scans). Any match past them comes after every match among them, so a full page found there is exact.
    ``text``, the id filter ``where`` holds, is tested on the walked ids before their rows are read (the same
    test: 5 -> 2 ms a walk at 100,000 candidates)."""
    direction = "DESC" if descending else "ASC"
    walk = f"{registry.sort_column(sort, models='w', candidates='w')} {direction}, w.model_id ASC"
    order = f"{registry.sort_column(sort, models='r', candidates='r')} {direction}, r.model_id ASC"
    first = f"SELECT model_id FROM candidate_rows w ORDER BY {walk} LIMIT ?"
    source = f"({first}) w JOIN candidate_rows r USING (model_id)"
    on_ids, id_params = registry.where_clause(registry.CandidateFilter(text=text), models="w", candidates="w")
    if on_ids:
        where = (where or " WHERE 1") + " AND " + on_ids.removeprefix(" WHERE ")
    rows = _rows(db, where, [WALK_CANDIDATES, *params, *id_params], order, page_size, offset, source=source)
    return rows if len(rows) == page_size else None


def _rows(
    db: sqlite_utils.Database,
    where: str,
    params: list[Any],
    order: str,
    limit: int,
    offset: int,
    source: str = "candidate_rows r",
) -> list[registry.Candidate]:
    found = db.execute(
        f"SELECT {ROW_COLUMNS} FROM {source}{where} ORDER BY {order} LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    names = [d[0] for d in found.description]
    return [registry.Candidate.from_row(dict(zip(names, row, strict=True))) for row in found.fetchall()]


def text_variants(text: str) -> list[str]:
    """``text`` with its words joined by each id separator ("phi 2" -> "phi-2", "phi_2", "phi.2", "phi/2",
    "phi2"): what a literal id search tries when the words as typed match nothing."""
    words = [w for w in re.split(r"[\s\-_./:]+", text.strip()) if w]
    if len(words) < 2:
        return []
    return [sep.join(words) for sep in ("-", "_", ".", "/", "")]


def candidate_page(
    db: sqlite_utils.Database,
    flt: registry.CandidateFilter,
    sort: str,
    descending: bool,
    page: int,
    page_size: int,
    settings: Any = None,
    runnable_only: bool = False,
    published: dict[str, float] | None = None,
) -> CandidatePage:
    """The requested page; the first page when the result shrank under it (``page`` tells which it is).

    With ``settings`` each row gets its evaluability label (:mod:`hfops.evals.runnable`, no network);
    ``runnable_only`` keeps the candidates that can run here (packaged, local, cached, or checked runnable).
    ``published`` (:func:`published_values`) adds the published-score column and is what the sort key
    :data:`PUBLISHED` orders by.

    A search whose words match no id as typed is tried with the words joined by id separators ("phi 2"
    finds phi-2); :attr:`CandidatePage.text_used` says which spelling matched.
    """

    from hfops.evals import runnable

    keep = runnable.runnable_ids(db, settings) if runnable_only and settings is not None else None

    def fetch(f: registry.CandidateFilter, at: int) -> CandidatePage:
        found, total = list_candidates(db, f, sort, descending, at, page_size, published, only=keep)
        labels = {}
        if settings is not None:
            facts = runnable.facts(db, [(str(r["model_id"]), r["pipeline_tag"]) for r in found], settings)
            labels = {m: runnable.short_label(fact) for m, fact in facts.items()}
        return CandidatePage(
            found,
            total,
            at,
            page_size,
            text_used=f.text.strip() or None,
            runnable=labels,
            published=published,
        )

    result = fetch(flt, page)
    if not result.total:
        for variant in text_variants(flt.text):
            tried = fetch(dataclasses.replace(flt, text=variant), page)
            if tried.total:
                flt, result = dataclasses.replace(flt, text=variant), tried
                break
    if page > result.pages:
        result = fetch(flt, 1)
    return result


# --- one model ----------------------------------------------------------------------------------------------


def breakdown_rows(breakdown: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows ``term, value, weight, contribution`` from a stored breakdown
    ``{term: {value, weight, contribution}}``
    (a bare number is taken as the contribution)."""
    out = []
    for term, entry in breakdown.items():
        if isinstance(entry, dict):
            out.append(
                {
                    "term": term,
                    "value": entry.get("value"),
                    "weight": entry.get("weight"),
                    "contribution": entry.get("contribution"),
                }
            )
        else:
            out.append({"term": term, "value": None, "weight": None, "contribution": entry})
    return out


def contributions(rows: list[dict[str, Any]]) -> dict[str, float]:
    """``{term: contribution}`` of the rows whose contribution is a number."""
    return {
        r["term"]: float(r["contribution"])
        for r in rows
        if isinstance(r["contribution"], int | float) and not isinstance(r["contribution"], bool)
    }


def breakdown_chart(breakdown: dict[str, float]) -> alt.TopLevelMixin:
    """A small horizontal bar chart of the score's per-term contributions (terms in the breakdown's order)."""
    import altair as alt  # only when a model is opened

    terms = list(breakdown)
    data = pd.DataFrame({"term": terms, "contribution": [breakdown[t] for t in terms]})
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("term:N", sort=terms, title=None),
            x=alt.X("contribution:Q", title="contribution to the score"),
            tooltip=["term", alt.Tooltip("contribution:Q", format=".3f")],
        )
        .properties(height=30 * len(terms))
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass
class ModelDetail:
    """Everything the detail view shows of one model, shaped for display."""

    model_id: str
    hub_url: str
    status: str
    score: float
    downloads: int
    likes: int
    flag: str | None
    rule_failures: list[str]
    use_restricted: bool
    breakdown: list[dict[str, Any]]
    facts: list[dict[str, str]]
    tags: str
    files: list[str]
    history: pd.DataFrame
    raw: dict[str, Any]
    next_statuses: tuple[str, ...] = field(default=())
    published: list[dict[str, str]] = field(default_factory=list)  # published MTEB scores, one row per task
    published_note: str = ""  # source, revision and how it matches; our own measurement beside it

    @property
    def chart_terms(self) -> dict[str, float]:
        return contributions(self.breakdown)


def model_detail(db: sqlite_utils.Database, model_id: str, settings: Settings) -> ModelDetail | None:
    """The detail of ``model_id``, or None when it is not stored."""
    model = registry.get_model(db, model_id)
    if model is None:
        return None
    candidate = model.get("candidate") or {}
    facts = {
        "pipeline tag": model.get("pipeline_tag"),
        "task": model.get("task"),
        "licence": model.get("license"),
        "library": model.get("library_name"),
        "safetensors": model.get("safetensors"),
        "quantization": model.get("quantization") or "none",
        "downloads (all time)": model.get("downloads_all_time"),
        "created": model.get("created_at"),
        "last modified": model.get("last_modified"),
        "gated": model.get("gated"),
        "source": model.get("source"),
        "first seen": model.get("first_seen"),
        "last seen": model.get("last_seen"),
    }
    status = candidate.get("status")
    return ModelDetail(
        model_id=model["model_id"],
        hub_url=hub_url(discovery.endpoint_in_use(settings), model["model_id"]),
        status=status or "—",
        score=float(candidate.get("score") or 0.0),
        downloads=int(model.get("downloads") or 0),
        likes=int(model.get("likes") or 0),
        flag=candidate.get("flag"),
        rule_failures=[str(f) for f in model.get("rule_failures") or []],
        use_restricted=bool(model.get("use_restricted")),
        breakdown=breakdown_rows(candidate.get("score_breakdown") or {}),
        facts=[{"field": k, "value": _text(v)} for k, v in facts.items()],
        tags=", ".join(str(t) for t in model.get("tags") or []) or "(none)",
        files=[str(s) for s in model.get("siblings") or []],
        history=pd.DataFrame(model.get("history") or [], columns=list(HISTORY_COLUMNS)),
        raw=model.get("raw") or {},
        next_statuses=registry.TRANSITIONS.get(status or "", ()),
        **published_scores(db, model["model_id"]),
    )


def published_scores(db: sqlite_utils.Database, model_id: str) -> dict[str, Any]:
    """The published MTEB scores of ``model_id`` and a note naming their source and revision, with the
    measured nDCG@10 of our own latest MS MARCO run beside the published MSMARCO one (two kinds of number,
    kept apart)."""
    from hfops import reference
    from hfops.evals import queries

    ref = reference.references_for_models(db, [model_id]).get(model_id)
    if ref is None:
        return {}
    rows = [
        {"task": task, "published": f"{value:.3f}", "metric": reference.METRIC_OF_TASK.get(task, "")}
        for task, value in sorted(ref.scores.items())
    ]
    match = (
        "registry revision unknown"
        if ref.revision_match is None
        else "matches the registry revision"
        if ref.revision_match
        else "differs from the registry revision"
    )
    note = f"Published by {ref.source}, revision {ref.revision} ({match})."
    measured = [s for s in queries.latest_scores(db) if s.model_id == model_id and s.dataset == "ms_marco"]
    ours = next((s.value for s in measured if s.metric == "ndcg@10"), None)
    if ours is not None and ref.msmarco is not None:
        note += (
            f" Our measured nDCG@10 on the MS MARCO sample: {ours:.3f}; published MSMARCO nDCG@10: "
            f"{ref.msmarco:.3f} (different measurements: compare orders, not values)."
        )
    return {"published": rows, "published_note": note}


def change_status(db: sqlite_utils.Database, model_id: str, to_status: str, reason: str) -> str:
    """Move ``model_id`` (audited, actor ``console``); returns what happened, for the operator."""
    result = registry.set_status(db, model_id, to_status, reason, actor="console")
    message = f"{result['model_id']}: {result['from']} → {result['to']}"
    if result["demoted"]:
        message += "; demoted to shadow: " + ", ".join(result["demoted"])
    return message


CHECK_BATCH = 200  # candidates one click sends to the evaluability check (the job is rate-limited)


def queue_evaluability_checks(store_path: str, settings: Settings, limit: int = CHECK_BATCH) -> str:
    """Queue the worker's evaluability check of up to ``limit`` unchecked candidates; what happened."""
    from hfops.models.jobs import enqueue_candidate_checks

    job_id, count = enqueue_candidate_checks(store_path, settings, limit=limit)
    if job_id is None:
        return "Every candidate is checked already (or has a local copy)."
    return (
        f"Job {job_id} checks {count} candidates against the Hub (at most "
        f"{settings.models.check_per_minute} a minute); the Runnable column fills in as it goes."
    )


# --- search over every synced model -------------------------------------------------------------------------

SEARCH_SEPARATORS = ("-", "_", ".", "/", " ", ":")
SEARCH_LIMIT = 50
NOT_A_CANDIDATE = "not a candidate"
SEARCH_COLUMNS = (
    "model_id",
    "status",
    "score",
    "pipeline_tag",
    "license",
    "downloads",
    "fails the rule",
)


def search_key(text: str) -> str:
    """``text`` lower-cased without separators: "Phi 2", "phi-2" and "PHI_2" are all ``phi2`` (the form
    ``model_search.search_key`` holds, migration 0014)."""
    return "".join(_without_separators(text.casefold()).split())


def _without_separators(text: str) -> str:
    for sep in SEARCH_SEPARATORS:
        text = text.replace(sep, "")
    return text


@dataclass
class SearchResult:
    """Every synced model whose id matches a search, candidates first; non-candidates say which rule
    clauses they fail."""

    text: str
    rows: list[dict[str, Any]]
    total: int

    @property
    def ids(self) -> list[str]:
        return [str(r["model_id"]) for r in self.rows]

    @property
    def non_candidates(self) -> int:
        return sum(1 for r in self.rows if r["status"] == NOT_A_CANDIDATE)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=list(SEARCH_COLUMNS))

    @property
    def caption(self) -> str:
        shown = f"the first {len(self.rows)}" if self.total > len(self.rows) else "all"
        return (
            f"{self.total:,} synced model(s) match “{self.text}” ignoring case and separators "
            f"(- _ . / space); {shown} shown, candidates first."
        )


def _walked_candidates(db: sqlite_utils.Database, pattern: str, limit: int) -> list[str] | None:
    """The first ``limit`` candidates whose search key is ``LIKE pattern``, in the search's order (score, then
    downloads, high first, then id), from the :data:`WALK_CANDIDATES` best-scored candidates (one walk of
    the score index); None when these may not hold them all (fewer found, or ties at the edge)."""
    edge = db.execute(
        "SELECT score FROM candidate_rows ORDER BY score DESC, model_id LIMIT 1 OFFSET ?", [WALK_CANDIDATES]
    ).fetchone()
    picked = db.execute(
        "SELECT w.model_id, w.score FROM (SELECT model_id, score FROM candidate_rows "
        "ORDER BY score DESC, model_id LIMIT ?) w JOIN model_search s ON s.model_id = w.model_id "
        "WHERE s.search_key LIKE ? ESCAPE '\\' ORDER BY w.score DESC, s.downloads DESC, s.model_id LIMIT ?",
        [WALK_CANDIDATES, pattern, limit],
    ).fetchall()
    # every candidate outside the walk scores at most the edge's score: below the last one picked, so after it
    if len(picked) == limit and (edge is None or picked[-1][1] > edge[0]):
        return [row[0] for row in picked]
    return None


def search_models(db: sqlite_utils.Database, text: str, limit: int = SEARCH_LIMIT) -> SearchResult | None:
    """Every synced model (candidate or not) whose id matches ``text`` ignoring case and separators; None
    for an empty search."""
    key = search_key(text)
    if not key:
        return None
    # A common word's first rows are looked for among the best-scored candidates before the index's matches
    # are read (hfops.search_index.common); the index's matches before a scan.
    common = search_index.common(db, key)
    matched = None if common else search_index.matches(db, key)
    pattern = registry.contains_pattern(key)
    walked = _walked_candidates(db, pattern, limit) if matched is None else None
    if walked is None and common:  # the walk fell short: the index's matches
        matched = search_index.matches(db, key)
    if matched is not None:  # the index's matches, no scan
        total, ids = len(matched.ids), list(matched.candidates[:limit])
        if len(ids) < limit:  # then the other matches, by downloads
            others = set(matched.ids).difference(matched.candidates)
            subquery, params = listed(others)
            ids += [
                r[0]
                for r in db.execute(
                    f"SELECT model_id FROM model_search WHERE model_id IN ({subquery}) "
                    "ORDER BY downloads DESC, model_id LIMIT ?",
                    [*params, limit - len(ids)],
                )
            ]
    elif walked is not None:  # (a common word's first rows are among the best-scored candidates)
        counted = search_index.count(db, key)  # counted by the index, else by a scan
        if counted is None:
            count = "SELECT COUNT(*) FROM model_search WHERE search_key LIKE ? ESCAPE '\\'"
            counted = int(db.execute(count, [pattern]).fetchone()[0])
        total, ids = counted, walked
    else:
        # the matches' count and the first ``limit`` of them, from model_search (0014)
        picked = db.execute(
            "SELECT s.model_id, COUNT(*) OVER () FROM model_search s "
            "LEFT JOIN candidate_rows r ON r.model_id = s.model_id WHERE s.search_key LIKE ? ESCAPE '\\' "
            "ORDER BY r.model_id IS NULL, r.score DESC, s.downloads DESC, s.model_id LIMIT ?",
            [pattern, limit],
        ).fetchall()
        total, ids = (int(picked[0][1]) if picked else 0), [r[0] for r in picked]
    details = {
        row[0]: row
        for row in db.execute(
            "SELECT m.model_id, c.status, c.score, m.pipeline_tag, m.license, m.library_name, m.downloads, "
            "m.rule_failures FROM models m LEFT JOIN candidates c ON c.model_id = m.model_id "
            f"WHERE m.model_id IN ({', '.join('?' for _ in ids)})",
            ids,
        ).fetchall()
    }
    found = [details[m] for m in ids if m in details]
    rows = []
    for model_id, status, score, tag, licence, library, downloads, failures in found:
        clauses = [str(f) for f in loads(failures, [])]
        rows.append(
            {
                "model_id": model_id,
                "status": status or NOT_A_CANDIDATE,
                "score": score,
                "pipeline_tag": tag,
                "license": licence,
                "library": library,
                "downloads": downloads,
                "fails the rule": "; ".join(clauses) if status is None else "",
            }
        )
    return SearchResult(text.strip(), rows, total)


# --- why a filter shows nothing -----------------------------------------------------------------------------


def active_filters(flt: registry.CandidateFilter) -> list[tuple[str, registry.CandidateFilter]]:
    """``(label, the filter without it)`` for every filter that is set."""
    out = []
    for name, label in (
        ("pipeline_tags", "pipeline tag"),
        ("licenses", "licence"),
        ("libraries", "library"),
        ("quantization", "quantization"),
        ("statuses", "status"),
    ):
        values = getattr(flt, name)
        if values:
            without = dataclasses.replace(flt)
            setattr(without, name, [])
            out.append((f"{label} {', '.join(values)}", without))
    if flt.min_score:
        out.append((f"minimum score {flt.min_score:g}", dataclasses.replace(flt, min_score=0.0)))
    if flt.text.strip():
        out.append((f"model id contains “{flt.text.strip()}”", dataclasses.replace(flt, text="")))
    if flt.flagged_only:
        out.append(("flagged only", dataclasses.replace(flt, flagged_only=False)))
    return out


def explain_empty(db: sqlite_utils.Database, flt: registry.CandidateFilter) -> str:
    """Why the table is empty: an empty store, no model passing the rule, or which filters exclude what."""
    models = int(db.execute("SELECT COUNT(*) FROM models").fetchone()[0])
    if not models:
        return (
            "The store holds no models yet: load the embedded snapshot or sync the Hub from the Status page."
        )
    candidates = count_candidates(db, registry.CandidateFilter())
    if not candidates:
        return (
            f"{models:,} models are synced but none passes the candidate rule ([discovery] in the config): "
            "search below shows which rule clauses a model fails."
        )
    filters = active_filters(flt)
    lifted = []
    for label, without in filters:
        n = count_candidates(db, without)
        if n:
            lifted.append(f"without {label}: {n:,}")
    text = f"No candidate matches these filters ({candidates:,} candidates in the store)"
    if lifted:
        text += "; " + "; ".join(lifted)
    return text + ". Clear filters to see them all."
