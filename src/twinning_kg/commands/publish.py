"""`twinning-kg publish --graph DIR --to URL`: a release into a remote SPARQL store (GSP PUT).

The password of `--user` is read from the environment (or asked for on a terminal),
never from the command line, where every user of the machine could read it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from twinning_kg.commands.cli_error import CliError
from twinning_kg.release.reader import Release, ReleaseError
from twinning_kg.release.remote_store import PublishError, graphs_of, publish
from twinning_kg.release.store_auth import ChallengeAuth

PASSWORD_VARIABLE = "TWINNING_KG_STORE_PASSWORD"


@click.command("publish")
@click.option(
    "--graph",
    "directory",
    required=True,
    type=click.Path(path_type=Path),
    help="A built release directory (what `build --out` or `import … --out` wrote).",
)
@click.option(
    "--to",
    "endpoint",
    required=True,
    help="Graph Store Protocol endpoint, e.g. http://127.0.0.1:7878/store (Oxigraph), "
    "http://host:3030/ds/data (Fuseki) or http://host:8890/sparql-graph-crud-auth (Virtuoso).",
)
@click.option("--timeout", default=300.0, show_default=True, help="Seconds allowed per graph upload.")
@click.option(
    "--user",
    default=None,
    help=f"User name for a protected endpoint (HTTP Digest or Basic, as the store asks); "
    f"the password comes from ${PASSWORD_VARIABLE} or is asked for.",
)
def command(directory: Path, endpoint: str, timeout: float, user: str | None) -> None:
    """Load a release's graphs into an existing SPARQL store, one HTTP PUT per named graph."""
    if not endpoint.startswith(("http://", "https://")):
        raise CliError(f"--to {endpoint}: give the http(s) URL of a Graph Store endpoint", exit_code=2)
    auth = ChallengeAuth(user, _password(user)) if user else None
    console = Console(stderr=True)
    try:
        release = Release.open(directory)
        graphs = graphs_of(release)
        total = sum(len(t) for t in graphs.values())
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,} triples"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(f"PUT to {endpoint}", total=total)
            uploads = publish(
                release.path,
                endpoint,
                graphs=graphs,
                timeout=timeout,
                auth=auth,
                on_graph=lambda _graph, n: progress.advance(task, n),
            )
    except (ReleaseError, PublishError) as exc:
        raise CliError(str(exc)) from exc
    for upload in uploads:
        console.print(f"  {upload.graph or '(default graph)'}: {upload.triples:,} triples ({upload.status})")
    console.print(
        f"published release {release.version[:12]}: {len(uploads)} graph(s), "
        f"{sum(u.triples for u in uploads):,} triples to {endpoint}"
    )


def _password(user: str) -> str:
    password = os.environ.get(PASSWORD_VARIABLE)
    if password is not None:
        return password
    if not sys.stdin.isatty():
        raise CliError(f"--user {user}: set {PASSWORD_VARIABLE} to the password", exit_code=2)
    return click.prompt(f"password of {user}", hide_input=True, err=True)
