"""`twinning-kg serve`: build the graph if needed, then serve it (SPARQL, linked data, dumps).

One process group: this process runs uvicorn (the event loop only routes and waits),
its children are the SPARQL worker processes (`engine.WorkerPoolEngine`). SIGTERM and
SIGINT stop accepting requests, let running ones finish for a few seconds, then stop
the workers; exit status 0.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

import click

from twinning_kg.cli import CliError
from twinning_kg.config import WIKIDATA_QUERY_SERVICE, Settings
from twinning_kg.engine import DEFAULT_WORKER_MEMORY_MB
from twinning_kg.release import MANIFEST, Release, ReleaseError

log = logging.getLogger("twinning_kg.serve")
DEFAULTS = Settings()


@click.command("serve")
@click.option(
    "--graph",
    "graph",
    default="site",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Release directory to serve; built from ontology/ and data/ first if it holds none.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option(
    "--base-url",
    default=None,
    help="Public URL the server is reached at; links to our IRIs are rewritten to it.",
)
@click.option(
    "--timeout",
    default=DEFAULTS.query_timeout,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Time limit per query, in seconds.",
)
@click.option(
    "--max-rows",
    default=DEFAULTS.max_rows,
    show_default=True,
    type=click.IntRange(min=1),
    help="Most result rows (or triples) a query may return.",
)
@click.option(
    "--workers",
    default=DEFAULTS.workers,
    show_default=True,
    type=click.IntRange(min=1),
    help="SPARQL worker processes (queries that can run at the same time).",
)
@click.option(
    "--max-request-bytes",
    default=DEFAULTS.max_request_bytes,
    show_default=True,
    type=click.IntRange(min=1024),
    help="Largest request body (and query string) accepted.",
)
@click.option(
    "--worker-memory",
    "worker_memory",
    default=DEFAULT_WORKER_MEMORY_MB,
    show_default=True,
    type=click.IntRange(min=0),
    metavar="MB",
    help="Heap limit per query worker in MB (0: none); a query needing more is stopped.",
)
@click.option(
    "--service-allow",
    "service_allow",
    multiple=True,
    metavar="URL",
    help=f"SERVICE endpoint queries may call (repeatable; default: {WIKIDATA_QUERY_SERVICE}).",
)
@click.option("--no-service", is_flag=True, help="Refuse every SERVICE clause (empty allow-list).")
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    help="Answer queries from this SPARQL endpoint (holding our dumps) instead of the local store.",
)
def command(
    graph: Path,
    host: str,
    port: int,
    base_url: str | None,
    timeout: float,
    max_rows: int,
    workers: int,
    max_request_bytes: int,
    worker_memory: int,
    service_allow: tuple[str, ...],
    no_service: bool,
    store_url: str | None,
) -> None:
    """Serve the graph: SPARQL endpoint at /sparql, linked data, dumps and catalog."""
    _configure_logging()
    if no_service and service_allow:
        raise CliError("--no-service and --service-allow contradict each other", exit_code=2)
    allowlist = () if no_service else (tuple(service_allow) or DEFAULTS.service_allowlist)
    settings = dataclasses.replace(
        DEFAULTS,
        base_url=base_url,
        query_timeout=timeout,
        max_rows=max_rows,
        workers=workers,
        max_request_bytes=max_request_bytes,
        service_allowlist=allowlist,
    )
    release = _release(graph, settings)
    try:
        settings = dataclasses.replace(settings, base_iri=release.base_iri)
    except ValueError as exc:
        raise CliError(f"{graph}: {exc}") from exc
    engine = _engine(release, settings, store_url, worker_memory)
    try:
        _run(settings, release, engine, host, port)
    finally:
        shutdown = getattr(engine, "shutdown", None)
        if shutdown:
            shutdown()


def _configure_logging() -> None:
    """Messages as plain lines on stderr: ours (one per request), uvicorn's start/stop."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr, force=True)
    for chatty in ("httpx", "httpcore"):  # a remote store's every request is not news
        logging.getLogger(chatty).setLevel(logging.WARNING)


def _release(graph: Path, settings: Settings) -> Release:
    """Open the release in `graph`, building it first when there is none."""
    if not (graph / MANIFEST).is_file():
        click.echo(f"{graph} holds no release yet: building it from {settings.root}", err=True)
        _build(graph, settings)
    try:
        return Release.open(graph)
    except ReleaseError as exc:
        raise CliError(str(exc)) from exc


def _build(graph: Path, settings: Settings) -> None:
    from twinning_kg import build as build_module  # the build pipeline is only needed here

    try:
        build_module.build(settings, graph)
    except build_module.ValidationFailed as exc:
        report = getattr(exc.report, "text", None)
        if callable(report):
            click.echo(report(), err=True)
        raise CliError(f"refusing to serve: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - any build failure is a message, never a traceback
        raise CliError(
            f"refusing to serve: the build failed: {exc}", exit_code=getattr(exc, "exit_code", 1)
        ) from exc


def _engine(release: Release, settings: Settings, store_url: str | None, worker_memory: int) -> Any:
    if store_url:
        from twinning_kg.remote_engine import RemoteEngine

        try:  # the release's graphs, not whatever else the store holds (its system graphs, say)
            return RemoteEngine(store_url, settings, graphs=release.manifest.get("graphs") or None)
        except ValueError as exc:
            raise CliError(f"--store {store_url}: {exc}", exit_code=2) from exc
    from twinning_kg.engine import WorkerPoolEngine

    if not release.store_path.is_dir():
        raise CliError(f"{release.path}: no store/ directory; rebuild with `twinning-kg build`")
    try:
        return WorkerPoolEngine(release.store_path, settings, memory_limit_mb=worker_memory)
    except (RuntimeError, OSError) as exc:
        raise CliError(f"cannot start the SPARQL workers: {exc}") from exc


def _run(settings: Settings, release: Release, engine: Any, host: str, port: int) -> None:
    import uvicorn

    from twinning_kg.web.app import create_app

    app = _CloseEngineOnShutdown(create_app(settings, release, engine), engine)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    server = _server(config, engine)
    shown = f"[{host}]" if ":" in host else host
    url = settings.base_url or f"http://{shown}:{port}/"
    click.echo(
        f"twinning-kg: serving {release.path.name} ({release.manifest.get('triples', '?')} triples)\n"
        f"  browse:  {url}\n  SPARQL:  {url.rstrip('/')}/sparql\n  stop with Ctrl-C",
        err=True,
    )
    server.run()


def _server(config: Any, engine: Any) -> Any:
    """uvicorn's Server that stops the query workers on SIGTERM/SIGINT.

    Killing the workers at the signal ends running queries at once (503) instead of
    holding the shutdown until uvicorn cancels them; and the signal is not re-raised
    afterwards, so a clean stop exits 0.
    """

    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            if self.should_exit:
                self.force_exit = True
            self.should_exit = True
            stop = getattr(engine, "stop_workers", None)
            if stop:
                stop()

    return Server(config)


class _CloseEngineOnShutdown:
    """ASGI wrapper: once the app has finished its lifespan shutdown, stop the engine."""

    def __init__(self, app: Any, engine: Any) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def wrapped_send(message: dict[str, Any]) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.engine.close()
            await send(message)

        await self.app(scope, receive, wrapped_send)
