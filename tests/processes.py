"""Helpers for tests and benchmarks that start servers: a free loopback port, and stopping a child process."""

from __future__ import annotations

import socket
import subprocess


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """Terminate a child process (SIGTERM), kill it if it is still there after ``timeout`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
