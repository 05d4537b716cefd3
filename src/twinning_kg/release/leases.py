"""Leases on release directories: the release a server is serving is never pruned.

A build keeps the newest few releases in `DIR.releases/` and deletes older ones; without a
lease, three builds into the `--out` a server was started on deleted the directory under
it (dumps, catalog and VoID 404, workers unable to reopen the store).

A lease is a file `DIR.releases/.leases/{release}.{pid}.{token}.lease` that its owner holds
an exclusive `flock` on for as long as it serves that release. The kernel drops the lock
when the process dies, however it dies, so a lease of a dead process is recognised
exactly (the lock can be taken) and removed; no pid guessing, no clock. The pid in the
name is for people (`ls .leases`); the random token keeps two owners (or a reused pid)
from ever sharing a file. The release directory itself stays untouched: it is immutable
and checksummed.

The race between a server taking a lease and a build pruning is closed by ordering:
the server takes the lease *then* checks the release is still there; the pruner moves a
release out of the way (an atomic rename) *then* looks for leases, and moves it back if
one appeared. Whichever comes first, the other sees it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import socket
from pathlib import Path

from twinning_kg.release.reader import MANIFEST

LEASES = ".leases"
PRUNING_PREFIX = ".prune-"


class ReleaseGone(Exception):
    """The release directory disappeared (pruned or deleted) before it could be leased."""


def releases_dir(release_path: Path) -> Path | None:
    """`DIR.releases` when `release_path` is a release a build manages, else None."""
    parent = release_path.parent
    return parent if parent.name.endswith(".releases") else None


class Lease:
    """A held lease on one release directory; `release()` (or process exit) ends it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def take(cls, release_path: Path) -> Lease | None:
        """Lease `release_path` (resolved); None when no build manages it (nothing prunes it).

        Raises ReleaseGone when the release is not (or no longer) there, OSError when the
        lease cannot be written (e.g. a read-only directory).
        """
        releases = releases_dir(release_path)
        if releases is None:
            return None
        leases = releases / LEASES
        leases.mkdir(exist_ok=True)
        stem = f"{release_path.name}.{os.getpid()}.{secrets.token_hex(4)}"
        # Locked under a name pruners do not look at, then renamed (the lock stays with the
        # file): a pruner never sees an unlocked lease and takes it for a dead one.
        unlocked, path = leases / f".{stem}.new", leases / f"{stem}.lease"
        fd = os.open(unlocked, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
            os.rename(unlocked, path)
        except OSError:
            os.close(fd)
            unlocked.unlink(missing_ok=True)
            raise
        lease = cls(path, fd)
        if not (release_path / MANIFEST).is_file():  # pruned between resolving and leasing
            lease.release()
            raise ReleaseGone(f"{release_path} is gone")
        return lease

    def release(self) -> None:
        """End the lease (idempotent)."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)  # closing drops the lock
        self._fd = None


def leased(releases: Path, name: str) -> bool:
    """Whether a live process holds a lease on release `name`; stale leases are removed."""
    alive = False
    for path in sorted((releases / LEASES).glob(f"{name}.*.lease")):
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue  # released meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            alive = True  # its owner holds it
        else:
            path.unlink(missing_ok=True)  # its owner died without releasing it
        finally:
            os.close(fd)
    return alive


def prune(releases: Path, old: Path) -> bool:
    """Delete release `old` unless it is leased; True when it was deleted.

    Called with the build lock held, so no other pruner runs; servers take leases at any
    time, hence the rename-then-check (module docstring).
    """
    if leased(releases, old.name):
        return False
    hidden = releases / f"{PRUNING_PREFIX}{old.name}.{secrets.token_hex(4)}"
    try:
        os.rename(old, hidden)
    except FileNotFoundError:
        return False
    if leased(releases, old.name):  # a server leased it just before the rename
        os.rename(hidden, old)
        return False
    shutil.rmtree(hidden, ignore_errors=True)
    return True


def finish_interrupted_prunes(releases: Path) -> None:
    """A pruner killed between its rename and its decision left `.prune-*`: finish its work."""
    for hidden in releases.glob(f"{PRUNING_PREFIX}*"):
        name = hidden.name[len(PRUNING_PREFIX) :].rsplit(".", 1)[0]
        original = releases / name
        if leased(releases, name):
            if not original.exists():
                with contextlib.suppress(OSError):
                    os.rename(hidden, original)
            continue  # never delete a leased release
        shutil.rmtree(hidden, ignore_errors=True)
