"""The quality score: a weighted sum of four terms in [0, 1], and its breakdown.

Pure functions; see docs/discovery.md.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from hfops.discovery.facts import ModelFacts

# Score weights: each term is in [0, 1]; no weight exceeds 0.3 so no term dominates.
SCORE_WEIGHTS = {"downloads": 0.3, "likes": 0.3, "recency": 0.25, "license": 0.15}
DOWNLOADS_SCALE = 7.0  # log10(1 + downloads) / 7: 10M downloads in 30 days -> 1.0
LIKES_SCALE = 4.0  # log10(1 + likes) / 4: 10k likes -> 1.0
RECENCY_HALF_LIFE_DAYS = 365.0
OPEN_LICENSES = ("apache-2.0", "mit", "bsd-3-clause", "bsd-2-clause", "bsd", "cc0-1.0", "unlicense")

Breakdown = dict[str, dict[str, float]]


def quality_score(facts: ModelFacts, now: datetime | None = None) -> tuple[float, Breakdown]:
    """Score in [0, 1] and its breakdown ``{term: {"value", "weight", "contribution"}}``.

    See docs/discovery.md.
    """
    now = now or datetime.now(UTC)
    reference = facts.last_modified or facts.created_at
    if reference:
        when = datetime.fromisoformat(reference.replace("Z", "+00:00"))
        age_days = max(0.0, (now - when).total_seconds() / 86400)
        recency = 0.5 ** (age_days / RECENCY_HALF_LIFE_DAYS)
    else:
        recency = 0.0
    if facts.license in OPEN_LICENSES:
        openness = 1.0
    elif facts.use_restricted:
        openness = 0.5
    elif facts.license:
        openness = 0.25
    else:
        openness = 0.0
    values = {
        "downloads": min(1.0, math.log10(1 + max(0, facts.downloads)) / DOWNLOADS_SCALE),
        "likes": min(1.0, math.log10(1 + max(0, facts.likes)) / LIKES_SCALE),
        "recency": recency,
        "license": openness,
    }
    breakdown = {
        term: {
            "value": round(v, 4),
            "weight": SCORE_WEIGHTS[term],
            "contribution": round(v * SCORE_WEIGHTS[term], 4),
        }
        for term, v in values.items()
    }
    score = round(sum(v * SCORE_WEIGHTS[t] for t, v in values.items()), 4)
    return score, breakdown
