"""Compute away from the store: eval batches on compute workers through huey's Redis storage.

- :mod:`~hfops.remote.payload`: what travels (plain data with a schema version; a worker refuses another).
- :mod:`~hfops.remote.compute`: the compute step of a run (systems prepared once, batch after batch), shared
  by the in-process path and the workers; the workers' in-memory inference cache.
- :mod:`~hfops.remote.acquire`: model acquisition across machines through the one resolver (a compute worker
  fetches the revision the owner pinned itself; the owner pins a download from the Hub's metadata).
- :mod:`~hfops.remote.broker`: the compute queue (``RedisHuey``), heartbeats, claims and the compute worker.
- :mod:`~hfops.remote.executor`: the seam the run loop calls (local with SQLite, remote with Redis); the
  store owner collects the results and writes them.

The store owner is the worker on the console's machine (``hfops worker --role all|writer``); compute
workers (``--role compute``) never open a store.
"""

from __future__ import annotations

from hfops.remote.payload import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION"]
