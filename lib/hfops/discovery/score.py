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
    downloads = min(1.0, math.log10(1 + max(0, facts.downloads)) / DOWNLOADS_SCALE)
    likes = min(1.0, math.log10(1 + max(0, facts.likes)) / LIKES_SCALE)
    # spelled out term by term (a sync scores every candidate it stores): the same values, rounding and
    # order of summation as a loop over SCORE_WEIGHTS
    w_downloads, w_likes = SCORE_WEIGHTS["downloads"], SCORE_WEIGHTS["likes"]
    w_recency, w_license = SCORE_WEIGHTS["recency"], SCORE_WEIGHTS["license"]
    c_downloads, c_likes = downloads * w_downloads, likes * w_likes
    c_recency, c_license = recency * w_recency, openness * w_license
    breakdown = {
        "downloads": {
            "value": round(downloads, 4),
            "weight": w_downloads,
            "contribution": round(c_downloads, 4),
        },
        "likes": {"value": round(likes, 4), "weight": w_likes, "contribution": round(c_likes, 4)},
        "recency": {"value": round(recency, 4), "weight": w_recency, "contribution": round(c_recency, 4)},
        "license": {"value": round(openness, 4), "weight": w_license, "contribution": round(c_license, 4)},
    }
    score = round(c_downloads + c_likes + c_recency + c_license, 4)
    return score, breakdown
