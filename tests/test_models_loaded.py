"""The process's one cache of loaded models (hfops.models.loaded): every backend's models load once per key,
announce their loading to the job's progress, are used under a per-model lock and closed at exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hfops import progress
from hfops.models import loaded

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def empty_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fresh tables, so models other tests of this process loaded are neither seen nor closed here."""
    for name in ("_loaded", "_use_locks", "_load_locks"):
        monkeypatch.setattr(loaded, name, {})
    yield


class Closable:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_a_model_loads_once_per_key_however_many_threads_ask(empty_cache: None) -> None:
    calls: list[str] = []
    release = threading.Event()

    def slow_loader() -> str:
        calls.append("a")
        release.wait(10)
        return "model a"

    got: list[Any] = []
    threads = [threading.Thread(target=lambda: got.append(loaded.shared("a", slow_loader))) for _ in range(4)]
    for t in threads:
        t.start()
    assert loaded.shared("b", lambda: "model b") == "model b"  # another key does not wait for a's load
    release.set()
    for t in threads:
        t.join()
    assert got == ["model a"] * 4 and calls == ["a"]
    assert loaded.shared("a", lambda: "another") == "model a"


def test_a_failed_load_leaves_nothing_behind(empty_cache: None) -> None:
    def broken() -> Any:
        raise OSError("no such file")

    with pytest.raises(OSError):
        loaded.shared("k", broken)
    assert not loaded.is_loaded("k")
    assert loaded.shared("k", lambda: "second try") == "second try"


def test_loading_is_announced_to_the_current_progress_scope(empty_cache: None) -> None:
    seen: list[tuple[Any, ...]] = []
    with progress.scope(progress.Phases(lambda *a, **k: seen.append(a), prefix="run 3: ")):
        loaded.shared("m", lambda: object(), "acme/model (sentence-transformers)")
        loaded.shared("m", lambda: object(), "acme/model (sentence-transformers)")  # loaded: nothing to say
    assert [m for _, _, m in seen] == ["run 3: loading acme/model (sentence-transformers)"]
    loaded.shared("n", lambda: object(), "outside any scope")  # no scope: silent, still loads
    assert loaded.is_loaded("n")


def test_use_lock_is_one_lock_per_model(empty_cache: None) -> None:
    assert loaded.use_lock(("llama.cpp", "a.gguf")) is loaded.use_lock(("llama.cpp", "a.gguf"))
    assert loaded.use_lock(("llama.cpp", "a.gguf")) is not loaded.use_lock(("llama.cpp", "b.gguf"))


def test_closing_waits_for_the_user_of_a_model_and_leaves_a_model_still_in_use(empty_cache: None) -> None:
    idle, busy, plain = Closable(), Closable(), object()
    for key, model in (("idle", idle), ("busy", busy), ("plain", plain)):
        loaded.shared(key, lambda m=model: m)
    holding, done = threading.Event(), threading.Event()

    def generate() -> None:  # a daemon thread in the middle of a generation on "busy"
        with loaded.use_lock("busy"):
            holding.set()
            done.wait(10)

    threading.Thread(target=generate, daemon=True).start()
    holding.wait(10)
    try:
        assert loaded.close_all(wait_seconds=0.05) == 1
    finally:
        done.set()
    assert (idle.closed, busy.closed) == (1, 0)  # freeing a model under its running thread would crash
    assert not any(loaded.is_loaded(k) for k in ("idle", "busy", "plain"))
    assert not loaded.use_lock("idle").locked()  # released after closing


def test_a_llama_cpp_model_is_closed_at_exit() -> None:
    """Left to ``Llama.__del__`` at shutdown, the freeing ran after llama_cpp's globals were gone."""
    pytest.importorskip("llama_cpp", reason="the GGUF runtime (llama-cpp-python) is not installed")
    script = textwrap.dedent(
        """
        import sys

        from hfops.config import Settings
        from hfops.models import resolve
        from hfops.models.gguf import gguf_generator

        resolved = resolve("HuggingFaceTB/SmolLM2-135M-Instruct", Settings(), task="qa", allow_download=False,
                           allow_api=False)
        generator = gguf_generator(resolved, Settings())
        print(repr(generator.generate([{"role": "user", "content": "Say yes."}], 3)), flush=True)
        model, close = generator.model, generator.model.close
        def traced_close():
            close()
            print(f"closed, interpreter finalizing: {sys.is_finalizing()}", flush=True)
        model.close = traced_close
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    # first closed by the exit hook while the interpreter is whole (then Llama.__del__ finds it closed)
    assert done.stdout.splitlines()[1] == "closed, interpreter finalizing: False", done.stdout
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
