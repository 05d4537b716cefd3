"""`twinning-kg serve`: build the graph if needed, then serve it (SPARQL, linked data, dumps).

One process group: this process runs uvicorn (the event loop only routes and waits),
its children are the SPARQL worker processes (`worker_pool.WorkerPoolEngine`). SIGTERM and
SIGINT stop accepting requests, let running ones finish for a few seconds, then stop
the workers; exit status 0. With `--processes N`, this process only holds the listening
socket and N such servers share it (`front_processes`).

The served release is leased for the server's life, so builds into the same `--out`
never prune it; if it is deleted anyway, `web.release_keeper` answers 503 and switches to
the current release of `--graph`. Connection limits and timeouts (`web.protocol`) are
options here; docs/security.md explains them and their defaults.
"""

from __future__ import annotations

import dataclasses
import gc
import ipaddress
import logging
import resource
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from twinning_kg.commands.cli_error import CliError
from twinning_kg.commands.front_processes import Fronts, die_with_parent, listening_socket
from twinning_kg.commands.project_option import project_option, project_settings
from twinning_kg.config import MAX_PARSABLE_URL, WIKIDATA_QUERY_SERVICE, Settings
from twinning_kg.project import Project
from twinning_kg.query.engine import QueryEngine
from twinning_kg.query.remote_engine import RemoteEngine
from twinning_kg.query.worker_pool import DEFAULT_WORKER_MEMORY_MB, WorkerPoolEngine
from twinning_kg.release.leases import Lease
from twinning_kg.release.reader import MANIFEST, Release, ReleaseError

log = logging.getLogger("twinning_kg.serve")
DEFAULTS = Settings()
# File descriptors kept free of connections: worker pipes, the store, logs, dumps being sent.
FILE_DESCRIPTOR_RESERVE = 256


