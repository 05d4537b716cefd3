"""`twinning-kg build --out DIR`: the thin CLI over `twinning_kg.release.builder` (the logic lives there)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from twinning_kg.commands._contact import contact_options
from twinning_kg.commands.cli_error import CliError
from twinning_kg.commands.project_option import project_option, project_settings
from twinning_kg.config import Settings
from twinning_kg.graph.quads import UnpublishableTerm
from twinning_kg.release.builder import BuildError, ValidationFailed, build, sources_date
from twinning_kg.release.dumps import DumpError
from twinning_kg.release.reader import Release
from twinning_kg.release.source_date import SourceDate
from twinning_kg.sources.loading import SourceError


@click.command("build")
@click.option(
    "--out", "out", required=True, type=click.Path(path_type=Path), metavar="DIR",
    help="Release link to (re)point; releases live beside it in DIR.releases/.",
)
@click.option(
    "--base-iri", default=None, metavar="IRI",
    help="Base IRI of every resource (ends in '/'; default: the project's).",
)
@project_option
@contact_options
def command(out: Path, base_iri: str | None, project, contact: dict[str, str | None]) -> None:  # noqa: ANN001
    """Load ontology and data, materialise tw:twinnedWith, validate, publish into DIR.

    The catalog's dates are those of the sources (SOURCE_DATE_EPOCH, else the newest git
    commit touching them, else their newest file), so a rebuild gives identical files.
    Exit 0 on success, 1 when the data violates the shapes, 2 when a file cannot be
    parsed, the sources cannot be dated or DIR cannot be used. On failure DIR keeps
    pointing at the last good release.
    """
    settings = project_settings(project, base_iri, **contact)
    try:
        sources = sources_date(settings)
        release = build(settings, out, sources=sources)
    except SourceError as exc:
        raise CliError(f"{exc}\nnothing was written; {out} is unchanged", exit_code=2) from exc
    except ValidationFailed as exc:
        click.echo(exc.report.text(), err=True)
        raise CliError(f"{exc}; {out} is unchanged", exit_code=1) from exc
    except BuildError as exc:
        raise CliError(f"{exc}; {out} is unchanged", exit_code=exc.exit_code) from exc
    except (DumpError, UnpublishableTerm) as exc:
        raise CliError(f"{exc}; {out} is unchanged", exit_code=1) from exc
    except OSError as exc:  # disk full, permissions: a message, and the old release stays
        where = f" ({exc.filename})" if exc.filename else ""
        raise CliError(f"cannot write the release: {exc.strerror or exc}{where}; {out} is unchanged") from exc
    _summary(release, out, sources, settings)


def _summary(release: Release, out: Path, sources: SourceDate, settings: Settings) -> None:
    manifest = release.manifest
    console = Console(highlight=False)
    graphs = Table(title=f"{manifest['triples']} triples, {manifest['quads']} quads", show_edge=False)
    graphs.add_column("graph")
    graphs.add_column("triples", justify="right")
    for iri, count in manifest["graphs"].items():
        graphs.add_row(iri, str(count))
    if manifest.get("default_graph"):
        graphs.add_row("(default graph)", str(manifest["default_graph"]))
    console.print(graphs)
    files = ", ".join(sorted(manifest["files"]))
    console.print(f"files: {files}, store/")
    console.print(f"release {release.version[:16]} at {release.path}")
    console.print(f"dated {sources.when.isoformat()} (from {sources.origin})")
    if not (settings.contact_email or settings.contact_url):
        console.print("contact: none configured; the catalog names this server's /about page "
                      "(set --contact-email or --contact-url)")
    console.print(f"{out} -> {release.path.name}")
