"""`twinning-kg import …`: outside data into our model, merged with the curated data, as a release.

Thin: the readers live in `twinning_kg.sources.importers`, the steps in `release.import_pipeline`.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from twinning_kg.commands._contact import contact_options
from twinning_kg.commands.cli_error import CliError
from twinning_kg.commands.project_option import project_option, project_settings
from twinning_kg.config import Settings
from twinning_kg.project import Project
from twinning_kg.release import import_pipeline
from twinning_kg.release.builder import BuildError, ValidationFailed
from twinning_kg.sources.importers import csv_import, wdqs_json, wikidata_p190
from twinning_kg.sources.importers.model import InputError
from twinning_kg.sources.loading import SourceError
from twinning_kg.vocab import Iris

_out = click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Release directory to write (a symlink swapped atomically, like `build --out`).",
)
_base = click.option("--base-iri", default=None, help="Base IRI of the data (default: the project's).")
_graph_name = click.option(
    "--graph-name",
    default=None,
    help="Local name of the named graph ({base}graph/NAME) the import goes into.",
)
_file = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("import")
def command() -> None:
    """Import outside data (Wikidata crawl, contributor CSV, WDQS JSON) merged with the curated data."""


@command.command("wikidata-p190")
@click.argument("relations", type=_file)
@click.argument("names", type=_file)
@_out
@_base
@project_option
@contact_options
def wikidata_p190_command(
    relations: Path, names: Path, out: Path, base_iri: str | None, project: Project, contact: dict
) -> None:
    """The 2016 Wikidata P190 crawl (RELATIONS.tsv: QID<TAB>QID, NAMES.tsv: QID<TAB>name)."""
    settings = project_settings(project, base_iri, **contact)
    _run(lambda progress: wikidata_p190.read(relations, names, progress), out, settings)


@command.command("csv")
@click.argument("file", type=_file)
@_out
@_base
@_graph_name
@project_option
@contact_options
def csv_command(
    file: Path, out: Path, base_iri: str | None, graph_name: str | None, project: Project, contact: dict
) -> None:
    """A contributor CSV in the template's columns (data/templates/partnerships-template.csv)."""
    settings = project_settings(project, base_iri, **contact)
    _run(lambda progress: csv_import.read(file, Iris.of(settings), graph_name), out, settings)


@command.command("wdqs-json")
@click.argument("file", type=_file)
@_out
@_base
@_graph_name
@project_option
@contact_options
def wdqs_json_command(
    file: Path, out: Path, base_iri: str | None, graph_name: str | None, project: Project, contact: dict
) -> None:
    """A Wikidata Query Service JSON result of P190 with start/end qualifiers (importers/wdqs-p190.rq)."""
    settings = project_settings(project, base_iri, **contact)
    _run(lambda progress: wdqs_json.read(file, Iris.of(settings), graph_name), out, settings)


def _run(read, out: Path, settings: Settings) -> None:  # noqa: ANN001 - reader callable
    console = Console(stderr=True)
    try:
        outcome = import_pipeline.run_import(read, out, settings, console)
    except InputError as exc:
        raise CliError(f"{exc}\nnothing was written", exit_code=exc.exit_code) from exc
    except SourceError as exc:
        raise CliError(f"curated data: {exc}\nnothing was written") from exc
    except ValidationFailed as exc:
        text = exc.report.text() if callable(getattr(exc.report, "text", None)) else str(exc.report)
        raise CliError(f"{text}\n{exc}") from exc
    except BuildError as exc:
        raise CliError(str(exc), exit_code=exc.exit_code) from exc
    console.print(import_pipeline.summary(outcome))
    click.echo(str(outcome.release.path))
