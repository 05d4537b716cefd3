"""`twinning-kg audit`: which claims are contradicted, unverified, one-way or weakly sourced.

Thin CLI over `twinning_kg.checks.claims_audit` (the report) and `twinning_kg.web.audit_report`
(its text and HTML, with the site's templates and message catalogues). Exit status 1 when
any claim is contradicted or a partner city's graph contradicts ours (so a script or CI job
can notice new conflicts), 0 otherwise; 2 when the input cannot be read.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from twinning_kg.checks.claims_audit import build_report, render_json
from twinning_kg.commands.cli_error import CliError
from twinning_kg.commands.project_option import project_option, project_settings
from twinning_kg.graph import claims
from twinning_kg.project import Project
from twinning_kg.release.reader import Release, ReleaseError
from twinning_kg.web.audit_report import render_html, render_text


@click.command("audit")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "html"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--graph",
    "graph",
    type=click.Path(path_type=Path),
    default=None,
    help="Audit a built release directory (build --out DIR) instead of the Turtle sources.",
)
@click.option(
    "--lang",
    type=click.Choice(["en", "de"]),
    default="en",
    show_default=True,
    help="Language of the text and HTML report.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the report to this file instead of standard output.",
)
@project_option
def command(fmt: str, graph: Path | None, lang: str, output: Path | None, project: Project) -> None:
    """Report claims contradicted by better sources, unverified claims, translation findings,
    one-way twinning statements and facts whose only source is weak.

    Exit status: 1 when any claim is contradicted, 0 when none is, 2 when the sources or the
    release cannot be read.
    """
    try:
        if graph is not None:
            release = _release(graph)
            select = release.select()
            base_iri, vocabulary = release.base_iri, release.vocabulary
        else:
            settings = project_settings(project)
            select = claims.sources_select(settings)
            base_iri, vocabulary = settings.base_iri, settings.vocabulary
        report = build_report(select, base_iri, vocabulary=vocabulary, city_key=project.key)
    except CliError:
        raise
    except Exception as exc:  # noqa: BLE001 - unreadable input is a message, never a traceback
        raise CliError(f"cannot audit {graph or 'the sources'}: {exc}", exit_code=2) from exc
    if fmt == "json":
        text = render_json(report)
    elif fmt == "html":
        text = render_html(report, lang)
    else:
        text = render_text(report, lang)
    if output is not None:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot write {output}: {exc.strerror or exc}", exit_code=2) from exc
    else:
        click.echo(text, nl=False)
    if report.exit_status:
        found = f"{len(report.contradicted)} contradicted claims"
        if report.cross_graph_conflicts:
            found += f", {report.cross_graph_conflicts} conflicts with partner graphs"
        click.echo(f"{found} (exit status {report.exit_status})", err=True)
        # SystemExit, not click's Exit: the CLI runs click with standalone_mode=False,
        # which would swallow Exit's status.
        sys.exit(report.exit_status)


def _release(graph: Path) -> Release:
    try:
        return Release.open(graph)
    except ReleaseError as exc:
        raise CliError(str(exc), exit_code=2) from exc
