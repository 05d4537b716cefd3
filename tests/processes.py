"""Server processes on free ports, started and stopped one way by the tests (`conftest.py`)
and the benchmarks (`bench/run.py`).

It imports neither the project nor pytest, so a benchmark can use it as it is: a failed
start raises `NotReady` (an AssertionError, so a test reports it as a failure).
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

import httpx


class NotReady(AssertionError):
    """The server exited, or did not answer in time; the message carries its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str, headers: dict[str, str] | None = None, timeout: float = 2.0) -> Callable[[], bool]:
    """A readiness check: a GET of `url` answers 200."""

    def check() -> bool:
        try:
            return httpx.get(url, headers=headers, timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def wait_ready(
    proc: subprocess.Popen,
    ready: Callable[[], bool],
    timeout: float,
    *,
    interval: float = 0.2,
    log: Callable[[], str] = lambda: "",
) -> float:
    """Seconds until `ready()` holds; NotReady when `proc` exits first or `timeout` passes
    (then the process is stopped)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise NotReady(f"server exited ({proc.returncode}):\n{log()}")
        if ready():
            return time.monotonic() - started
        time.sleep(interval)
    stop(proc)
    raise NotReady(f"server not ready after {timeout}s:\n{log()}")


def stop(proc: subprocess.Popen, grace: float = 20.0) -> int | None:
    """SIGTERM, then SIGKILL after `grace` seconds; the exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
