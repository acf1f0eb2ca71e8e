"""The free-tier ledger: what is left of the Hub's rate-limit windows and of the month's Inference allowance.

- :mod:`hfops.ledger.hub_window`: ``RateLimit`` headers of every Hub response, per bucket, shared by all
  processes using the store; requests wait for the reset instead of spending a window's reserve.
- :mod:`hfops.ledger.inference_usage`: Inference API requests and tokens per month, model and base URL;
  the monthly allowance, the part kept for refinement, and the month closed by a 402.
- :mod:`hfops.ledger.install`: :func:`install` puts both on huggingface_hub's HTTP session (once per process).
- :mod:`hfops.ledger.metrics`: the Prometheus families the collector adds at scrape time.

See docs/free_tier.md.
"""

from __future__ import annotations

from hfops.ledger.install import inference_calls, install, installed, uninstall

__all__ = ["inference_calls", "install", "installed", "uninstall"]
