"""Demo: ask a question (SQuAD v2 paragraphs ranked by MiniLM next to BM25), guided query refinement, and the
leaderboard snapshot. Read-only; the default page of the demo (``SPACE_ID``, ``--demo``, ``[demo] enabled``).
Widgets and layout only: the data comes from :mod:`hfops.views.demo`."""

from __future__ import annotations

from typing import Any

import streamlit as st

from hfops.console import db, demo_mode, operator_errors, plain, require_settings, settings
from hfops.views import demo as view

# Widget keys (tests address widgets by these).
K_QUESTION = "demo_question"
K_OWN = "demo_own_question"
K_SAMPLE = "demo_sample"


POLL_SECONDS = 1.0


@st.cache_data(show_spinner=False, max_entries=128)
def refined(query: str) -> dict[str, Any]:
    """A guided sample through the refiner (cached: a rerun does not refine again)."""
    return view.refine_sample(query, settings())


def ask_a_question() -> None:
    st.subheader("Ask a question")
    with st.spinner("Indexing the SQuAD v2 paragraphs…"):
        search = view.passage_search(settings())
    st.caption(view.search_caption(search))
    choice = st.selectbox("Example question", search.sample_questions(), key=K_QUESTION)
    own = st.text_input("…or ask your own question", key=K_OWN, max_chars=500)
    loading = search.dense_loading
    st.fragment(answers, run_every=POLL_SECONDS if loading else None)(own.strip() or choice, loading)


def answers(question: str, polling: bool) -> None:
    """Both systems' top paragraphs side by side; re-runs on a timer while MiniLM is still loading."""
    search = view.passage_search(settings())
    with operator_errors("Ask a question"):
        found = search.search(question)
        for column, (name, passages) in zip(st.columns(2), found.items(), strict=True):
            with column:
                st.markdown(
                    f"**{name}** · `{search.model_ids[name]}`"
                )  # our own ids (code span: no escaping)
                if passages is None:
                    st.info(view.unavailable_note(search))
                    continue
                for p in passages:
                    st.markdown(
                        f"{p.rank}\\. **{plain(p.title)}**" + (" ✓ source paragraph" if p.source else "")
                    )
                    st.caption(plain(p.snippet))
    if polling and not search.dense_loading:
        st.rerun(scope="app")  # MiniLM is ready: a full run stops the timer


def guided_refinement() -> None:
    st.subheader("Guided query refinement")
    notes = view.guided_samples()
    if not notes:
        st.caption("No guided samples shipped (data/refine/samples.jsonl).")
        return
    query = st.selectbox("Messy query (public data)", list(notes), key=K_SAMPLE)
    result = refined(query)
    st.caption(
        f"What it shows: {plain(notes[query].get('note', ''))} · expected intent "
        f"{plain(notes[query].get('expected_intent', '?'))}"
    )
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
    boards = view.boards(db())
    if not boards:
        st.caption("No eval run in this store yet.")
        return
    for board in boards:
        st.markdown(board.heading)
        st.dataframe(board.frame, hide_index=True, key=f"demo_board_{board.key}")


require_settings()  # a configuration that does not load: its explanation instead of the page
st.title("Demo")
if demo_mode():
    st.info("Read-only demo: browse the candidates, eval runs and leaderboard; nothing can be changed here.")
with operator_errors("Ask a question"):
    ask_a_question()
with operator_errors("Refinement"):
    guided_refinement()
with operator_errors("Leaderboard"):
    leaderboard_snapshot()
