"""DCAT-AP 3 catalog (conforming to DCAT-AP.de 3.0 too) and VoID description of a release,
computed from its graph.

The build calls `describe(dataset, files, settings, stamp)` after writing the dumps and
writes the two graphs it returns as `catalog.ttl` and `void.ttl` into the release.

Why it is split this way: what a person must decide (titles, descriptions, keywords,
licences, publisher, themes, which external datasets we link to) is Turtle in
`catalog/*.ttl`, parsed with publicID = base IRI like every other source; everything
that can be counted or measured (distribution URLs, byte sizes, SHA-256 sums, temporal
coverage, triples, entities, partitions, vocabularies, named-graph subsets, linkset
sizes) is computed here, so the description can never drift from the data. What belongs
to the release rather than to a person (`dct:issued`, `dct:modified`, `dcat:version`: the
`stamp`) and to the deployment (the contact point, from the settings) is set here too;
the hand-written Turtle may not state the first three (docs/publication.md).

Each output graph is the part of (hand-written + computed) triples reachable from its
root (`{base}catalog`, `{base}void`). That is how unused hand-written pieces drop out
without special cases: a distribution for a dump the build did not write, a dataset
named after a graph the release does not hold (`{base}dataset/X` needs `{base}graph/X`),
a linkset with no links. No blank nodes anywhere and no clock: the same inputs give the
same triples.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rdflib import Dataset, Graph, Literal, URIRef

from twinning_kg.config import Settings
from twinning_kg.release.catalog_parts import (
    CATALOG,
    CONTACT,
    IANA_MEDIA_TYPES,
    MAIN_DATASET,
    SHA256,
    VOID_ROOT,
    CatalogError,
    Files,
    copy_graph,
    load_parts,
    reachable,
)
from twinning_kg.release.reader import DUMP_STEM, Stamp
from twinning_kg.release.void import Statistics, statistics, void_graph
from twinning_kg.vocab import DCAT, DCTERMS, RDF, RDFS, SPDX, VCARD, XSD, tw


def describe(dataset: Dataset, files: Files, settings: Settings, stamp: Stamp) -> dict[str, Graph]:
    """The release's catalog and VoID (see module docstring).

    `files`: {dump file name: {"bytes", "sha256", "media_type"}} for every dump written;
    `stamp`: the release's content version and the date of its sources.
    """
    parts = load_parts(settings)
    stats = statistics(dataset, settings.base_iri + "id/")
    return {
        "catalog.ttl": catalog_graph(parts, dataset, stats, files, settings, stamp),
        "void.ttl": void_graph(parts, dataset, stats, files, settings),
    }


def catalog_graph(
    parts: Graph, dataset: Dataset, stats: Statistics, files: Files, settings: Settings, stamp: Stamp
) -> Graph:
    """DCAT-AP 3 catalog: hand-written parts plus distributions, temporal coverage, the
    release's dates and version, and the deployment's contact point."""
    base = settings.base_iri
    work = copy_graph(parts)
    catalog = URIRef(base + CATALOG)
    main = URIRef(base + MAIN_DATASET + settings.city_key)
    for node, cls in ((catalog, DCAT.Catalog), (main, DCAT.Dataset)):
        if (node, RDF.type, cls) not in work:
            raise CatalogError(f"catalog/*.ttl must describe <{node}> as a <{cls}>")
    graph_names = {str(g)[len(base + "graph/") :] for g in stats.graphs if str(g).startswith(base + "graph/")}
    kept = []
    for ds in sorted(set(work.subjects(RDF.type, DCAT.Dataset))):
        name = str(ds)[len(base + "dataset/") :] if str(ds).startswith(base + "dataset/") else None
        if ds == main or name in graph_names:
            kept.append(ds)
        else:  # a dataset for a graph this release does not hold
            work.remove((ds, None, None))
            work.remove((None, None, ds))
    for ds in kept:
        _add_temporal(work, dataset, ds, base, settings.vocabulary)
    for node in (catalog, *kept):
        _add_stamp(work, node, stamp)
    _set_contact(work, URIRef(base + CONTACT), settings)
    for name in sorted(files):
        _add_distribution(work, main, name, files[name], base)
    return reachable(work, catalog, stop={URIRef(base + VOID_ROOT)})


def _add_stamp(work: Graph, node: URIRef, stamp: Stamp) -> None:
    """The release's date as issue and modification date (DCAT 3 §11: a version's release
    date is its dct:issued), and its content version as dcat:version."""
    when = Literal(stamp.date, datatype=XSD.dateTime)
    work.add((node, DCTERMS.issued, when))
    work.add((node, DCTERMS.modified, when))
    work.add((node, DCAT.version, Literal(stamp.version)))


def _set_contact(work: Graph, contact: URIRef, settings: Settings) -> None:
    """The deployment's contact (settings) replaces the default's name, e-mail and web page."""
    if (contact, RDF.type, VCARD.Kind) not in work:
        raise CatalogError(f"catalog/*.ttl must describe the contact point <{contact}> "
                               "as a vcard:Kind")
    if settings.contact_name is not None:
        work.set((contact, VCARD.fn, Literal(settings.contact_name.strip())))
    if settings.contact_email is not None:
        work.set((contact, VCARD.hasEmail, URIRef("mailto:" + settings.contact_email)))
    if settings.contact_url is not None:
        work.set((contact, VCARD.hasURL, URIRef(settings.contact_url)))


def _add_temporal(work: Graph, dataset: Dataset, ds: URIRef, base: str, vocabulary: str) -> None:
    """dct:temporal from the earliest tw:startDate in the dataset's graph, unless hand-written."""
    if (ds, DCTERMS.temporal, None) in work:
        return
    graph_iri = URIRef(base + "graph/" + str(ds).rsplit("/", 1)[-1])
    found = dataset.graph(graph_iri).objects(None, tw(vocabulary).startDate)
    starts = [o for o in found if isinstance(o, Literal)]
    if not starts:
        return
    # Lexical order is chronological for the xsd:gYear/gYearMonth/date values the data uses.
    earliest = min(starts, key=lambda lit: (str(lit), str(lit.datatype)))
    period = URIRef(f"{ds}#temporal")
    work.add((ds, DCTERMS.temporal, period))
    work.add((period, RDF.type, DCTERMS.PeriodOfTime))
    work.add((period, DCAT.startDate, earliest))


