"""Settings shared by the build, the CLI and the server.

One object carries every knob so that tests can start a server with a different
base IRI, limits or allow-list without touching globals.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from twinning_kg.query_syntax import Budget

DEFAULT_BASE_IRI = "https://w3id.org/twinning-kg/"
WIKIDATA_QUERY_SERVICE = "https://query.wikidata.org/sparql"


def project_root() -> Path:
    """Where `ontology/`, `data/` and `shapes/` live.

    `TWINNING_KG_HOME` wins; otherwise the source checkout (editable install), and
    finally the copies packed into the wheel under `_resources`.
    """
    env = os.environ.get("TWINNING_KG_HOME")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "ontology").is_dir():
        return checkout
    return Path(__file__).resolve().parent / "_resources"


@dataclass(frozen=True)
class Settings:
    """Configuration of one build or one running server."""

    base_iri: str = DEFAULT_BASE_IRI
    # Public URL the server is reached at; IRIs under base_iri are rewritten to it in
    # pages and dereferenced RDF so links stay followable on a developer's host.
    base_url: str | None = None
    root: Path = field(default_factory=project_root)
    query_timeout: float = 30.0
    max_rows: int = 10_000
    max_request_bytes: int = 1_000_000
    # Query workers (twinning_kg.engine): the public lane answers /sparql, the site lane
    # only the server's own page queries, so pages keep capacity whatever /sparql does.
    workers: int = 3
    site_workers: int = 1
    # Admission (twinning_kg.admission): queries one client may run at once (at most
    # workers - 1) and have waiting; how long a request may wait for a worker before 429;
    # how many may wait per lane. Client = peer address, or X-Forwarded-For's nearest
    # untrusted hop when the peer is one of `trusted_proxies` (addresses or networks).
    client_queries: int = 2
    client_waiting: int = 8
    queue_wait: float = 1.0
    max_waiting: int = 64
    trusted_proxies: tuple[str, ...] = ()
    # What the guard reads (twinning_kg.query_syntax.Budget); beyond it a query is refused
    # with 422 at once, before it reaches the engine.
    max_query_chars: int = 200_000
    max_query_tokens: int = 20_000
    max_query_depth: int = 100
    max_service_clauses: int = 10
    service_allowlist: tuple[str, ...] = (WIKIDATA_QUERY_SERVICE,)
    # Largest answer the egress proxy accepts from an allow-listed service.
    service_max_bytes: int = 16 * 1024 * 1024
    # Network isolation of the query workers (twinning_kg.sandbox): "auto" = a network
    # namespace if the host allows one, else a seccomp filter; "namespace" = refuse to
    # start without one; "seccomp" = never create namespaces (federation is then off).
    worker_isolation: str = "auto"

    def __post_init__(self) -> None:
        if not self.base_iri.endswith("/"):
            raise ValueError(f"base IRI must end with '/': {self.base_iri}")
        for proxy in self.trusted_proxies:
            ipaddress.ip_network(proxy, strict=False)  # ValueError names a bad entry
        if self.worker_isolation not in ("auto", "namespace", "seccomp"):
            raise ValueError(f"worker isolation must be auto, namespace or seccomp: {self.worker_isolation}")

    @property
    def query_budget(self) -> Budget:
        """The guard's complexity budget (see query_syntax.Budget)."""
        return Budget(
            max_chars=self.max_query_chars,
            max_tokens=self.max_query_tokens,
            max_depth=self.max_query_depth,
            max_services=self.max_service_clauses,
        )

    @property
    def ontology_dir(self) -> Path:
        return self.root / "ontology"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def shapes_dir(self) -> Path:
        return self.root / "shapes"

    @property
    def publication_dir(self) -> Path:
        """Hand-written parts of the DCAT catalog and VoID (titles, licences, dates)."""
        return self.root / "publication"

    @property
    def public_base(self) -> str:
        """The base that links should use: base_url when set, else the base IRI."""
        if self.base_url:
            return self.base_url if self.base_url.endswith("/") else self.base_url + "/"
        return self.base_iri
