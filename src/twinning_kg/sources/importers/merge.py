"""Reconcile an ImportBatch with the curated data and add it as one named graph.

Rules (docs/importing.md, "How imported data enters the model"):
- Places are reconciled by QID: a curated place with `owl:sameAs wd:Q…` *is* that
  place; the import adds nothing to it (its labels, country, coordinates stay curated).
  Other QIDs become `{base}id/place/{QID}`: `tw:Place`, their labels, `owl:sameAs`.
- Curated wins where both speak: a pair the curated data already has a partnership for
  (any kind, any graph) is not imported again, so its kind, dates and status stay curated.
- Every other pair becomes `{base}id/partnership/{Qa}--{Qb}` with `prov:wasDerivedFrom`
  its source(s), and `tw:oneWay true` when a directed source states it one way only.
  Such a pair is sourced to the import alone: the claims layer, not this one, decides
  whether it is believed (e.g. Kassel–Montana, stated by the crawl, named by no Kassel source).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from rdflib import Literal, URIRef
from rdflib.namespace import OWL, PROV, RDF, RDFS, SKOS, XSD

from twinning_kg.sources.importers.model import ImportBatch, InputError, PairRecord
from twinning_kg.sources.loading import Loaded
from twinning_kg.vocab import WD, Iris


@dataclass
class MergeReport:
    """Counts for the summary."""

    graph: URIRef
    places_new: int = 0
    places_reconciled: int = 0
    pairs_new: int = 0
    pairs_curated: int = 0
    one_way: int = 0
    triples: int = 0
    notes: Counter[str] = field(default_factory=Counter)
    reconciled: dict[str, URIRef] = field(default_factory=dict)  # QID -> curated place


def curated_places(loaded: Loaded) -> dict[str, URIRef]:
    """QID -> curated place IRI, from `owl:sameAs <http://www.wikidata.org/entity/Q…>`.

    Should two curated nodes claim one QID (never intended), the smallest IRI wins so
    the result is deterministic.
    """
    found: dict[str, URIRef] = {}
    for subject, _, obj, _ in loaded.dataset.quads((None, OWL.sameAs, None, None)):
        if isinstance(obj, URIRef) and str(obj).startswith(str(WD)) and isinstance(subject, URIRef):
            qid = str(obj)[len(str(WD)) :]
            if qid not in found or str(subject) < str(found[qid]):
                found[qid] = subject
    return found


def curated_pairs(loaded: Loaded, iris: Iris) -> set[frozenset[URIRef]]:
    """Every pair of places some curated partnership joins."""
    members: dict[URIRef, set[URIRef]] = {}
    for partnership, _, place, _ in loaded.dataset.quads((None, iris.TW.partner, None, None)):
        members.setdefault(partnership, set()).add(place)
    return {frozenset(places) for places in members.values() if len(places) == 2}


def merge(loaded: Loaded, batch: ImportBatch, iris: Iris) -> MergeReport:
    """Add `batch` to `loaded.dataset` as graph `{base}graph/{batch.area}`."""
    dataset = loaded.dataset
    TW = iris.TW
    graph_iri = iris.graph[batch.area]
    if any(True for _ in dataset.graph(graph_iri).triples((None, None, None))):
        raise InputError(f"graph {graph_iri} already exists in the curated data; choose another name")
    report = MergeReport(graph=graph_iri)
    known = curated_places(loaded)
    already = curated_pairs(loaded, iris)
    graph = dataset.graph(graph_iri)

    if batch.extra is not None:
        described: dict[object, bool] = {}
        for triple in sorted(batch.extra):
            subject = triple[0]
            if subject not in described:  # curated wins: keep what the curated data says about it
                described[subject] = any(True for _ in dataset.quads((subject, None, None, None)))
                report.notes["description kept from the curated data"] += described[subject]
            if not described[subject]:
                graph.add(triple)
    _check_sources(loaded, batch, iris)
    _check_concepts(loaded, batch, iris)

    def place_iri(qid: str) -> URIRef:
        return known.get(qid) or iris.place(qid)

    triples: list[tuple] = []
    for qid in sorted(batch.places, key=lambda q: int(q[1:])):
        if qid in known:
            report.places_reconciled += 1
            report.reconciled[qid] = known[qid]
            continue
        if not batch.places[qid]:
            raise InputError(
                f"{batch.place_where.get(qid, batch.title)}: place {qid} is not curated and has no label; "
                "give it a name (a label column) in at least one row"
            )
        place = iris.place(qid)
        report.places_new += 1
        triples += [(place, RDF.type, TW.Place), (place, OWL.sameAs, WD[qid])]
        triples += [(place, RDFS.label, Literal(label.text, lang=label.lang)) for label in batch.places[qid]]

    for (a, b), record in sorted(
        batch.pairs.items(), key=lambda item: (int(item[0][0][1:]), int(item[0][1][1:]))
    ):
        if frozenset((place_iri(a), place_iri(b))) in already:
            report.pairs_curated += 1
            continue
        triples += _partnership(iris, record, place_iri(a), place_iri(b))
        report.pairs_new += 1
        report.one_way += record.one_way
    for triple in triples:
        graph.add(triple)
    report.triples = len(graph)
    return report


def _partnership(iris: Iris, record: PairRecord, place_a: URIRef, place_b: URIRef) -> list[tuple]:
    TW = iris.TW
    node = iris.partnership(record.a, record.b)
    out: list[tuple] = [
        (node, RDF.type, TW.Partnership),
        (node, TW.partner, place_a),
        (node, TW.partner, place_b),
    ]
    out += [(node, PROV.wasDerivedFrom, iris.source(source)) for source in sorted(record.sources)]
    if record.kind:
        out.append((node, TW.kind, iris.concept("kind", record.kind)))
    if record.status:
        out.append((node, TW.status, iris.concept("status", record.status)))
    if record.status_since:
        out.append((node, TW.statusSince, Literal(record.status_since, datatype=XSD.date)))
    for date, value, precision in (
        (TW.startDate, record.start, TW.startPrecision),
        (TW.endDate, record.end, TW.endPrecision),
    ):
        if value is not None:
            out.append((node, date, Literal(value.lexical, datatype=value.datatype)))
            out.append((node, precision, iris.concept("precision", value.precision)))
    if record.start is not None and len(record.sources) == 1:
        out.append((node, TW.startSource, iris.source(next(iter(record.sources)))))
    if record.one_way:
        out.append((node, TW.oneWay, Literal(True)))
    return out


def _check_sources(loaded: Loaded, batch: ImportBatch, iris: Iris) -> None:
    """Every source a pair cites must be described (curated data or the input itself)."""
    cited = {source for record in batch.pairs.values() for source in record.sources}
    extra = batch.extra
    for source in sorted(cited):
        node = iris.source(source)
        typed = (node, RDF.type, iris.TW.Source)
        if not any(True for _ in loaded.dataset.quads((*typed, None))) and not (extra and typed in extra):
            where = next(r.where for r in batch.pairs.values() if source in r.sources)
            raise InputError(
                f"{where}: source {source!r} ({node}) is not described in the curated data; "
                "describe it there or give its URL and publisher in the input"
            )


def _check_concepts(loaded: Loaded, batch: ImportBatch, iris: Iris) -> None:
    """kind, status and precision must be concepts of their scheme: a clear error, not a shape report."""
    members: dict[str, set[str]] = {}
    for scheme in ("kind", "status", "precision"):
        prefix = f"{iris.id[scheme]}/"
        members[scheme] = {
            str(s)[len(prefix) :]
            for s, _, _, _ in loaded.dataset.quads((None, SKOS.inScheme, iris.scheme(scheme), None))
            if str(s).startswith(prefix)
        }
    for record in batch.pairs.values():
        wanted = [("kind", record.kind), ("status", record.status)]
        wanted += [("precision", d.precision) for d in (record.start, record.end) if d is not None]
        for scheme, name in wanted:
            if name is not None and name not in members[scheme]:
                choices = ", ".join(sorted(members[scheme])) or "none defined"
                raise InputError(f"{record.where}: unknown {scheme} {name!r} (one of: {choices})")
