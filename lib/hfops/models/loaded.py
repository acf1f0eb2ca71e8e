"""The models loaded in this process: one per key, loaded on first use, shared by every user, freed at exit.

Every backend that runs a model here goes through :func:`shared` (sentence-transformers embedders,
transformers pipelines, llama.cpp and transformers GGUF generators): a model is loaded once per process and
key, lazily, never at import. Loading is announced to the current progress scope (``loading ...``, an
interlude in the phase that needed the model: :func:`hfops.progress.interlude`), since it can take a while
(seconds for MiniLM, tens of seconds on a loaded machine); two keys load independently, two users of one
key wait for the same load.

:func:`use_lock` is the lock every user of one loaded model holds while it runs it, where the model is not
safe to share between threads (a llama.cpp context). At exit, models that have a ``close()`` (llama.cpp's
``Llama``) are closed under that lock while the interpreter is whole: left to ``Llama.__del__`` at shutdown,
the freeing runs after llama_cpp's own globals are gone (a TypeError, or a segfault).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Hashable
from typing import Any

from hfops import progress

log = logging.getLogger(__name__)

EXIT_WAIT_SECONDS = 5.0  # at exit, how long to wait for a run in progress before leaving its model be

_loaded: dict[Hashable, Any] = {}
_use_locks: dict[Hashable, threading.Lock] = {}  # one per model: e.g. a llama.cpp context is not thread-safe
_load_locks: dict[Hashable, threading.Lock] = {}  # one per key: its first users wait for the same load
_lock = threading.Lock()  # guards the three tables (never held while a model loads)


def shared(key: Hashable, loader: Callable[[], Any], label: str = "") -> Any:
    """The model loaded under ``key``, loading it with ``loader()`` on first use (``loading {label}``
    reported to the current progress scope). A loader that raises leaves nothing behind: the next use tries
    again."""
    with _lock:
        if key in _loaded:
            return _loaded[key]
        gate = _load_locks.setdefault(key, threading.Lock())
    with gate:
        with _lock:
            if key in _loaded:
                return _loaded[key]
        if label:
            with progress.interlude(f"loading {label}"):
                model = loader()
        else:
            model = loader()
        with _lock:
            _loaded[key] = model
        return model


def is_loaded(key: Hashable) -> bool:
    with _lock:
        return key in _loaded


def use_lock(key: Hashable) -> threading.Lock:
    """The lock every user of the model loaded under ``key`` holds while it runs it."""
    with _lock:
        return _use_locks.setdefault(key, threading.Lock())


def unload_all() -> None:
    """Forget every loaded model (tests, benchmarks); nothing is closed."""
    with _lock:
        _loaded.clear()


def close_all(wait_seconds: float = EXIT_WAIT_SECONDS) -> int:
    """Forget every loaded model and close those that have a ``close()``, each under its use lock; a model
    still in use after ``wait_seconds`` (a daemon thread generating) is left be: freeing it under the thread
    crashes. How many were closed."""
    with _lock:
        models = [(model, _use_locks.setdefault(key, threading.Lock())) for key, model in _loaded.items()]
        _loaded.clear()
    closed = 0
    for model, lock in models:
        close = getattr(model, "close", None)
        if not callable(close) or not lock.acquire(timeout=wait_seconds):
            continue
        try:
            close()
            closed += 1
        except Exception as exc:  # exiting anyway: never turn an exit into a traceback
            log.debug("closing a loaded model: %s", exc)
        finally:
            lock.release()
    return closed


atexit.register(close_all)
