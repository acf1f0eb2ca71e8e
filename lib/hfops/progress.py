"""Phase-by-phase progress of long work: what it is doing now, how far (counts) and the time left in it.

A job reports through a callable ``(done, total, message, force=False)`` (:class:`hfops.jobs.Progress`).
:class:`Phases` turns that into phases: each has a text, optional counts and its own start, and every report's
message says the phase, its counts and, once it has moved for a second, the time left in it::

    run 5: embedding the corpus with sentence-transformers/all-MiniLM-L6-v2 640/1730 · about 20 s left

The time since the job started is the renderer's to add (it knows when the job started); a renderer that
estimates the time left itself takes the estimate off with :func:`split_time_left`.

Code deep below the job (a model loading, a corpus being embedded) reports to the :func:`scope` of its
context without being handed the job: :func:`phase` (a new phase), :func:`interlude` (a phase within the
current one, e.g. a model loading) and :func:`item_done` (one more of the work under way) report nowhere
outside a scope, and :func:`stop_if_cancelled` raises :class:`Cancelled` when the scope's job was asked to
stop (work done so far must be kept, e.g. cached, so a resumed run does not repeat it). This module imports
nothing of hfops.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

Report = Callable[..., None]  # (done, total, message, force=False)
Count = Callable[[int], str]

TIME_LEFT = " · about {} left"
_TIME_LEFT_RE = re.compile(r" · about (?P<left>[^·]+?) left$")
MIN_SECONDS_FOR_ESTIMATE = 1.0  # a phase's first second says too little about its pace


class Cancelled(Exception):  # noqa: N818 - a request, not a failure
    """The job of the current :func:`scope` was asked to stop."""


def duration(seconds: float, compact: bool = False) -> str:
    """``42 s``, ``1 min 05 s`` (compact, for a terminal line: ``42s``, ``1m05s``)."""
    seconds = max(0, int(round(seconds)))
    if compact:
        return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def time_left(total: int | None, done: int, first: int, elapsed: float) -> float | None:
    """Seconds left in a phase that went from ``first`` to ``done`` of ``total`` in ``elapsed`` seconds, at
    that pace; None until it has moved for :data:`MIN_SECONDS_FOR_ESTIMATE` (or without a total)."""
    if not total or not total > done > first or elapsed < MIN_SECONDS_FOR_ESTIMATE:
        return None
    return (total - done) * elapsed / (done - first)


def split_time_left(message: str | None) -> tuple[str, str | None]:
    """A message without its time-left suffix, and that estimate (``"20 s"``) or None."""
    text = message or ""
    found = _TIME_LEFT_RE.search(text)
    if found is None:
        return text, None
    return text[: found.start()], found.group("left")


def _plain(n: int) -> str:
    return str(n)


class Phase:
    """One phase of a :class:`Phases`: what it does, how many (if known), its counts since it started."""

    def __init__(self, owner: Phases, text: str, total: int | None, done: int, count: Count | None) -> None:
        self.owner, self.text, self.total, self.count = owner, text, total, count or _plain
        self.first, self.since = done, owner.clock()
        self.done = done  # as last reported
        self.ceiling: int | None = None  # how far :func:`item_done` may take it (the work under way)

    def advance(self, done: int, total: int | None = None, force: bool = False) -> None:
        """``done`` of the phase's total are done now (the total may be learnt late). A phase another one
        interrupted (a model loading during the first batch) is the current one again, and its estimate
        starts over from here."""
        self.owner.report_phase(self, done, total, force)

    def expect(self, upto: int) -> None:
        """The work under way (a batch) takes the phase to ``upto``: until then, each :func:`item_done`
        reported below it advances the phase by one."""
        self.ceiling = upto

    def message(self, done: int) -> str:
        text = f"{self.owner.prefix}{self.text}"
        if not self.total:
            return text
        text += f" {self.count(done)}/{self.count(self.total)}"
        left = time_left(self.total, done, self.first, self.owner.clock() - self.since)
        if left is not None:
            text += TIME_LEFT.format(duration(left))
        return text


class Phases:
    """The phases of one piece of work, reported to ``report`` with ``prefix`` before every message.

    A phase without counts is reported as ``(0, 0, message)``: no bar, rather than the last phase's total."""

    def __init__(self, report: Report, prefix: str = "", clock: Callable[[], float] = time.monotonic) -> None:
        self.report, self.prefix, self.clock = report, prefix, clock
        self._lock = threading.Lock()  # downloads report from their own threads
        self.current: Phase | None = None

    def start(self, text: str, total: int | None = None, done: int = 0, count: Count | None = None) -> Phase:
        """A new phase, the current one: ``text`` (what it does), ``total`` (how many, if known) and ``done``
        of them already done (a resumed run); ``count`` formats the counts (e.g. bytes). Always written."""
        with self._lock:
            self.current = Phase(self, text, total, done, count)
            message = self.current.message(done)
        self.report(done, total or 0, message, force=True)
        return self.current

    def report_phase(self, phase: Phase, done: int, total: int | None, force: bool) -> None:
        with self._lock:
            if total is not None:
                phase.total = total
            phase.done = done
            if phase is not self.current:
                self.current, force = phase, True
                phase.first, phase.since = done, self.clock()
            message = phase.message(done)
            total = phase.total
        self.report(done if total else 0, total or 0, message, force=force)


class _Scope:
    def __init__(self, phases: Phases, cancelled: Callable[[], bool] | None) -> None:
        self.phases, self.cancelled = phases, cancelled


_current: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("hfops_progress", default=None)


@contextlib.contextmanager
def scope(phases: Phases, cancelled: Callable[[], bool] | None = None) -> Iterator[Phases]:
    """In this block (this thread / context), :func:`phase`, :func:`interlude` and :func:`item_done` report
    to ``phases`` and :func:`stop_if_cancelled` asks ``cancelled``. Threads started inside do not inherit
    it."""
    token = _current.set(_Scope(phases, cancelled))
    try:
        yield phases
    finally:
        _current.reset(token)


def _silent(*args: Any, **kwargs: Any) -> None:
    return None


def phase(text: str, total: int | None = None, done: int = 0, count: Count | None = None) -> Phase:
    """Start a phase in the current scope; outside one, a phase that reports nowhere."""
    found = _current.get()
    return (found.phases if found is not None else Phases(_silent)).start(text, total, done, count)


@contextlib.contextmanager
def interlude(text: str) -> Iterator[None]:
    """A phase within the current one (a model loading during the first batch): reported while the block
    runs; then the phase it interrupted is the current one again, reported as it was."""
    found = _current.get()
    if found is None:
        yield
        return
    before = found.phases.current
    found.phases.start(text)
    try:
        yield
    finally:
        if before is not None:
            before.advance(before.done)


def item_done() -> None:
    """One item of the current phase is done (a model answered an example): the phase advances by one, up
    to what its caller expects of the work under way (:meth:`Phase.expect`; nothing is expected, nothing
    moves). Nothing outside a scope."""
    found = _current.get()
    phase = found.phases.current if found is not None else None
    if phase is not None and phase.ceiling is not None and phase.done < phase.ceiling:
        phase.advance(phase.done + 1)


def stop_if_cancelled() -> None:
    """Raise :class:`Cancelled` when the current scope's job was asked to stop (never outside a scope)."""
    found = _current.get()
    if found is not None and found.cancelled is not None and found.cancelled():
        raise Cancelled("cancelled")
