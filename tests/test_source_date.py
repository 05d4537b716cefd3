"""`twinning_kg.release.source_date`: SOURCE_DATE_EPOCH, else git, else the newest file, on real repos."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from twinning_kg.release.source_date import ENV, SourceDateError, source_date

needs_git = pytest.mark.git  # system_tools: skipped without git, failed in CI
NO_EPOCH: dict[str, str] = {}


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def touch(path: Path, when: datetime, text: str = "x\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (when.timestamp(), when.timestamp()))


def git(repo: Path, *args: str, when: datetime | None = None) -> None:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    if when is not None:
        stamp = f"{int(when.timestamp())} +0000"
        env.update(GIT_AUTHOR_DATE=stamp, GIT_COMMITTER_DATE=stamp)
    subprocess.run(["git", "-c", "user.name=Test", "-c", "user.email=test@example.org", *args],
                   cwd=repo, env=env, check=True, capture_output=True)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """data/ changed last on 2024-05-02, ontology/ on 2024-03-01; shapes/ later, on 2024-09-09."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    touch(root / "ontology" / "o.ttl", at(2030, 1, 1))  # file times must not matter in a clean tree
    git(root, "add", "ontology")
    git(root, "commit", "-q", "-m", "ontology", when=at(2024, 3, 1))
    touch(root / "data" / "d.ttl", at(2030, 1, 1))
    git(root, "add", "data")
    git(root, "commit", "-q", "-m", "data", when=at(2024, 5, 2, 10, 11, 12))
    touch(root / "shapes" / "s.ttl", at(2030, 1, 1))
    git(root, "add", "shapes")
    git(root, "commit", "-q", "-m", "shapes", when=at(2024, 9, 9))
    return root


@needs_git
def test_clean_git_tree_gives_the_newest_commit_touching_the_sources(repo: Path) -> None:
    dated = source_date([repo / "ontology", repo / "data"], NO_EPOCH)
    assert (dated.when, dated.origin) == (at(2024, 5, 2, 10, 11, 12), "git")
    assert source_date([repo / "ontology"], NO_EPOCH).when == at(2024, 3, 1)  # shapes' commit is not theirs


@needs_git
def test_uncommitted_or_untracked_changes_fall_back_to_file_times(repo: Path) -> None:
    dirs = [repo / "ontology", repo / "data"]
    touch(repo / "data" / "d.ttl", at(2025, 2, 3, 4, 5, 6), "changed\n")
    assert (source_date(dirs, NO_EPOCH).when, source_date(dirs, NO_EPOCH).origin) == (at(2030, 1, 1), "mtime")
    git(repo, "checkout", "--", "data")
    assert source_date(dirs, NO_EPOCH).origin == "git"
    touch(repo / "data" / "new.ttl", at(2025, 2, 3))  # untracked
    assert source_date(dirs, NO_EPOCH).origin == "mtime"


@needs_git
def test_a_deletion_is_a_change(repo: Path) -> None:
    git(repo, "rm", "-q", "data/d.ttl")
    touch(repo / "data" / "keep.ttl", at(2020, 1, 1))
    git(repo, "add", "data")
    git(repo, "commit", "-q", "-m", "replace", when=at(2024, 12, 24))
    assert source_date([repo / "data"], NO_EPOCH).when == at(2024, 12, 24)


def test_source_date_epoch_wins(tmp_path: Path) -> None:
    touch(tmp_path / "data" / "d.ttl", at(2024, 1, 1))
    dated = source_date([tmp_path / "data"], {ENV: "1767225600"})
    assert (dated.when, dated.origin) == (at(2026, 1, 1), ENV)
    assert source_date([tmp_path / "data"], {ENV: ""}).origin != ENV  # set but empty: as if unset


@pytest.mark.parametrize("value", ["yesterday", "-1", "1.5", "1e9", "0x10", "99999999999999999999"])
def test_a_malformed_source_date_epoch_is_an_error(value: str, tmp_path: Path) -> None:
    touch(tmp_path / "data" / "d.ttl", at(2024, 1, 1))
    with pytest.raises(SourceDateError, match=ENV):
        source_date([tmp_path / "data"], {ENV: value})


def test_outside_git_the_newest_file_dates_the_sources(tmp_path: Path) -> None:
    touch(tmp_path / "data" / "a.ttl", at(2023, 1, 1))
    touch(tmp_path / "data" / "sub" / "b.ttl", at(2023, 7, 8, 9, 10, 11))
    touch(tmp_path / "data" / ".hidden", at(2029, 1, 1))  # editor droppings do not count
    touch(tmp_path / "other" / "c.ttl", at(2028, 1, 1))
    dated = source_date([tmp_path / "data", tmp_path / "missing"], NO_EPOCH)
    assert (dated.when, dated.origin) == (at(2023, 7, 8, 9, 10, 11), "mtime")


@needs_git
def test_without_git_on_the_path_file_times_are_used(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    assert source_date([repo / "data"], NO_EPOCH).origin == "mtime"


def test_nothing_to_date_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceDateError):
        source_date([tmp_path / "empty"], NO_EPOCH)
    with pytest.raises(SourceDateError):
        source_date([tmp_path / "missing"], NO_EPOCH)
