"""Deterministic serialisations of a dataset: canonical N-Quads, sorted N-Triples, Turtle,
JSON-LD, RDF/XML, their gzip twins and a `sha256sum`-compatible checksum file.

Why this shape: the same inputs must give byte-identical dumps (issue 3), on any
PYTHONHASHSEED, and the world import (millions of triples) must not be slow. So every
dump is derived from one canonical, sorted byte stream produced by Oxigraph (Rust, no
hash-order effects): RDFC-1.0 gives blank nodes stable labels, sorting the N-Quads
lines gives a total order, and the pretty formats are written by Oxigraph's
serializers fed with the triples in that sorted order. rdflib's serializers are not
used for dumps because their output order depends on Python's hash seed.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from rdflib import Graph

from twinning_kg.graph.prefixes import merge_prefixes
from twinning_kg.graph.quads import oxigraph_quads
from twinning_kg.release.reader import DUMP_STEM

# extension -> (Oxigraph format, media type); the order is the order files are written
FORMATS: dict[str, tuple[ox.RdfFormat, str]] = {
    "nq": (ox.RdfFormat.N_QUADS, "application/n-quads"),
    "nt": (ox.RdfFormat.N_TRIPLES, "application/n-triples"),
    "ttl": (ox.RdfFormat.TURTLE, "text/turtle"),
    "jsonld": (ox.RdfFormat.JSON_LD, "application/ld+json"),
    "rdf": (ox.RdfFormat.RDF_XML, "application/rdf+xml"),
}
GZIP_MEDIA_TYPE = "application/gzip"
_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
SUMS_NAME = "SHA256SUMS"
CHUNK = 1 << 20

# A predicate needs an XML NCName tail to be written as an RDF/XML element
_PREDICATE = re.compile(rb"^\S+ <([^>]*)> ", re.MULTILINE)
_NCNAME_TAIL = re.compile(r"[^\W\d][\w.\-\u00B7]*$")


class DumpError(Exception):
    """The data cannot be written in one of the dump formats (message says why)."""


@dataclass(frozen=True)
class FileInfo:
    """What the manifest and the catalog say about one written file."""

    bytes: int
    sha256: str
    media_type: str

    def as_dict(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "sha256": self.sha256, "media_type": self.media_type}


@dataclass
class Canonical:
    """The canonical form of a dataset: what every dump, the version and the counts come from."""

    nquads: bytes  # RDFC-1.0 canonical N-Quads: canonical blank-node labels, distinct lines sorted
    ntriples: bytes  # the union of all graphs: distinct triples, lines sorted

    @property
    def quads(self) -> int:
        return self.nquads.count(b"\n")

    @property
    def triples(self) -> int:
        return self.ntriples.count(b"\n")

    @property
    def version(self) -> str:
        """sha256 of the canonical N-Quads: the release's identity (and ETag)."""
        return hashlib.sha256(self.nquads).hexdigest()

    @property
    def has_blank_nodes(self) -> bool:
        return b"_:" in self.nquads  # may also hit a literal; then we merely take the careful path


# --- from whatever the caller holds to Oxigraph quads -------------------------------------


def canonicalize(quads: Iterable[ox.Quad]) -> Canonical:
    """RDFC-1.0 canonical N-Quads plus the sorted union as N-Triples.

    Oxigraph writes N-Quads with the canonical escaping, so the distinct lines sorted
    (UTF-8 byte order = code point order) are the canonical serialisation once blank
    nodes carry canonical labels. Without blank nodes there is nothing to relabel, and
    the (costly) in-memory Dataset and RDFC-1.0 run are skipped: the result is the same.
    """
    raw = ox.serialize(quads, format=ox.RdfFormat.N_QUADS)  # Oxigraph pulls the iterator itself
    if b"_:" in raw:
        dataset = ox.Dataset(ox.parse(raw, format=ox.RdfFormat.N_QUADS))
        dataset.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
        raw = ox.serialize(dataset, format=ox.RdfFormat.N_QUADS)
        del dataset
    nquads = _sorted_lines(raw)
    del raw
    union = (q.triple for q in ox.parse(nquads, format=ox.RdfFormat.N_QUADS))
    ntriples = _sorted_lines(ox.serialize(union, format=ox.RdfFormat.N_TRIPLES))
    return Canonical(nquads=nquads, ntriples=ntriples)


def _sorted_lines(data: bytes) -> bytes:
    """Distinct lines in byte order, each ending in a line feed."""
    lines = sorted(set(data.splitlines()))
    return b"".join(line + b"\n" for line in lines)


