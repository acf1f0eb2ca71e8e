"""A real ``redis-server`` on 127.0.0.1 and the ``hfops`` command, for tests/test_redis_scale.py and
bench/scale.py (one copy of the set-up both need)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.processes import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent


def redis_binary(install: bool = True) -> str | None:
    """``redis-server`` on PATH; installed by scripts/install-sysdeps.sh when missing (``install``)."""
    found = shutil.which("redis-server")
    if found is None and install:
        subprocess.run(["bash", str(ROOT / "scripts" / "install-sysdeps.sh")], check=False)
        found = shutil.which("redis-server")
    return found


def start_redis(binary: str, folder: Path, timeout: float = 20.0) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server on a free loopback port, no persistence, answering; ``(process, url)``."""
    import redis

    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [*argv, "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return proc, url
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                stop_process(proc)
                raise
            time.sleep(0.05)


def hfops_command() -> list[str]:
    """The ``hfops`` entry point of this venv (or ``python -m hfops.cli``)."""
    script = Path(sys.executable).with_name("hfops")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "hfops.cli"]


def write_config(
    path: Path, batch: int, url: str | None, eval_lines: tuple[str, ...] = (), tail: tuple[str, ...] = ()
) -> str:
    """An ``hfops.toml``: ``[eval] batch_size`` (plus ``eval_lines``), the Redis queue at ``url``,
    ``tail``."""
    lines = ["[eval]", f"batch_size = {batch}", "bootstrap_samples = 200", *eval_lines]
    if url:
        lines += ["", "[queue]", 'backend = "redis"', f'url = "{url}"']
    path.write_text("\n".join([*lines, "", *tail]) + "\n")
    return str(path)


def beating_workers(url: str) -> list[str]:
    """The compute workers whose heartbeat is in Redis."""
    from hfops.remote import broker

    return [k for k in broker.compute_huey(url).all_results() if k.startswith("hfops:worker:")]
