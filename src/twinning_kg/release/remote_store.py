"""Load a release into a remote store through the SPARQL 1.1 Graph Store HTTP Protocol.

Why graph by graph with PUT (GSP §5.3): PUT replaces exactly one named graph, so
re-publishing is idempotent, graphs the remote holds for other purposes are left alone,
and a failure names the graph that did not arrive. The bodies are N-Triples serialised
by Oxigraph from the release's canonical N-Quads dump (what the checksums cover).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyoxigraph as ox

from twinning_kg.release.reader import DUMP_STEM, Release

NTRIPLES = "application/n-triples"


class PublishError(Exception):
    """The remote store refused or could not be reached; the message says which graph and why."""


@dataclass(frozen=True)
class GraphUpload:
    graph: str | None  # None: the default graph
    triples: int
    status: int


def graphs_of(release: Release) -> dict[str | None, list[ox.Triple]]:
    """The release's quads grouped by graph (None = default graph), graphs in IRI order."""
    dump = release.file(f"{DUMP_STEM}.nq")
    if not dump.is_file():
        raise PublishError(f"{dump}: no N-Quads dump in this release")
    grouped: dict[str | None, list[ox.Triple]] = {}
    for quad in ox.parse(path=str(dump), format=ox.RdfFormat.N_QUADS):
        name = None if isinstance(quad.graph_name, ox.DefaultGraph) else quad.graph_name.value
        grouped.setdefault(name, []).append(ox.Triple(quad.subject, quad.predicate, quad.object))
    return dict(sorted(grouped.items(), key=lambda item: (item[0] is not None, item[0] or "")))


def publish(
    directory: Path,
    endpoint: str,
    *,
    graphs: dict[str | None, list[ox.Triple]] | None = None,
    timeout: float = 300.0,
    on_graph: Callable[[str | None, int], None] | None = None,
    client: httpx.Client | None = None,
    auth: httpx.Auth | None = None,
) -> list[GraphUpload]:
    """PUT every graph of the release at `directory` to the GSP `endpoint`; returns what was sent.

    `graphs`: the release's graphs when the caller already read them (`graphs_of`).
    `auth`: credentials for a protected endpoint (`store_auth.ChallengeAuth`).
    """
    release = Release.open(directory)
    uploads: list[GraphUpload] = []
    owned = client is None
    http = client or httpx.Client(timeout=timeout, auth=auth)
    try:
        for graph, triples in (graphs if graphs is not None else graphs_of(release)).items():
            body = ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES)
            params = {"graph": graph} if graph is not None else {"default": ""}
            try:
                response = http.put(endpoint, params=params, content=body, headers={"Content-Type": NTRIPLES})
            except httpx.HTTPError as exc:
                raise PublishError(f"{endpoint}: {type(exc).__name__}: {exc or 'no answer'}") from exc
            if response.status_code not in (200, 201, 204):
                detail = response.text.strip().splitlines()[0][:300] if response.text.strip() else ""
                if response.status_code == 401:
                    detail = (
                        "the store refused these credentials"
                        if auth is not None or http.auth is not None
                        else "the store wants credentials (--user, password in $TWINNING_KG_STORE_PASSWORD)"
                    )
                raise PublishError(
                    f"{endpoint}: PUT graph {graph or '(default)'} answered {response.status_code} "
                    f"{response.reason_phrase}{': ' + detail if detail else ''}"
                )
            uploads.append(GraphUpload(graph, len(triples), response.status_code))
            if on_graph is not None:
                on_graph(graph, len(triples))
    finally:
        if owned:
            http.close()
    return uploads