# --- prefixes -----------------------------------------------------------------------------


def used_prefixes(prefixes: Mapping[str, str], ntriples: bytes) -> dict[str, str]:
    """Only prefixes whose namespace occurs in the data (keeps dumps free of rdflib's defaults)."""
    return {
        name: ns for name, ns in sorted(prefixes.items()) if b"<" + ns.encode("utf-8") in ntriples
    }


# --- writing ------------------------------------------------------------------------------


def write_dumps(canonical: Canonical, directory: Path, prefixes: Mapping[str, str]) -> dict[str, FileInfo]:
    """Write every dump and its .gz into `directory`; returns name -> FileInfo."""
    prefixes = used_prefixes(prefixes, canonical.ntriples)
    check_rdfxml(predicates(canonical))
    written: dict[str, FileInfo] = {}
    for ext, (fmt, media_type) in FORMATS.items():
        path = directory / f"{DUMP_STEM}.{ext}"
        if ext == "nq":
            write_bytes(path, canonical.nquads)
        elif ext == "nt":
            write_bytes(path, canonical.ntriples)
        else:
            with _DurableFile(path) as out:
                ox.serialize(_sorted_triples(canonical), out, fmt, prefixes=prefixes)
                _end_with_newline(out)
        written[path.name] = file_info(path, media_type)
    for name in list(written):
        gz_path = directory / f"{name}.gz"
        gzip_file(directory / name, gz_path)
        written[gz_path.name] = file_info(gz_path, GZIP_MEDIA_TYPE)
    return written


def _end_with_newline(handle: Any) -> None:
    """Oxigraph's Turtle/RDF/XML/JSON-LD end without a line break; POSIX text files end with one."""
    if handle.tell() > 0:
        handle.flush()
        with open(handle.name, "rb") as check:
            check.seek(-1, os.SEEK_END)
            if check.read(1) != b"\n":
                handle.write(b"\n")


def _sorted_triples(canonical: Canonical) -> Iterator[ox.Triple]:
    """The union in sorted order, so Oxigraph's serializers group and order stably."""
    return ox.parse(canonical.ntriples, format=ox.RdfFormat.N_TRIPLES)  # type: ignore[return-value]


def predicates(canonical: Canonical) -> set[str]:
    """Distinct predicate IRIs, read off the sorted N-Triples (a subject never holds a space)."""
    return {p.decode("utf-8") for p in set(_PREDICATE.findall(canonical.ntriples))}


def check_rdfxml(predicates: Iterable[str]) -> None:
    """RDF/XML cannot write a predicate without an NCName tail; say so instead of bad XML."""
    bad = sorted(p for p in predicates if not _NCNAME_TAIL.search(p))
    if bad:
        raise DumpError(f"RDF/XML cannot express predicate <{bad[0]}> (its IRI does not end in an XML name)")


def deterministic_turtle(graph: Graph, prefixes: Mapping[str, str] | None = None) -> bytes:
    """Turtle for a small rdflib graph (catalog, VoID): canonical blank-node labels, sorted."""
    canonical = canonicalize(oxigraph_quads(graph))
    chosen = used_prefixes(merge_prefixes((prefixes or {}).items(), graph.namespaces()), canonical.ntriples)
    data = ox.serialize(_sorted_triples(canonical), format=ox.RdfFormat.TURTLE, prefixes=chosen)
    return data if data.endswith(b"\n") or not data else data + b"\n"


def gzip_file(source: Path, target: Path) -> None:
    """gzip with mtime 0 and no file name in the header, so the bytes are reproducible."""
    with (
        source.open("rb") as src,
        _DurableFile(target) as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
    ):
        shutil.copyfileobj(src, gz, CHUNK)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_info(path: Path, media_type: str) -> FileInfo:
    return FileInfo(bytes=path.stat().st_size, sha256=sha256_of(path), media_type=media_type)


def sha256sums(files: Mapping[str, FileInfo]) -> bytes:
    """`sha256sum -c` format: `<hex>  <name>` (two spaces = text mode), sorted by name."""
    return "".join(f"{info.sha256}  {name}\n" for name, info in sorted(files.items())).encode("ascii")


def write_bytes(path: Path, data: bytes) -> None:
    with _DurableFile(path) as out:
        out.write(data)


class _DurableFile:
    """A binary file that is fsync'ed on close, so a swapped-in release is really on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self):  # noqa: ANN204 - returns the open file object
        self.handle = self.path.open("wb")
        return self.handle

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.handle.flush()
                os.fsync(self.handle.fileno())
        finally:
            self.handle.close()
