"""When the sources of a release last changed: the date the catalog states for it.

A release's `dct:issued`/`dct:modified` must not come from the clock, or two builds of the
same sources would differ (docs/publication.md). The date is taken, in this order, from:

1. `SOURCE_DATE_EPOCH` (the reproducible-builds.org convention: seconds since the epoch,
   UTC) when it is set; a malformed value is an error, never silently ignored;
2. git: the newest commit touching the source directories, when they are in a git work
   tree and have no uncommitted changes (a clean checkout gives the same date anywhere);
3. otherwise the newest modification time of a file in them (no git, a copy of the
   sources, or uncommitted edits: then the edit is the newest change).

Dates are whole seconds in UTC.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ENV = "SOURCE_DATE_EPOCH"
GIT_TIMEOUT = 20.0


class SourceDateError(ValueError):
    """`SOURCE_DATE_EPOCH` is set but not a non-negative integer, or there are no sources."""


@dataclass(frozen=True)
class SourceDate:
    """The date and where it came from (`SOURCE_DATE_EPOCH`, `git` or `mtime`)."""

    when: datetime
    origin: str


def source_date(directories: Iterable[Path], environ: Mapping[str, str] | None = None) -> SourceDate:
    """The date of the newest change to the files under `directories` (see module doc)."""
    environ = os.environ if environ is None else environ
    raw = environ.get(ENV)
    if raw is not None and raw.strip() != "":
        return SourceDate(_from_epoch(raw), ENV)
    dirs = sorted({Path(d).resolve() for d in directories if Path(d).exists()})
    if not dirs:
        raise SourceDateError("no source directories to date")
    committed = _git_date(dirs)
    if committed is not None:
        return SourceDate(committed, "git")
    return SourceDate(_newest_mtime(dirs), "mtime")


def _from_epoch(raw: str) -> datetime:
    text = raw.strip()
    if not text.isdigit():  # no sign, no fraction, no exponent: the convention's format
        raise SourceDateError(f"{ENV}={raw!r}: must be a whole number of seconds since 1970-01-01 UTC")
    try:
        return datetime.fromtimestamp(int(text), tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise SourceDateError(f"{ENV}={raw!r}: out of range ({exc})") from exc


def _git(args: list[str], cwd: Path) -> str | None:
    """stdout of a git command, or None when git is missing or fails (not a repository, ...)."""
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _git_date(dirs: list[Path]) -> datetime | None:
    """Committer date of the newest commit touching `dirs`, if all are clean in one work tree."""
    top = _git(["rev-parse", "--show-toplevel"], dirs[0])
    if top is None:
        return None
    root = Path(top.strip()).resolve()
    if not all(d == root or root in d.parents for d in dirs):
        return None
    specs = ["--", *(str(d.relative_to(root)) or "." for d in dirs)]
    status = _git(["status", "--porcelain", "--untracked-files=all", *specs], root)
    if status is None or status.strip():
        return None  # uncommitted or untracked changes: the files are newer than any commit
    stamp = _git(["log", "-1", "--format=%ct", *specs], root)
    if stamp is None or not stamp.strip().isdigit():
        return None  # no commit touches them (or a shallow clone without it)
    return datetime.fromtimestamp(int(stamp.strip()), tz=UTC)


def _newest_mtime(dirs: list[Path]) -> datetime:
    newest = max(
        (p.stat().st_mtime for d in dirs for p in d.rglob("*") if p.is_file() and not p.name.startswith(".")),
        default=None,
    )
    if newest is None:
        raise SourceDateError(f"no files under {', '.join(map(str, dirs))} to date")
    return datetime.fromtimestamp(int(newest), tz=UTC)