@click.command("serve")
@click.option(
    "--graph",
    "graph",
    default=None,
    type=click.Path(path_type=Path),
    help="Release directory to serve; built from the project first if it holds none "
    "(default: site, or DIR/site for --project DIR).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option(
    "--base-url",
    default=None,
    help="Public URL the server is reached at: pages, documents, the catalog, the VoID and "
    "/sparql (queries and results) all speak our IRIs under it (docs/web.md).",
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
    help="SPARQL worker processes for /sparql (queries that can run at the same time).",
)
@click.option(
    "--site-workers",
    default=DEFAULTS.site_workers,
    show_default=True,
    type=click.IntRange(min=0),
    help="Workers reserved for the site's own pages, so /sparql load never locks them out.",
)
@click.option(
    "--client-queries",
    default=DEFAULTS.client_queries,
    show_default=True,
    type=click.IntRange(min=1),
    help="Queries one client may run at once (never more than --workers minus one).",
)
@click.option(
    "--queue-wait",
    default=DEFAULTS.queue_wait,
    show_default=True,
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="How long a query may wait for a free worker before it gets 429 with Retry-After.",
)
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    multiple=True,
    metavar="ADDRESS",
    help="Reverse proxy (address or network) whose X-Forwarded-For names the client (repeatable).",
)
@click.option(
    "--isolation",
    "isolation",
    default=DEFAULTS.worker_isolation,
    show_default=True,
    type=click.Choice(["auto", "namespace", "seccomp"]),
    help="Network isolation of the query workers: auto = a network namespace when the host "
    "allows it, else seccomp (federation off); namespace = refuse to start without one.",
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
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="HOST",
    help="Answer only requests whose Host is HOST (repeatable; `*.example.org` allowed); default: any.",
)
@click.option(
    "--header-timeout",
    default=DEFAULTS.header_timeout,
    show_default=True,
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="A request's line and headers must arrive within this time (else 408).",
)
@click.option(
    "--body-timeout",
    default=DEFAULTS.body_timeout,
    show_default=True,
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="A request's body must arrive within this time after its headers (else 408).",
)
@click.option(
    "--send-timeout",
    default=DEFAULTS.send_timeout,
    show_default=True,
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="A response the client stops reading for this long is abandoned (connection closed).",
)
@click.option(
    "--keep-alive-timeout",
    default=DEFAULTS.keep_alive_timeout,
    show_default=True,
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="An idle kept-alive connection is closed after this time.",
)
@click.option(
    "--max-connections",
    default=DEFAULTS.max_connections,
    show_default=True,
    type=click.IntRange(min=1),
    help="Open connections at once; more are answered 503 and closed.",
)
@click.option(
    "--max-connections-per-client",
    default=DEFAULTS.max_connections_per_client,
    show_default=True,
    type=click.IntRange(min=0),
    help="Open connections from one client address (0: no cap; use 0 behind a reverse proxy).",
)
@click.option(
    "--max-url-bytes",
    default=DEFAULTS.max_url_bytes,
    show_default=True,
    type=click.IntRange(min=1024, max=MAX_PARSABLE_URL),
    help="Longest request target (path and query); longer gets 414.",
)
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Front processes sharing the listening socket, each with its own query workers, cache "
    "and admission (one per core; docs/operations.md).",
)
@click.option(
    "--cache-mb",
    default=DEFAULTS.result_cache_bytes // 2**20,
    show_default=True,
    type=click.IntRange(min=0),
    metavar="MB",
    help="Memory for /sparql answers kept per front process (0: no result cache).",
)
@click.option("--fd", default=None, type=int, hidden=True)  # a front process of --processes: its socket
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    help="Answer queries from this SPARQL endpoint (holding our dumps) instead of the local store.",
)
@project_option
def command(
    graph: Path | None,
    host: str,
    port: int,
    base_url: str | None,
    timeout: float,
    max_rows: int,
    workers: int,
    site_workers: int,
    client_queries: int,
    queue_wait: float,
    trusted_proxies: tuple[str, ...],
    isolation: str,
    max_request_bytes: int,
    worker_memory: int,
    service_allow: tuple[str, ...],
    no_service: bool,
    allowed_hosts: tuple[str, ...],
    header_timeout: float,
    body_timeout: float,
    send_timeout: float,
    keep_alive_timeout: float,
    max_connections: int,
    max_connections_per_client: int,
    max_url_bytes: int,
    processes: int,
    cache_mb: int,
    fd: int | None,
    store_url: str | None,
    project: Project,
) -> None:
    """Serve the graph: SPARQL endpoint at /sparql, linked data, dumps and catalog."""
    if graph is None:
        graph = Path("site") if project.kit else project.directory / "site"
    _configure_logging()
    if fd is not None:
        die_with_parent()
    if no_service and service_allow:
        raise CliError("--no-service and --service-allow contradict each other", exit_code=2)
    allowlist = () if no_service else (tuple(service_allow) or DEFAULTS.service_allowlist)
    for proxy in trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError as exc:
            raise CliError(f"--trusted-proxy {proxy}: {exc}", exit_code=2) from exc
    settings = dataclasses.replace(
        project_settings(project),
        base_url=base_url,
        query_timeout=timeout,
        max_rows=max_rows,
        workers=workers,
        site_workers=site_workers,
        client_queries=client_queries,
        queue_wait=queue_wait,
        trusted_proxies=tuple(trusted_proxies),
        worker_isolation=isolation,
        max_request_bytes=max_request_bytes,
        service_allowlist=allowlist,
        allowed_hosts=allowed_hosts,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        send_timeout=send_timeout,
        keep_alive_timeout=keep_alive_timeout,
        max_connections=max_connections,
        max_connections_per_client=max_connections_per_client,
        max_url_bytes=max_url_bytes,
        result_cache_bytes=cache_mb * 2**20,
    )
    if fd is None and processes > 1:
        _release(graph, settings)  # built once, before the front processes start
        try:
            sock = listening_socket(host, port)
        except OSError as exc:
            raise CliError(f"cannot listen on {host}:{port}: {exc}") from exc
        raise SystemExit(Fronts(_child_args(click.get_current_context()), processes, sock).run())
    settings = _raise_file_limit(settings)
    from twinning_kg.web.release_keeper import take_lease

    release = _release(graph, settings)
    try:
        release, lease = take_lease(graph, release)  # builds never prune a served release
    except ReleaseError as exc:
        raise CliError(str(exc)) from exc
    try:
        try:
            settings = dataclasses.replace(
                settings, base_iri=release.base_iri, vocabulary_iri=release.manifest.get("vocabulary_iri")
            )
        except ValueError as exc:
            raise CliError(f"{graph}: {exc}") from exc
        engine = _engine(release, settings, store_url, worker_memory)

        def make_engine(current: Release) -> QueryEngine | None:
            """Workers on another release (after the served one vanished); a remote store stays."""
            return None if store_url else _engine(current, settings, None, worker_memory)

        try:
            _run(settings, release, engine, host, port, ReleaseSource(graph, lease, make_engine), fd)
        finally:
            engine.shutdown()
    finally:
        if lease is not None:
            lease.release()


def _configure_logging() -> None:
    """Messages as plain lines on stderr: ours (one per request), uvicorn's start/stop."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr, force=True)
    # Records never show the process, thread or calling line: leave their look-ups out of
    # every record, one access line per request (the logging HOWTO's "Optimization").
    logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False
    logging._srcfile = None  # type: ignore[attr-defined]  # no stack walk to find the caller
    for chatty in ("httpx", "httpcore"):  # a remote store's every request is not news
        logging.getLogger(chatty).setLevel(logging.WARNING)


def _raise_file_limit(settings: Settings) -> Settings:
    """Raise the open-file soft limit to the hard limit, and fit `max_connections` under it.

    Each connection is a file descriptor; the default soft limit (often 1,024) would be
    exhausted before the connection cap. Workers, their pipes and the store need a few
    more, kept in reserve.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, wanted, exc)
    room = soft - FILE_DESCRIPTOR_RESERVE
    if settings.max_connections > room:
        log.warning(
            "--max-connections %d lowered to %d: the open-file limit is %d (ulimit -n)",
            settings.max_connections, max(room, 1), soft,
        )
        settings = dataclasses.replace(settings, max_connections=max(room, 1))
    return settings


