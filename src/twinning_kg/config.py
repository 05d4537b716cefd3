"""Settings shared by the build, the CLI and the server.

One object carries every knob so that tests can start a server with a different
base IRI, limits or allow-list without touching globals.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

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
    workers: int = 2
    service_allowlist: tuple[str, ...] = (WIKIDATA_QUERY_SERVICE,)

    def __post_init__(self) -> None:
        if not self.base_iri.endswith("/"):
            raise ValueError(f"base IRI must end with '/': {self.base_iri}")

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


def publication_dir(settings: Settings) -> Path:
    """`publication/` of the project root; a root holding only sources (ontology/, data/,
    shapes/, as `TWINNING_KG_HOME` may point at) gets the project's own (checkout or wheel)."""
    candidates = [
        settings.publication_dir,
        Path(__file__).resolve().parents[2] / "publication",  # source checkout
        Path(__file__).resolve().parent / "_resources" / "publication",  # installed wheel
    ]
    return next((c for c in candidates if c.is_dir()), candidates[0])