def distribution_key(file_name: str) -> str:
    """`twinning-kg.ttl.gz` -> `ttl-gz` (the distribution's IRI is `{base}distribution/<key>`)."""
    stem = DUMP_STEM + "."
    if not file_name.startswith(stem) or "/" in file_name:
        raise CatalogError(f"{file_name}: dump names must look like {stem}<ext>[.gz]")
    return file_name[len(stem) :].replace(".", "-")


def _add_distribution(work: Graph, main: URIRef, name: str, info: Mapping[str, Any], base: str) -> None:
    dist = URIRef(base + "distribution/" + distribution_key(name))
    if (dist, RDF.type, DCAT.Distribution) not in work:
        raise CatalogError(
            f"catalog/distributions.ttl has no <distribution/{distribution_key(name)}> "
            f"for the dump {name}; add its title, media type and format there"
        )
    media = URIRef(IANA_MEDIA_TYPES + str(info["media_type"]).split(";")[0].strip())
    stated = work.value(dist, DCAT.compressFormat if name.endswith(".gz") else DCAT.mediaType)
    if stated != media:
        raise CatalogError(
            f"{name}: the build wrote it as {info['media_type']}, but catalog/distributions.ttl "
            f"states {stated} for <distribution/{distribution_key(name)}>"
        )
    url = URIRef(base + "dumps/" + name)
    checksum = URIRef(f"{dist}#sha256")
    work.add((main, DCAT.distribution, dist))
    for prop in (DCAT.accessURL, DCAT.downloadURL):
        work.add((dist, prop, url))
    work.add((url, RDF.type, RDFS.Resource))  # the DCAT-AP shapes want the range typed
    work.add((dist, DCAT.byteSize, Literal(int(info["bytes"]), datatype=XSD.nonNegativeInteger)))
    work.add((dist, SPDX.checksum, checksum))
    work.add((checksum, RDF.type, SPDX.Checksum))
    work.add((checksum, SPDX.algorithm, SHA256))
    work.add((checksum, SPDX.checksumValue, Literal(str(info["sha256"]).lower(), datatype=XSD.hexBinary)))