def _release(graph: Path, settings: Settings) -> Release:
    """Open the release in `graph`, building it first when there is none."""
    if not (graph / MANIFEST).is_file():
        click.echo(f"{graph} holds no release yet: building it from {settings.home}", err=True)
        _build(graph, settings)
    try:
        return Release.open(graph)
    except ReleaseError as exc:
        raise CliError(str(exc)) from exc


def _build(graph: Path, settings: Settings) -> None:
    from twinning_kg.release import builder as build_module  # the build pipeline is only needed here

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


def _engine(release: Release, settings: Settings, store_url: str | None, worker_memory: int) -> QueryEngine:
    if store_url:
        try:  # the release's graphs, not whatever else the store holds (its system graphs, say)
            return RemoteEngine(store_url, settings, graphs=release.manifest.get("graphs") or None)
        except ValueError as exc:
            raise CliError(f"--store {store_url}: {exc}", exit_code=2) from exc
    if not release.store_path.is_dir():
        raise CliError(f"{release.path}: no store/ directory; rebuild with `twinning-kg build`")
    try:
        return WorkerPoolEngine(release.store_path, settings, memory_limit_mb=worker_memory)
    except (RuntimeError, OSError) as exc:
        raise CliError(f"cannot start the SPARQL workers: {exc}") from exc


@dataclass(frozen=True)
class ReleaseSource:
    """Where the served release came from, for the keeper that recovers when it vanishes."""

    graph: Path
    lease: Lease | None
    make_engine: Callable[[Release], QueryEngine | None]


def _child_args(ctx: click.Context) -> list[str]:
    """This command line for a front process of `--processes` (which gets `--fd` added)."""
    args = ["serve"]
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name in ("processes", "fd"):
            continue
        value = ctx.params.get(param.name or "")
        flag = max(param.opts, key=len)
        if param.is_flag:
            args += [flag] if value else []
        elif param.multiple:
            for item in value or ():
                args += [flag, str(item)]
        elif value is not None:
            args += [flag, str(value)]
    return args


def _run(
    settings: Settings,
    release: Release,
    engine: QueryEngine,
    host: str,
    port: int,
    source: ReleaseSource,
    fd: int | None = None,
) -> None:
    import uvicorn

    from twinning_kg.web.app import create_app
    from twinning_kg.web.protocol import protocol_class
    from twinning_kg.web.release_keeper import ReleaseKeeper

    try:
        app = create_app(settings, release, engine)
    except ValueError as exc:  # --base-url and the base IRI cannot be one IRI space
        raise CliError(f"--base-url {settings.base_url}: {exc}", exit_code=2) from exc
    ctx = app.state.ctx
    keeper = ReleaseKeeper(ctx, source.graph, source.lease, source.make_engine)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        server_header=False,
        # Deadlines, connection caps and head size limits (web/protocol.py, docs/security.md).
        http=protocol_class(settings),
        timeout_keep_alive=settings.keep_alive_timeout,
        ws="none",  # nothing here speaks WebSocket: an upgrade is refused, not attempted
        # Who a client is (admission, access log): X-Forwarded-For and X-Forwarded-Proto
        # count only from --trusted-proxy; without one, only the peer address (uvicorn
        # would otherwise trust 127.0.0.1 by default).
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies) or None,
    )
    config.app = _Lifecycle(app, ctx, keeper)
    server = _server(config, ctx)
    shown = f"[{host}]" if ":" in host else host
    url = settings.base_url or f"http://{shown}:{port}/"
    isolation = engine.describe_isolation()
    workers = f"\n  workers: {isolation}" if isolation else ""
    click.echo(
        f"twinning-kg: serving {release.path.name} ({release.manifest.get('triples', '?')} triples)\n"
        f"  browse:  {url}\n  SPARQL:  {url.rstrip('/')}/sparql{workers}\n  stop with Ctrl-C",
        err=True,
    )
    # What exists now lives as long as the server: out of the cyclic collector's sight, a
    # full collection no longer walks it (measured: 33 ms, a pause of every connection).
    gc.freeze()
    try:
        server.run(sockets=[socket.socket(fileno=fd)] if fd is not None else None)
    finally:
        ctx.engine.shutdown()  # the current engine, maybe a newer one
        if keeper.lease is not None:
            keeper.lease.release()


def _server(config: Any, ctx: Any) -> Any:
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
            ctx.engine.stop_workers()

    return Server(config)


class _Lifecycle:
    """ASGI wrapper of the app's lifespan: the release keeper runs while the app does; once
    the app has finished its shutdown, the keeper stops and the (current) engine closes."""

    def __init__(self, app: Any, ctx: Any, keeper: Any) -> None:
        self.app = app
        self.ctx = ctx
        self.keeper = keeper

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def wrapped_send(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                self.keeper.start()
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.keeper.stop()
                await self.ctx.engine.close()
            await send(message)

        await self.app(scope, receive, wrapped_send)
