"""Namespace prefixes for readable output: what the source files bind, merged deterministically.

The dumps, the VoID partitions and the importers all name namespaces the way our Turtle
files do, never by rdflib's own defaults (which, e.g., bind `geo:` to GeoSPARQL).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pyoxigraph as ox

from twinning_kg.config import Settings
from twinning_kg.sources import loading

# A prefix name Turtle, RDF/XML and SPARQL all accept (PN_PREFIX, ASCII only).
_PREFIX_NAME = re.compile(r"^(?:[A-Za-z](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?)?$")


def source_prefixes(settings: Settings) -> dict[str, str]:
    """The `@prefix` bindings of the source files (first binding wins), for readable dumps.

    Read with Oxigraph, which resolves relative prefix IRIs against the base IRI the same
    way the loader does; rdflib's own default bindings (e.g. `geo:` for GeoSPARQL) must
    not override what our files say.
    """
    bindings: list[tuple[str, str]] = []
    for path, area in loading.source_files(settings):
        base = loading.parse_base(settings, area)
        parser = ox.parse(path=str(path), format=ox.RdfFormat.TURTLE, base_iri=base)
        for _ in parser:
            pass
        bindings += sorted(parser.prefixes.items())
    return merge_prefixes(bindings)


def merge_prefixes(*sources: Iterable[tuple[str, str]]) -> dict[str, str]:
    """First binding wins, both for a prefix name and for a namespace; invalid names dropped."""
    merged: dict[str, str] = {}
    taken: set[str] = set()
    for source in sources:
        for name, namespace in source:
            name, namespace = str(name), str(namespace)
            if name in merged or namespace in taken or not _PREFIX_NAME.match(name):
                continue
            merged[name] = namespace
            taken.add(namespace)
    return merged
