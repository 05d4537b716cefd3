"""What every view needs: settings, the release being served, the query engine, the IRI space.

The one place that maps canonical IRIs (under the release's base IRI) to the public URL
the server is reached at (`serve --base-url`), through the same `query.iri_space.IriSpace`
the engines use for queries and results, so that pages, dereferenced documents, the
catalog, the VoID, the service description and /sparql all speak one IRI space
(docs/web.md).
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from rdflib import Graph, Literal, URIRef
from starlette.requests import Request

from twinning_kg.config import Settings
from twinning_kg.query.engine import QueryEngine
from twinning_kg.query.iri_space import VOID_IRI_LITERALS, IriSpace
from twinning_kg.release.reader import Release
from twinning_kg.web.result_cache import ResultCache

SITE_SETTINGS = Path(__file__).resolve().parent / "site.toml"


@cache
def site_settings() -> dict[str, Any]:
    """`site.toml`: settings of the site that are data (the map's hub, schema.org types)."""
    with SITE_SETTINGS.open("rb") as fh:
        return tomllib.load(fh)


@dataclass
class AppContext:
    """Shared by every view. `release` and `engine` are read per request: a server whose
    release vanished switches both to the current release (`web.release_keeper`)."""

    settings: Settings
    release: Release
    engine: QueryEngine
    # None while the release can be served; else why not (the answer is 503 with it).
    release_problem: Callable[[], str | None] | None = None
    # /sparql answers kept for the release being served (`web.result_cache`).
    results: ResultCache = field(default_factory=ResultCache)
    # Things computed once per release (`memo`): (name, release directory) -> value.
    _memo: dict[tuple[str, Any], Any] = field(default_factory=dict, repr=False)

    @property
    def base_iri(self) -> str:
        return self.release.base_iri

    @property
    def vocabulary(self) -> str:
        """Base of the kit's terms in the served release (the base IRI, or the kit's for a city)."""
        return self.release.vocabulary

    @property
    def public_base(self) -> str:
        """Where links point: `--base-url` when given, else the base IRI itself."""
        if self.settings.base_url:
            url = self.settings.base_url
            return url if url.endswith("/") else url + "/"
        return self.base_iri

    @property
    def iri_space(self) -> IriSpace:
        return _iri_space(self.base_iri, self.public_base)

    @property
    def query_base(self) -> str | None:
        """What a /sparql request carries as `QueryRequest.public_base`: None when the
        public IRIs are the canonical ones."""
        return None if self.public_base == self.base_iri else self.public_base

    def request_base(self, scope: Mapping[str, Any]) -> str:
        """The base for an absolute URL in the answer to this request, never an untrusted Host.

        `--base-url` when set. Otherwise the Host header only when it names this server
        exactly as configured: the address the connection actually reached (the socket's,
        e.g. `127.0.0.1:8000`, and `localhost:PORT` on a loopback address) or an
        `--allowed-host` given as is. Any other Host, which the client is free to forge
        (`Host: evil.example`), gives the base IRI instead.
        """
        if self.settings.base_url:
            return self.public_base
        host = next((v for k, v in scope.get("headers", []) if k == b"host"), b"").decode("latin-1")
        if host and host.lower() in _trusted_hosts(scope, self.settings.allowed_hosts):
            return f"{scope.get('scheme', 'http')}://{host}/"
        return self.base_iri

    def public(self, iri: str) -> str:
        """Canonical IRI -> followable URL on this host (other IRIs unchanged)."""
        return self.iri_space.to_public(iri)

    def canonical(self, url: str) -> str:
        """Public URL on this host -> canonical IRI (inverse of `public`)."""
        return self.iri_space.to_canonical(url)

    def localize(self, graph: Graph) -> Graph:
        """A copy of `graph` with our IRIs made followable on this host (and `void:uriSpace`,
        the literal naming their prefix, with them)."""
        space = self.iri_space
        if space.identity:
            return graph
        out = Graph(bind_namespaces="none")  # rdflib's defaults would rename our `geo:` to `geo1:`
        for prefix, ns in graph.namespaces():
            out.bind(prefix, URIRef(space.to_public(str(ns))), override=True)
        iri_literals = {URIRef(p) for p in VOID_IRI_LITERALS}

        def fix(term: Any) -> Any:
            return URIRef(space.to_public(str(term))) if isinstance(term, URIRef) else term

        for s, p, o in graph:
            if p in iri_literals and isinstance(o, Literal):
                o = Literal(space.to_public(str(o)), datatype=o.datatype)
            out.add((fix(s), fix(p), fix(o)))
        return out

    # -- computed once per release

    def memo(self, name: str, compute: Callable[[], Any]) -> Any:
        """`compute()` once per release (a server that switched releases computes again)."""
        key = (name, self.release.path)
        if key not in self._memo:
            self._forget_other_releases()
            self._memo[key] = compute()
        return self._memo[key]

    async def memo_async(self, name: str, compute: Callable[[], Awaitable[Any]]) -> Any:
        key = (name, self.release.path)
        if key not in self._memo:
            value = await compute()
            self._forget_other_releases()
            self._memo[key] = value
        return self._memo[key]

    def _forget_other_releases(self) -> None:
        for key in [k for k in self._memo if k[1] != self.release.path]:
            del self._memo[key]


@lru_cache(maxsize=8)
def _iri_space(canonical: str, public: str) -> IriSpace:
    return IriSpace(canonical, public)  # ValueError when one contains the other


def context(request: Request) -> AppContext:
    """The context of the app answering `request` (`create_app` puts it in `app.state`)."""
    return request.app.state.ctx


def _trusted_hosts(scope: Mapping[str, Any], allowed: tuple[str, ...]) -> set[str]:
    """Host header values that name this server: its socket address and the allowed hosts."""
    trusted = {h.lower() for h in allowed if "*" not in h}
    server = scope.get("server")
    if server and server[1] is not None:
        address, port = server[0], server[1]
        shown = f"[{address}]" if ":" in address else address
        trusted.add(f"{shown}:{port}".lower())
        if _is_loopback(address):
            trusted.add(f"localhost:{port}")
    return trusted


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
