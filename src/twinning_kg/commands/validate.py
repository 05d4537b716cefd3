"""`twinning-kg validate`: run the SHACL shapes over ontology + data and print a report.

It checks what the build would publish: the loaded sources plus the `tw:twinnedWith`
links the build materialises (`twinning_kg.graph.materialise`), so both see the same graph.
Exit status: 0 conforms, 1 does not conform, 2 a source file (data, ontology or shapes)
cannot be parsed; the message then names the file and line.
"""

from __future__ import annotations

import click

from twinning_kg.checks.validation import load_shapes, validate
from twinning_kg.commands.cli_error import CliError
from twinning_kg.commands.project_option import project_option, project_settings
from twinning_kg.graph.materialise import materialise
from twinning_kg.project import Project
from twinning_kg.sources.loading import SourceError, load

EXIT_NOT_CONFORMING = 1
EXIT_UNPARSABLE = 2


@click.command("validate")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Report format.",
)
@click.option(
    "--base-iri", default=None, help="Base IRI the sources are parsed against (default: the project's)."
)
@project_option
def command(fmt: str, base_iri: str | None, project: Project) -> None:
    """Check the project's data (with the kit's ontology) against the kit's shapes."""
    settings = project_settings(project, base_iri)
    try:
        shapes = load_shapes(settings)
        loaded = load(settings)
    except SourceError as exc:
        raise CliError(f"cannot parse {exc}", exit_code=EXIT_UNPARSABLE) from exc
    if not loaded.files:
        raise CliError(f"no Turtle sources found under {settings.home}", exit_code=EXIT_UNPARSABLE)
    materialise(loaded.dataset, settings)
    report = validate(loaded, settings, shapes=shapes)
    click.echo(report.to_json() if fmt == "json" else report.text(), nl=fmt == "json")
    if not report.conforms:
        # CliError, not click's Exit: cli.main runs click with standalone_mode=False,
        # where an Exit's code is returned rather than used as the exit status
        raise CliError(
            f"the data does not conform to the shapes ({len(report.results)} result(s))",
            exit_code=EXIT_NOT_CONFORMING,
        )
