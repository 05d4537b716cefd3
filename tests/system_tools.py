"""What the tests need from outside the venv, and one policy for when it is missing.

Some tests run Debian tools that `.ci/run` installs (Raptor's `rapper`, Chromium, Java
with the OWL API, Virtuoso) or read `../shared`. On a developer machine without them
those tests are skipped, with the reason. In CI nothing may be missing: `.ci/run` sets
TWINNING_KG_REQUIRE_ALL=1, and then the same tests fail instead, so a CI run whose apt-get
step broke cannot pass by quietly skipping what it was meant to test.

A test states its need with a marker (`@pytest.mark.rapper`, `browser`, `owlapi`,
`virtuoso`), checked by conftest before the test runs, or calls `require(name)` itself.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

REQUIRE = "TWINNING_KG_REQUIRE_ALL"


@dataclass(frozen=True)
class Tool:
    programs: tuple[str, ...]  # on PATH
    files: tuple[str, ...]  # absolute paths
    install: str  # what to install (Debian packages)


TOOLS: dict[str, Tool] = {
    "rapper": Tool(("rapper",), (), "raptor2-utils"),
    "browser": Tool(("chromium",), (), "chromium"),
    "owlapi": Tool(("java",), ("/usr/share/java/owlapi-api.jar",), "default-jdk-headless libowlapi-java"),
    "virtuoso": Tool(("virtuoso-t", "isql-vt"), (), "virtuoso-opensource"),
    "git": Tool(("git",), (), "git"),
}


def required() -> bool:
    """True where nothing may be missing (CI)."""
    return os.environ.get(REQUIRE, "") not in ("", "0")


def unavailable(reason: str) -> NoReturn:
    """Skip the test with `reason`, or fail it where everything is required."""
    if required():
        pytest.fail(f"{reason} ({REQUIRE} is set: CI must run this test)", pytrace=False)
    pytest.skip(reason)


def missing_parts(name: str) -> list[str]:
    """The programs and files of tool `name` that this machine lacks."""
    tool = TOOLS[name]
    programs = [p for p in tool.programs if shutil.which(p) is None]
    return programs + [f for f in tool.files if not Path(f).exists()]


def require(name: str) -> None:
    """The test needs tool `name` (a key of TOOLS)."""
    lacking = missing_parts(name)
    if lacking:
        unavailable(f"needs {', '.join(lacking)} (Debian: apt-get install {TOOLS[name].install})")


def program(name: str) -> str:
    """The path of a program of a required tool (after `require`)."""
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} is not installed")
    return found
