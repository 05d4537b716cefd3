"""`--project DIR`: which city's project a command works on (default: the kit's own, Kassel's).

Shared by every command that reads a project's sources or configuration, so each one
finds the data, the catalog's parts, the base IRI and the contact the same way
(`twinning_kg.project`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from twinning_kg.commands.cli_error import CliError
from twinning_kg.config import Settings
from twinning_kg.project import Project, ProjectError, check_base_iri

_OPTION = click.option(
    "--project", "project_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
    metavar="DIR", envvar="TWINNING_KG_PROJECT", show_envvar=True,
    help="The city's project directory (twinning-kg.toml, data/, catalog/); default: the kit's own (Kassel).",
)


def project_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add `--project DIR`; the command receives the loaded `project` (exit 2 when unusable)."""

    @functools.wraps(func)
    def wrapper(*args: Any, project_dir: Path | None = None, **kwargs: Any) -> Any:
        return func(*args, project=load_project(project_dir), **kwargs)

    return _OPTION(wrapper)


def load_project(directory: Path | None) -> Project:
    try:
        return Project.load(directory)
    except ProjectError as exc:
        raise CliError(str(exc), exit_code=2) from exc


def project_settings(project: Project, base_iri: str | None = None, **overrides: Any) -> Settings:
    """The project's settings with the command line's `--base-iri` and contact options on top."""
    if base_iri is not None:
        try:
            check_base_iri(base_iri, project.kit)
        except ValueError as exc:
            raise CliError(f"--base-iri: {exc}", exit_code=2) from exc
    try:
        return project.settings(base_iri=base_iri, **overrides)
    except ValueError as exc:
        raise CliError(str(exc), exit_code=2) from exc
