"""`twinning-kg check-links URL|FILE`: check another city's graph against ours.

Thin CLI over `twinning_kg.checks.links` (the comparison) and
`twinning_kg.sources.linked_data_client` (reading a published graph over HTTP, bounded).
Exit status: 0 when every partnership is reciprocal and every link agrees, 1 on any
finding (a one-way partnership, a conflict, a dangling link, an owl:sameAs conflict), 2
when their graph (or ours) cannot be read: one line says why.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from twinning_kg.checks import links
from twinning_kg.commands.cli_error import CliError
from twinning_kg.commands.project_option import project_option, project_settings
from twinning_kg.graph import claims
from twinning_kg.project import Project
from twinning_kg.release.reader import Release
from twinning_kg.sources import linked_data_client as client

DEFAULT = client.Limits()


@click.command("check-links")
@click.argument("source", metavar="URL|FILE")
@click.option("--graph", "graph", type=click.Path(path_type=Path), default=None,
              help="Compare with a built release directory instead of the project's sources.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format (json: docs/schemas/check-links.schema.json).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=DEFAULT.timeout, show_default=True,
              metavar="SECONDS", help="Time for reading their graph over HTTP, all requests together.")
@click.option("--max-bytes", type=click.IntRange(min=1024), default=DEFAULT.max_bytes, show_default=True,
              help="Largest answer accepted (after decompression).")
@click.option("--max-redirects", type=click.IntRange(min=0), default=DEFAULT.max_redirects, show_default=True,
              help="Redirects followed per request.")
@project_option
def command(
    source: str, graph: Path | None, fmt: str, timeout: float, max_bytes: int, max_redirects: int,
    project: Project,
) -> None:
    """Compare another city's graph with ours, partnership by partnership (reciprocal,
    one-way, conflict), and check its links into our IRI space and its owl:sameAs links.

    URL: its landing page, /.well-known/void, a dump or a VoID/DCAT description (read as a
    linked-data client does, within the time, size and redirect limits). FILE: Turtle,
    N-Triples, N-Quads, JSON-LD or RDF/XML, by extension.
    """
    settings = project_settings(project)
    read: dict[str, Any] | None = None
    try:  # fail fast on their side, before loading ours
        if source.startswith(("http://", "https://")):
            limits = client.Limits(timeout, max_bytes, max_redirects)
            remote = client.read(source, limits, settings.vocabulary)
            theirs = remote.graph
            read = {"url": remote.url, "trail": remote.trail, "media_type": remote.media_type,
                    "sha256": remote.sha256, "bytes": remote.size, "via": remote.via}
        else:
            theirs = links.read_graph(Path(source))
    except (client.RemoteGraphError, links.UnreadableGraph) as exc:
        raise CliError(str(exc), exit_code=2) from exc
    try:
        if graph is not None:
            release = Release.open(graph)
            ours = links.Ours(release.select(), release.base_iri, release.vocabulary, settings.city_key)
        else:
            ours = links.Ours(claims.sources_select(settings), settings.base_iri, settings.vocabulary,
                              settings.city_key)
    except Exception as exc:  # noqa: BLE001 - our side unreadable: a message, not a traceback
        raise CliError(f"cannot read our graph ({graph or settings.home}): {exc}", exit_code=2) from exc
    report = links.check_links(theirs, ours, source, read)
    click.echo(links.render_json(report) if fmt == "json" else links.render_text(report), nl=False)
    # SystemExit rather than click's Exit: the CLI runs click with standalone_mode=False.
    sys.exit(report.exit_status)
