"""`twinning-kg check-links FILE`: check another city's graph against ours.

Thin CLI over `twinning_kg.checks.links`. Exit status: 0 when every link resolves and every
asserted partnership and owl:sameAs agrees with ours, 1 on a conflict or a dangling link,
2 when FILE (or our graph) cannot be read; the message names file, line and column.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from twinning_kg.checks import links
from twinning_kg.commands.cli_error import CliError
from twinning_kg.config import Settings
from twinning_kg.graph import claims
from twinning_kg.release.reader import Release


@click.command("check-links")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--graph",
    "graph",
    type=click.Path(path_type=Path),
    default=None,
    help="Compare with a built release directory instead of the Turtle sources.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
def command(file: Path, graph: Path | None, fmt: str) -> None:
    """Report FILE's links into our IRI space (Turtle, N-Triples, JSON-LD or RDF/XML by extension):
    which resolve and which dangle, which partnerships with Kassel it asserts and whether ours
    agree (partner, start, status), and its owl:sameAs links compared with ours.

    Exit status: 0 all agree, 1 conflicts or dangling links, 2 unreadable file.
    """
    try:
        theirs = links.read_graph(file)  # fail fast on an unreadable file, before loading ours
    except links.UnreadableGraph as exc:
        raise CliError(str(exc), exit_code=2) from exc
    try:
        if graph is not None:
            release = Release.open(graph)
            select = release.select()
            base_iri = release.base_iri
        else:
            settings = Settings()
            select = claims.sources_select(settings)
            base_iri = settings.base_iri
    except Exception as exc:  # noqa: BLE001 - our side unreadable: a message, not a traceback
        raise CliError(f"cannot read our graph ({graph or 'the sources'}): {exc}", exit_code=2) from exc
    report = links.check_links(file, select, base_iri, theirs)
    click.echo(links.render_json(report) if fmt == "json" else links.render_text(report), nl=False)
    # SystemExit rather than click's Exit: the CLI runs click with standalone_mode=False.
    sys.exit(report.exit_status)
