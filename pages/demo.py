"""Demo: ask a question (SQuAD v2 paragraphs ranked by MiniLM next to BM25), guided query refinement, and the
leaderboard snapshot. Read-only; the default page of the demo (``SPACE_ID``, ``--demo``, ``[demo] enabled``)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from hfops import demo
from hfops.console import db, demo_mode, operator_errors, plain, settings

# Widget keys (tests address widgets by these).
K_QUESTION = "demo_question"
K_OWN = "demo_own_question"
K_SAMPLE = "demo_sample"


@st.cache_resource(show_spinner="Loading MiniLM and indexing the SQuAD v2 paragraphs…")
def passage_search() -> demo.PassageSearch:
    """One index per process, shared by all sessions."""
    return demo.PassageSearch(settings())


@st.cache_data(show_spinner=False, max_entries=128)
def refined(query: str) -> dict[str, Any]:
    """A guided sample through the refiner (cached: a rerun does not refine again)."""
    return demo.refine_sample(query, settings())


def ask_a_question() -> None:
    st.subheader("Ask a question")
    search = passage_search()
    st.caption(f"{search.paragraphs} SQuAD v2 paragraphs (dev sample, CC BY-SA 4.0) ranked for your question by "
               f"`{search.model_ids['MiniLM']}` (packaged, local) and by BM25. ✓ marks the paragraph a dataset "
               "question was written from.")
    choice = st.selectbox("Example question", search.sample_questions(), key=K_QUESTION)
    own = st.text_input("…or ask your own question", key=K_OWN, max_chars=500)
    question = own.strip() or choice
    found = search.search(question)
    for column, (name, passages) in zip(st.columns(2), found.items(), strict=True):
        with column:
            st.markdown(f"**{name}** · `{search.model_ids[name]}`")  # our own ids (code span: no escaping)
            for p in passages:
                st.markdown(f"{p.rank}\\. **{plain(p.title)}**" + (" ✓ source paragraph" if p.source else ""))
                st.caption(plain(p.snippet))


def guided_refinement() -> None:
    st.subheader("Guided query refinement")
    samples = demo.guided_samples()
    if not samples:
        st.caption("No guided samples shipped (data/refine/samples.jsonl).")
        return
    notes = {s["query"]: s for s in samples}
    query = st.selectbox("Messy query (public data)", list(notes), key=K_SAMPLE)
    result = refined(query)
    st.caption(f"What it shows: {plain(notes[query].get('note', ''))} · expected intent "
               f"{plain(notes[query].get('expected_intent', '?'))}")
    left, middle, right = st.columns(3)
    left.metric("Intent", result["intent"])
    middle.metric("Confidence", f"{result['confidence']:.2f}")
    right.metric("Latency", f"{result['latency_ms']:.0f} ms", help=f"budget {result['budget_ms']} ms")
    st.markdown(f"**Refined:** {plain(result['refined'])}")
    for i, suggestion in enumerate(result["suggestions"], 1):
        st.markdown(f"Try asking {i}: {plain(suggestion)}")
    fallback = f" · HF fallback not used ({result['bypass_reason']})" if result["bypass_reason"] else ""
    st.caption(f"Source: {result['source']} (`{result['model']}`){fallback}")


def leaderboard_snapshot() -> None:
    st.subheader("Leaderboard snapshot")
    boards = demo.leaderboard_snapshot(db())
    if not boards:
        st.caption("No eval run in this store yet.")
        return
    for board in boards:
        metric = board["primary"]
        frame = pd.DataFrame(board["rows"])
        columns = [c for c in ("model_id", "status", "role", metric, f"{metric} CI", "examples", "recommendation",
                               "evaluated_at") if c in frame.columns]
        st.markdown(f"**{board['task']} · {board['dataset']}** — primary metric {metric}, latest succeeded run per model")
        st.dataframe(frame[columns], hide_index=True, key=f"demo_board_{board['task']}_{board['dataset']}")


st.title("Demo")
if demo_mode():
    st.info("Read-only demo: browse the candidates, eval runs and leaderboard; nothing can be changed here.")
with operator_errors("Ask a question"):
    ask_a_question()
with operator_errors("Refinement"):
    guided_refinement()
with operator_errors("Leaderboard"):
    leaderboard_snapshot()
