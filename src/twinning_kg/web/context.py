"""What every router needs: settings, the release being served, the query engine.

Also the one place that maps canonical IRIs (under the base IRI) to the public URL the
server is reached at, so pages and dereferenced RDF stay followable on any host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rdflib import Graph, URIRef

from twinning_kg.config import Settings
from twinning_kg.query.engine import QueryEngine
from twinning_kg.release.reader import Release


@dataclass
class AppContext:
    """Shared by every router. `release` and `engine` are read per request: a server whose
    release vanished switches both to the current release (`web.release_keeper`)."""

    settings: Settings
    release: Release
    engine: QueryEngine
    # None while the release can be served; else why not (the answer is 503 with it).
    release_problem: Callable[[], str | None] | None = None

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
        if iri.startswith(self.base_iri) and self.public_base != self.base_iri:
            return self.public_base + iri[len(self.base_iri):]
        return iri

    def canonical(self, url: str) -> str:
        """Public URL on this host -> canonical IRI (inverse of `public`)."""
        if url.startswith(self.public_base) and self.public_base != self.base_iri:
            return self.base_iri + url[len(self.public_base):]
        return url

    def localize(self, graph: Graph) -> Graph:
        """A copy of `graph` with our IRIs made followable on this host."""
        if self.public_base == self.base_iri:
            return graph
        out = Graph(bind_namespaces="none")  # rdflib's defaults would rename our `geo:` to `geo1:`
        for prefix, ns in graph.namespaces():
            out.bind(prefix, URIRef(self.public(str(ns))), override=True)

        def fix(term):  # noqa: ANN001, ANN202 - any rdflib term
            return URIRef(self.public(str(term))) if isinstance(term, URIRef) else term

        for s, p, o in graph:
            out.add((fix(s), fix(p), fix(o)))
        return out


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
