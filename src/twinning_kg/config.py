"""Settings shared by the build, the CLI and the server.

One object carries every knob so that tests can start a server with a different
base IRI, limits or allow-list without touching globals.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_BASE_IRI = "https://w3id.org/twinning-kg/"
WIKIDATA_QUERY_SERVICE = "https://query.wikidata.org/sparql"
# An address that becomes a plain `mailto:` IRI: one @, nothing an IRI cannot hold and
# nothing a mailto: IRI gives a meaning of its own (?, #, %, separators).
_MAIL_CHAR = r"[^@\s<>\"{}|\\^`?#,;:/%]"
_EMAIL = re.compile(rf"^{_MAIL_CHAR}+@{_MAIL_CHAR}+\.{_MAIL_CHAR}+$")
_IRI_FORBIDDEN = re.compile(r"[\s<>\"{}|\\^`]")
# httptools keeps URL offsets in 16 bits: a longer request target cannot even be parsed.
MAX_PARSABLE_URL = 65_535


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
    # Base of the kit's vocabulary (ontology/, its concept schemes, shapes/): terms are
    # `{vocabulary}ontology#Term`. None: the base IRI, as in the kit's own project (Kassel),
    # where graph and vocabulary are one; every other city's project uses the kit's
    # (DEFAULT_BASE_IRI), so that all cities' graphs speak one vocabulary (project.py).
    vocabulary_iri: str | None = None
    # Public URL the server is reached at; IRIs under base_iri are rewritten to it in
    # pages and dereferenced RDF so links stay followable on a developer's host.
    base_url: str | None = None
    root: Path = field(default_factory=project_root)
    # A city's project directory (twinning-kg.toml, data/, imports/, partners/, catalog/);
    # None: `root` is the project too (the kit's own, Kassel's). Ontology and shapes always
    # come from `root`: they are the kit's, shared by every city.
    project_dir: Path | None = None
    # The city the project is about (twinning-kg.toml's `key`): its place is
    # `{base}id/place/{key}`, its main dataset `{base}dataset/{key}`. The default is the
    # kit's own project's, which its twinning-kg.toml states too.
    city_key: str = "kassel"
    query_timeout: float = 30.0
    max_rows: int = 10_000
    max_request_bytes: int = 1_000_000
    # Query workers (twinning_kg.query.engine): the public lane answers /sparql, the site lane
    # only the server's own page queries, so pages keep capacity whatever /sparql does.
    workers: int = 3
    site_workers: int = 1
    # Bytes of /sparql answers kept per front process (web.result_cache); 0: no cache.
    result_cache_bytes: int = 32 * 1024 * 1024
    # Admission (twinning_kg.query.admission): queries one client may run at once (at most
    # workers - 1) and have waiting; how long a request may wait for a worker before 429;
    # how many may wait per lane. Client = peer address, or X-Forwarded-For's nearest
    # untrusted hop when the peer is one of `trusted_proxies` (addresses or networks).
    client_queries: int = 2
    client_waiting: int = 8
    queue_wait: float = 1.0
    max_waiting: int = 64
    trusted_proxies: tuple[str, ...] = ()
    # What the guard reads (twinning_kg.query.syntax.Budget); beyond it a query is refused
    # with 422 at once, before it reaches the engine.
    max_query_chars: int = 200_000
    max_query_tokens: int = 20_000
    max_query_depth: int = 100
    max_service_clauses: int = 10
    service_allowlist: tuple[str, ...] = (WIKIDATA_QUERY_SERVICE,)
    # Who answers for this deployment (the catalog's dcat:contactPoint); unset parts keep
    # catalog/catalog.ttl's default: a contact page this server serves (/about).
    contact_name: str | None = None
    contact_email: str | None = None
    contact_url: str | None = None
    # Connection limits (docs/security.md): what one client can hold and for how long.
    # The request line (method, URL, version) and the headers must arrive within
    # header_timeout seconds of the connection (or of the request's first byte on a
    # kept-alive one), the body within body_timeout of the headers; a response the client
    # does not read for send_timeout seconds is abandoned; an idle kept-alive connection
    # is closed after keep_alive_timeout.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    send_timeout: float = 60.0
    keep_alive_timeout: float = 5.0
    # Open connections at once, in all and from one client address (0: no per-client cap;
    # behind a reverse proxy every connection comes from the proxy).
    max_connections: int = 1024
    max_connections_per_client: int = 64
    # Longest request target (path and query) in bytes; at most 65,535, the longest URL
    # the HTTP parser (httptools) can split, and never more than max_request_bytes (see
    # url_limit). Longer: 414 (use POST for long queries).
    max_url_bytes: int = 65_535
    # All request header lines together, in bytes. Longer: 431.
    max_header_bytes: int = 32_768
    # Host names (optionally with a leading `*.` wildcard) the server answers to; empty:
    # any. Absolute URLs are never built from the Host header either way (see base_url).
    allowed_hosts: tuple[str, ...] = ()
    # Largest answer the egress proxy accepts from an allow-listed service.
    service_max_bytes: int = 16 * 1024 * 1024
    # Network isolation of the query workers (twinning_kg.query.sandbox): "auto" = a network
    # namespace if the host allows one, else a seccomp filter; "namespace" = refuse to
    # start without one; "seccomp" = never create namespaces (federation is then off).
    worker_isolation: str = "auto"

    def __post_init__(self) -> None:
        if not self.base_iri.endswith("/"):
            raise ValueError(f"base IRI must end with '/': {self.base_iri}")
        if self.vocabulary_iri is not None and not self.vocabulary_iri.endswith("/"):
            raise ValueError(f"vocabulary IRI must end with '/': {self.vocabulary_iri}")
        name, email, url = self.contact_name, self.contact_email, self.contact_url
        if name is not None and (not name.strip() or not name.isprintable()):
            raise ValueError(f"contact name must be printable text: {name!r}")
        if email is not None and not _EMAIL.match(email):
            raise ValueError(f"contact e-mail is not an address like name@example.org: {email!r}")
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc or _IRI_FORBIDDEN.search(url):
                raise ValueError(f"contact URL must be an absolute http(s) URL: {url!r}")
        if not 0 < self.max_url_bytes <= MAX_PARSABLE_URL:
            raise ValueError(f"max_url_bytes must be between 1 and {MAX_PARSABLE_URL}: {self.max_url_bytes}")
        for proxy in self.trusted_proxies:
            ipaddress.ip_network(proxy, strict=False)  # ValueError names a bad entry
        if self.worker_isolation not in ("auto", "namespace", "seccomp"):
            raise ValueError(f"worker isolation must be auto, namespace or seccomp: {self.worker_isolation}")

    @property
    def vocabulary(self) -> str:
        """Base of the vocabulary's IRIs: `{vocabulary}ontology#`, `{vocabulary}id/kind/…`."""
        return self.vocabulary_iri or self.base_iri

    @property
    def home(self) -> Path:
        """The project's directory: where its data and configuration live."""
        return self.project_dir or self.root

    @property
    def ontology_dir(self) -> Path:
        return self.root / "ontology"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def imports_dir(self) -> Path:
        """Reference data from outside sources, never curated (`imports/*.ttl`)."""
        return self.home / "imports"

    @property
    def partners_dir(self) -> Path:
        """What partner graphs say about us, as `refresh-partners` fetched it (`partners/`)."""
        return self.home / "partners"

    @property
    def shapes_dir(self) -> Path:
        return self.root / "shapes"

    @property
    def catalog_dir(self) -> Path:
        """Hand-written parts of the DCAT catalog and VoID (titles, licences, dates)."""
        return self.home / "catalog"

    @property
    def url_limit(self) -> int:
        """Longest request target accepted: a query is no larger in a URL than in a body."""
        return min(self.max_url_bytes, self.max_request_bytes)

    @property
    def public_base(self) -> str:
        """The base that links should use: base_url when set, else the base IRI."""
        if self.base_url:
            return self.base_url if self.base_url.endswith("/") else self.base_url + "/"
        return self.base_iri


def catalog_dir(settings: Settings) -> Path:
    """`catalog/` of the project; a kit root holding only sources (ontology/, data/,
    shapes/, as `TWINNING_KG_HOME` may point at) gets the kit's own (checkout or wheel).
    A city's project has its own catalog (written by `new-city`), never Kassel's."""
    if settings.project_dir is not None:
        return settings.catalog_dir
    candidates = [
        settings.catalog_dir,
        Path(__file__).resolve().parents[2] / "catalog",  # source checkout
        Path(__file__).resolve().parent / "_resources" / "catalog",  # installed wheel
    ]
    return next((c for c in candidates if c.is_dir()), candidates[0])
