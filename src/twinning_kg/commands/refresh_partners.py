"""`twinning-kg refresh-partners --project DIR`: fetch what partner graphs say about us.

Thin CLI over `twinning_kg.sources.partner_snapshots` (what is kept, and its provenance)
and `twinning_kg.sources.linked_data_client` (reading each graph, bounded). Run it before
a build, never from the server: pages show what the last refresh stored. Exit status: 0
every partner graph read (changed or not), 2 when one could not be read (its stored
snapshot, if any, stays as it was; the others are refreshed).
"""

from __future__ import annotations

import sys

import click
from rdflib import URIRef
from rdflib.namespace import OWL

from twinning_kg.commands.cli_error import CliError
from twinning_kg.commands.project_option import project_option, project_settings
from twinning_kg.project import Project
from twinning_kg.sources import linked_data_client as client
from twinning_kg.sources import loading, partner_snapshots
from twinning_kg.vocab import WD

DEFAULT = client.Limits()


@click.command("refresh-partners")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=DEFAULT.timeout, show_default=True,
              metavar="SECONDS", help="Time for reading one partner graph, all requests together.")
@click.option("--max-bytes", type=click.IntRange(min=1024), default=DEFAULT.max_bytes, show_default=True,
              help="Largest answer accepted (after decompression).")
@click.option("--max-redirects", type=click.IntRange(min=0), default=DEFAULT.max_redirects, show_default=True,
              help="Redirects followed per request.")
@project_option
def command(timeout: float, max_bytes: int, max_redirects: int, project: Project) -> None:
    """Read every partner graph listed in twinning-kg.toml and store what it says about our
    city under partners/, with its provenance (URL, retrieval time, SHA-256). The next
    build publishes each as a named graph of its own."""
    settings = project_settings(project)
    if not project.partners:
        raise CliError(f"{project.file}: lists no partner graphs (partners = [\"https://…\"])", exit_code=2)
    city = f"{settings.base_iri}id/place/{settings.city_key}"
    try:
        loaded = loading.load(settings)
    except loading.SourceError as exc:
        raise CliError(f"cannot read our data: {exc}", exit_code=2) from exc
    qids = sorted(str(o)[len(str(WD)):] for o in loaded.dataset.objects(URIRef(city), OWL.sameAs)
                  if str(o).startswith(str(WD)))
    if not qids:
        raise CliError(f"<{city}> has no owl:sameAs to a Wikidata item, by which partners match", exit_code=2)
    limits = client.Limits(timeout, max_bytes, max_redirects)
    failed = 0
    for url in project.partners:
        try:
            remote = client.read(url, limits, settings.vocabulary)
        except client.RemoteGraphError as exc:
            click.echo(f"error: {exc}", err=True)
            failed += 1
            continue
        snapshot = partner_snapshots.about_us(remote, city, qids[0], settings.vocabulary)
        path, changed = partner_snapshots.write(settings, remote, snapshot)
        state = "stored" if changed else "unchanged (same bytes as before)"
        click.echo(f"{url}: {snapshot.partnerships} partnership(s) with us, {len(snapshot.graph)} triples; "
                   f"{state}: {path}")
    if failed:
        sys.exit(2)
