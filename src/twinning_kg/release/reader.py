"""A built release directory, as `build` writes it and `serve` reads it.

See docs/architecture.md for the layout. Kept separate from `build` so the server
can open a release without importing the build pipeline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pyoxigraph

from twinning_kg.graph.claims import Select, store_select

MANIFEST = "manifest.json"
DUMP_STEM = "twinning-kg"


@dataclass(frozen=True)
class Stamp:
    """What the catalog says about a release as a whole (docs/publication.md).

    `version`: the manifest's content version (SHA-256 of the canonical N-Quads);
    `date`: when its sources last changed (`twinning_kg.release.source_date`), never the clock.
    """

    version: str
    date: datetime


class ReleaseError(Exception):
    """The directory is not a usable release (missing, partial or unreadable)."""


@dataclass(frozen=True)
class Release:
    """An immutable, fully written release; `path` is the resolved directory."""

    path: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, directory: Path | str) -> Release:
        """Resolve the `DIR` symlink once, so a later swap never mixes two releases."""
        path = Path(directory).resolve()
        manifest_file = path / MANIFEST
        if not manifest_file.is_file():
            raise ReleaseError(f"{directory}: no {MANIFEST}; run `twinning-kg build --out {directory}` first")
        try:
            manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ReleaseError(f"{manifest_file}: unreadable manifest: {exc}") from exc
        return cls(path=path, manifest=manifest)

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def base_iri(self) -> str:
        return str(self.manifest["base_iri"])

    @property
    def vocabulary(self) -> str:
        """Base of the vocabulary the release speaks (`Settings.vocabulary`): recorded in the
        manifest only when it is not the base IRI (a city's project uses the kit's)."""
        return str(self.manifest.get("vocabulary_iri") or self.base_iri)

    @property
    def store_path(self) -> Path:
        return self.path / "store"

    def select(self) -> Select:
        """The claims queries (`graph.claims`) over this release's store, opened read-only."""
        return store_select(pyoxigraph.Store.read_only(str(self.store_path)))

    @property
    def etag(self) -> str:
        """Strong validator tied to the data's version."""
        return f'"{self.version[:32]}"'

    @property
    def last_modified(self) -> str:
        """HTTP date of the manifest, written last by the build."""
        return formatdate((self.path / MANIFEST).stat().st_mtime, usegmt=True)

    def file(self, name: str) -> Path:
        return self.path / name
