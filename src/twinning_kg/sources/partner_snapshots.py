"""What partner cities' graphs say about us: fetched at refresh time, kept with provenance.

`twinning-kg refresh-partners` reads each partner graph the project file lists
(`linked_data_client`, bounded) and keeps what it says about our city: its partnerships
with us (with their events, the places and the sources they cite), its tw:twinnedWith and
wdt:P190 links to us, and the description of the city it speaks for. That is written
verbatim, one triple per line in sorted order, to `partners/<name>.ttl`, which the build
loads into the named graph `{base}graph/partner/<name>`: their statements, never merged
with ours, never validated by our shapes or materialised (they are theirs to check), and
never fetched at request time.

Provenance (PROV-O) goes to `partners/provenance.ttl`, graph `{base}graph/partners`: per
partner graph, the URL it was read from (`prov:hadPrimarySource`), the dump or endpoint
the bytes came from (`prov:wasDerivedFrom`), when (`prov:generatedAtTime`, the retrieval
activity's times), the SHA-256 of the bytes (spdx:checksum) and the cities it speaks for
(`dct:spatial`, their Wikidata items). Given the same fetched bytes, refresh writes the
same files: when the checksum is the one recorded, nothing changes, not even the time.
Blank nodes are left out (a twinning graph made with the kit has none, and their labels
would make the snapshot differ from one read to the next).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, OWL, PROV, RDF, RDFS, VOID, XSD

from twinning_kg.config import Settings
from twinning_kg.sources import loading
from twinning_kg.sources.linked_data_client import RemoteGraph
from twinning_kg.vocab import SPDX, WD, WDT

PROVENANCE_FILE = "provenance.ttl"
PROVENANCE_GRAPH = "partners"
GRAPH_PREFIX = "partner/"
SHA256 = SPDX["checksumAlgorithm_sha256"]
SAFE_NAME = re.compile(r"[^A-Za-z0-9]+")
# The vocabulary's concept schemes (ontology/schemes.ttl, ontology/claims.ttl).
SCHEMES = ("kind", "status", "precision", "focus", "verdict")


@dataclass(frozen=True)
class Snapshot:
    """What one partner graph says about us, ready to be written."""

    name: str  # file stem and graph name: the city's QID, else a slug of the URL
    graph: Graph  # their triples about us
    cities: tuple[str, ...]  # Wikidata IRIs of the cities that graph speaks for
    partnerships: int  # of theirs with us


@dataclass(frozen=True)
class Record:
    """The provenance of one stored snapshot, as `partners/provenance.ttl` states it."""

    graph: str
    url: str
    source: str
    retrieved: str
    sha256: str


def graph_iri(settings: Settings, name: str) -> str:
    return f"{settings.base_iri}graph/{GRAPH_PREFIX}{name}"


def about_us(remote: RemoteGraph, city: str, city_qid: str | None, vocabulary: str) -> Snapshot:
    """Their statements about the city `city` (our IRI; `city_qid` its Wikidata item)."""
    theirs = remote.graph
    tw = f"{vocabulary}ontology#"
    partner, partnership = URIRef(tw + "partner"), URIRef(tw + "Partnership")
    us = {URIRef(city)} | ({WD[city_qid]} if city_qid else set())
    us |= {s for s, o in theirs.subject_objects(OWL.sameAs) if o in us}
    keep: set[URIRef] = set()
    all_partnerships = list(theirs.subjects(RDF.type, partnership))
    ours_with_them = [p for p in all_partnerships if set(theirs.objects(p, partner)) & us]
    for p in ours_with_them:
        keep.add(p)
        for o in theirs.objects(p, None):
            if isinstance(o, URIRef):
                keep.add(o)
        for event in theirs.objects(p, URIRef(tw + "event")):
            keep.update(o for o in theirs.objects(event, None) if isinstance(o, URIRef))
    counts = Counter(o for p in all_partnerships for o in theirs.objects(p, partner) if isinstance(o, URIRef))
    top = max(counts.values(), default=0)
    hubs = {place for place, n in counts.items() if n == top and place not in us}
    keep |= hubs
    for source in list(keep):  # a cited source's publisher
        keep.update(o for o in theirs.objects(source, DCTERMS.publisher) if isinstance(o, URIRef))
    out = Graph()
    for s, p, o in theirs:
        if isinstance(s, BNode) or isinstance(o, BNode):
            continue
        about_kept = s in keep and not _vocabulary_term(s, vocabulary)
        link_to_us = p in (URIRef(tw + "twinnedWith"), WDT.P190) and (s in us or o in us)
        if about_kept or link_to_us:
            out.add((s, p, o))
    named = {str(o) for h in hubs for o in theirs.objects(h, OWL.sameAs)} | {str(h) for h in hubs}
    cities = sorted(iri for iri in named if iri.startswith(str(WD)))
    name = cities[0][len(str(WD)):] if len(cities) == 1 else _slug(remote.requested)
    return Snapshot(name, out, tuple(cities), len(ours_with_them))


def _vocabulary_term(node: URIRef, vocabulary: str) -> bool:
    """A term or concept of the shared vocabulary: theirs to use, not theirs to describe here."""
    iri = str(node)
    return iri.startswith(vocabulary + "ontology") or any(
        iri.startswith(f"{vocabulary}id/{scheme}/") or iri == f"{vocabulary}id/{scheme}" for scheme in SCHEMES
    )


def _slug(url: str) -> str:
    return SAFE_NAME.sub("-", re.sub(r"^https?://", "", url)).strip("-").lower() or "partner"


def recorded(settings: Settings) -> dict[str, Record]:
    """Graph IRI -> its provenance record, from `partners/provenance.ttl` (none when absent)."""
    path = settings.partners_dir / PROVENANCE_FILE
    if not path.is_file():
        return {}
    graph = loading.parse_file(path, settings.base_iri)
    out = {}
    for entity in graph.subjects(RDF.type, PROV.Entity):
        checksum = graph.value(entity, SPDX.checksum)
        value = graph.value
        out[str(entity)] = Record(
            str(entity), str(value(entity, PROV.hadPrimarySource)), str(value(entity, PROV.wasDerivedFrom)),
            str(value(entity, PROV.generatedAtTime)), str(value(checksum, SPDX.checksumValue)),
        )
    return out


def write(settings: Settings, remote: RemoteGraph, snapshot: Snapshot) -> tuple[Path, bool]:
    """Store the snapshot and its provenance; returns (its file, whether anything changed)."""
    folder = settings.partners_dir
    folder.mkdir(parents=True, exist_ok=True)
    iri = graph_iri(settings, snapshot.name)
    path = folder / f"{snapshot.name}.ttl"
    previous = recorded(settings).get(iri)
    if previous is not None and previous.sha256 == remote.sha256 and path.is_file():
        return path, False
    lines = sorted({" ".join(t.n3() for t in triple) + " ." for triple in snapshot.graph})
    header = (f"# What {remote.requested} says about us: read by `twinning-kg refresh-partners` from\n"
              f"# {remote.url} (sha256 {remote.sha256}); its provenance is in {PROVENANCE_FILE}.\n"
              "# Their statements, verbatim: regenerate rather than edit.\n")
    path.write_text(header + "\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    _write_provenance(settings, iri, remote, snapshot)
    return path, True


def _write_provenance(settings: Settings, iri: str, remote: RemoteGraph, snapshot: Snapshot) -> None:
    path = settings.partners_dir / PROVENANCE_FILE
    graph = loading.parse_file(path, settings.base_iri) if path.is_file() else Graph()
    entity = URIRef(iri)
    for node in (entity, URIRef(iri + "#retrieval"), URIRef(iri + "#sha256")):
        graph.remove((node, None, None))
    when = Literal(remote.retrieved.isoformat(), datatype=XSD.dateTime)
    retrieval, checksum = URIRef(iri + "#retrieval"), URIRef(iri + "#sha256")
    triples = [
        (entity, RDF.type, PROV.Entity), (entity, RDF.type, VOID.Dataset),
        (entity, RDFS.label, Literal(f"What {remote.requested} says about us", lang="en")),
        (entity, PROV.hadPrimarySource, URIRef(remote.requested)),
        (entity, PROV.wasDerivedFrom, URIRef(remote.url)),
        (entity, PROV.generatedAtTime, when),
        (entity, PROV.wasGeneratedBy, retrieval),
        (entity, SPDX.checksum, checksum),
        (entity, VOID.triples, Literal(len(snapshot.graph), datatype=XSD.integer)),
        (retrieval, RDF.type, PROV.Activity), (retrieval, PROV.used, URIRef(remote.url)),
        (retrieval, PROV.endedAtTime, when),
        (checksum, RDF.type, SPDX.Checksum), (checksum, SPDX.algorithm, SHA256),
        (checksum, SPDX.checksumValue, Literal(remote.sha256, datatype=XSD.hexBinary)),
    ]
    triples += [(entity, DCTERMS.spatial, URIRef(city)) for city in snapshot.cities]
    for triple in triples:
        graph.add(triple)
    lines = sorted({" ".join(t.n3() for t in triple) + " ." for triple in graph})
    header = ("# Provenance of the partner graphs under partners/ (PROV-O), written by\n"
              "# `twinning-kg refresh-partners`: where, when and from which bytes each was read.\n")
    path.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")


def files(settings: Settings) -> list[tuple[Path, str]]:
    """(file, graph local name) of every stored snapshot and of the provenance."""
    folder = settings.partners_dir
    if not folder.is_dir():
        return []
    found = [(p, GRAPH_PREFIX + p.stem) for p in sorted(folder.glob("*.ttl")) if p.name != PROVENANCE_FILE]
    if (folder / PROVENANCE_FILE).is_file():
        found.append((folder / PROVENANCE_FILE, PROVENANCE_GRAPH))
    return found


def load_into(dataset: object, settings: Settings) -> int:
    """Add the snapshots to an rdflib Dataset (after validation and materialisation: they
    are the partners' statements, not ours); returns how many graphs were added."""
    added = 0
    for path, name in files(settings):
        target = dataset.graph(URIRef(f"{settings.base_iri}graph/{name}"))  # type: ignore[attr-defined]
        for triple in loading.parse_file(path, settings.base_iri):
            target.add(triple)
        added += 1
    return added


def retrieved_at(record: Record) -> datetime | None:
    try:
        return datetime.fromisoformat(record.retrieved)
    except ValueError:
        return None
