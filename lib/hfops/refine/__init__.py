"""Query refinement: a local refiner (always available) with a budgeted, rate-limited HF Inference fallback.

Use :func:`refine` (one call, the documented result shape) or :func:`refine_detailed` (with the local
result and the HF attempt alongside). See docs/refine.md.
"""

from hfops.refine.result import (
    BYPASS_REASONS,
    MAX_QUERY_CHARS,
    MAX_SUGGESTIONS,
    SOURCES,
    RefineInputError,
    RefineResult,
    validate_query,
)
from hfops.refine.router import RefineOutcome, refine, refine_detailed, warm_up

__all__ = [
    "BYPASS_REASONS",
    "MAX_QUERY_CHARS",
    "MAX_SUGGESTIONS",
    "SOURCES",
    "RefineInputError",
    "RefineOutcome",
    "RefineResult",
    "refine",
    "refine_detailed",
    "validate_query",
    "warm_up",
]
