"""Set-up the benchmarks share (bench/console.py, bench/scale.py, bench/evals.py): one copy of each piece.

Importing it (``import common`` from a script run as ``python bench/NAME.py``) makes the run offline-safe
(``HF_HUB_DISABLE_TELEMETRY``, ``HF_DATASETS_OFFLINE``, ``HF_EVALUATE_OFFLINE`` unless already set) and puts
the repository root on ``sys.path`` (``hfops`` from ``lib/`` through the editable install, ``tests.*`` kits
from the root), so it comes before any ``hfops`` import. Then:

- :func:`load_avg`: the 1/5/15-minute load averages, to print beside figures taken on a shared machine;
- :func:`timed`: wall seconds of a block, appended to a list (medians with :func:`statistics.median`);
- :func:`fresh_default_store`: a store as ``hfops init --no-starter-runs`` leaves it (the embedded default);
- :func:`write_section`: replace (or append) one ``## Heading`` section of docs/performance.md.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PERFORMANCE = ROOT / "docs" / "performance.md"
OFFLINE_ENV = (
    ("HF_HUB_DISABLE_TELEMETRY", "1"),
    ("HF_DATASETS_OFFLINE", "1"),
    ("HF_EVALUATE_OFFLINE", "1"),
)

for _name, _value in OFFLINE_ENV:
    os.environ.setdefault(_name, _value)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def load_avg(sep: str = "/") -> str:
    """The 1, 5 and 15-minute load averages, e.g. ``1.0/1.2/1.5``."""
    return sep.join(f"{x:.1f}" for x in os.getloadavg())


@contextlib.contextmanager
def timed(into: list[float]) -> Iterator[None]:
    """Append the wall seconds the ``with`` block took to ``into`` (also when it raises)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        into.append(time.perf_counter() - start)


def hfops_command() -> list[str]:
    """The installed ``hfops`` console script next to this interpreter (else ``python -m hfops.cli``)."""
    script = Path(sys.executable).with_name("hfops")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "hfops.cli"]


def fresh_default_store(folder: Path, name: str) -> str:
    """``folder/name`` as ``hfops init --no-starter-runs`` leaves it: the embedded default, no queued runs."""
    path = str(folder / name)
    subprocess.run(
        [*hfops_command(), "init", "--db", path, "--no-starter-runs"],
        check=True,
        cwd=folder,
        stdout=subprocess.DEVNULL,
    )
    return path


def write_section(heading: str, text: str) -> None:
    """Replace the section of docs/performance.md that starts with ``heading`` (``## Name``, alone or
    followed by a space) up to the next ``## `` heading, or append ``text`` when there is none; nothing
    else in the file is touched. Says so on stdout."""
    current = PERFORMANCE.read_text() if PERFORMANCE.is_file() else "# Performance\n"
    lines = current.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if line.strip() == heading or line.startswith(heading + " ")), None
    )
    if start is None:
        PERFORMANCE.write_text(current.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n")
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        kept = [
            *lines[:start],
            *text.rstrip("\n").splitlines(),
            *([""] if end < len(lines) else []),
            *lines[end:],
        ]
        PERFORMANCE.write_text("\n".join(kept) + "\n")
    print(f"wrote the {heading} section of {PERFORMANCE.relative_to(ROOT)}")
