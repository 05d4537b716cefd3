"""`serve --processes N`: N front processes sharing one listening socket.

One front process runs its HTTP on one core; on a host with more, the same server runs
N of them. This parent binds the socket (so a port of 0, or a port in use, is decided
once), then starts N children, each a complete `twinning-kg serve` with its own query
workers, release lease, result cache and admission, accepting connections from the
inherited socket (`--fd`); the kernel hands each new connection to one of them.

The parent does nothing else: on SIGTERM or SIGINT it passes SIGTERM to every child
(each stops as a single server does: running queries end, workers stop), waits for all
of them (SIGKILL after `STOP_GRACE` seconds) and exits 0. A child that dies while the
server runs is replaced; one that dies again and again right after starting (a broken
configuration) stops the whole server with exit status 1. Each child dies with its
parent even if the parent is killed outright (`PR_SET_PDEATHSIG`).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

log = logging.getLogger("twinning_kg.serve")
STOP_GRACE = 15.0  # seconds children get to stop before SIGKILL
QUICK_DEATH = 10.0  # a child dying within this many seconds of its start counts as failing
MAX_QUICK_DEATHS = 3


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket every front process accepts on (inheritable by the children)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def die_with_parent() -> None:
    """Linux: SIGTERM this front process when its parent dies (it then stops cleanly)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


class Fronts:
    """Start, watch and stop the front processes."""

    def __init__(self, args: Sequence[str], count: int, sock: socket.socket) -> None:
        self.args = list(args)
        self.count = count
        self.sock = sock
        self.children: dict[int, tuple[subprocess.Popen[bytes], float]] = {}
        self.stopping = False
        self.quick_deaths = 0

    def _start(self, slot: int) -> None:
        fd = self.sock.fileno()
        argv = [sys.executable, "-m", "twinning_kg", *self.args, "--fd", str(fd)]
        # its own process group: a Ctrl-C reaches the parent only, which stops each child once
        proc = subprocess.Popen(argv, pass_fds=(fd,), process_group=0)
        self.children[slot] = (proc, time.monotonic())

    def _stop_all(self, *_: object) -> None:
        self.stopping = True
        for proc, _started in self.children.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)

    def run(self) -> int:
        """Serve until told to stop; the exit status."""
        signal.signal(signal.SIGTERM, self._stop_all)
        signal.signal(signal.SIGINT, self._stop_all)
        for slot in range(self.count):
            self._start(slot)
        log.info("%d front processes share %s", self.count, self.sock.getsockname())
        status = 0
        while not self.stopping:
            time.sleep(0.2)
            for slot, (proc, started) in list(self.children.items()):
                code = proc.poll()
                if code is None or self.stopping:
                    continue
                quick = time.monotonic() - started < QUICK_DEATH
                self.quick_deaths = self.quick_deaths + 1 if quick else 0
                if self.quick_deaths >= MAX_QUICK_DEATHS:
                    log.error("front process %d keeps exiting (status %s): stopping", proc.pid, code)
                    status = 1
                    self._stop_all()
                    break
                log.error("front process %d exited (status %s); starting another", proc.pid, code)
                self._start(slot)
        deadline = time.monotonic() + STOP_GRACE
        for proc, _started in self.children.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.sock.close()
        return status
