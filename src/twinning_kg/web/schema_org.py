"""schema.org markup for search engines: JSON-LD `<script>` blocks built as data.

One job: turn what the release says (its DCAT catalog, its manifest, the graph read
through the engine) into schema.org JSON-LD, never facts written here. The landing page
carries the `Dataset` Google's Dataset Search reads; every resource page an `ItemPage`
whose `mainEntity` is the thing it describes, typed with the schema.org class the
ontology names (`rdfs:subClassOf schema:…`), else the one `site.toml` names for classes
outside the ontology (docs/publication.md#search-engines-sitemap-robotstxt-schemaorg).

Text values are plain strings in the page's language, not language maps: Google's
Dataset documentation shows only plain `Text` for `name` and `description`, and its
structured-data guidelines ask the markup to describe the page it is on; each language
of a page is its own URL (`?lang=de|en`), so each carries its own language's text.

`script()` serializes with `<`, `>` and `&` escaped as JSON `\\u` escapes, so no value
(a label, a quote from a source) can close the `<script>` element or open a comment.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urljoin

from markupsafe import Markup
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, FOAF, OWL, RDF, RDFS, SKOS
from rdflib.term import Node

from twinning_kg.vocab import DCAT, GEO, SCHEMA, SPDX
from twinning_kg.web.labels import pick
from twinning_kg.web.site_queries import LABEL_PROPS

CONTEXT = "https://schema.org"
SCHEMA_NS = str(SCHEMA)
# The EU access-right value that means: open to everyone (DCAT-AP's controlled vocabulary).
PUBLIC_ACCESS = URIRef("http://publications.europa.eu/resource/authority/access-right/PUBLIC")
DESCRIPTION_PROPS = (DCTERMS.description, SKOS.definition, RDFS.comment)
Public = Callable[[str], str]


def script(data: Mapping[str, Any]) -> Markup:
    """`data` as the body of a `<script type="application/ld+json">` element."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=False)
    for char, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        text = text.replace(char, escape)
    return Markup(text)


# ------------------------------------------------------------------ helpers


def text(graph: Graph, node: Node, props: Iterable[URIRef], lang: str) -> str | None:
    """The first property's value in `lang` (else English, German, untagged, any)."""
    for prop in props:
        best = pick([o for o in graph.objects(node, prop) if isinstance(o, Literal)], lang)
        if best is not None:
            return str(best)
    return None


def _compact(data: dict[str, Any]) -> dict[str, Any]:
    """Drop empty values: schema.org has no use for `null` or `[]`."""
    return {k: v for k, v in data.items() if v not in (None, [], {}, "")}


def _one_or_many(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else values


def schema_types(
    node: Node, graph: Graph, ontology: Graph, fallback: Mapping[str, str]
) -> list[str]:
    """The most specific schema.org types of `node`: its own `schema:` types, else those
    its classes reach through `rdfs:subClassOf` in the fewest steps, else `fallback`'s
    (class IRI -> schema.org type) for a class on the way, else `Thing`."""
    level = set(graph.objects(node, RDF.type))
    seen: set[Node] = set()
    while level:
        found = sorted(str(c)[len(SCHEMA_NS) :] for c in level if str(c).startswith(SCHEMA_NS))
        if found:
            return found
        mapped = sorted({fallback[str(c)] for c in level if str(c) in fallback})
        if mapped:
            return mapped
        seen |= level
        level = {s for c in level for s in ontology.objects(c, RDFS.subClassOf)} - seen
    return ["Thing"]


def fallback_types(settings: Mapping[str, Any], base_iri: str) -> dict[str, str]:
    """site.toml's `[schema_org.types]`, its keys resolved against the base IRI."""
    table = settings.get("schema_org", {}).get("types", {})
    return {urljoin(base_iri, key): value for key, value in table.items()}


def geo(graph: Graph, node: Node) -> dict[str, Any] | None:
    lat, lon = graph.value(node, GEO.lat), graph.value(node, GEO.long)
    try:
        return {"@type": "GeoCoordinates", "latitude": float(lat), "longitude": float(lon)}
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------ things


def thing(
    node: URIRef,
    graph: Graph,
    ontology: Graph,
    lang: str,
    public: Public,
    fallback: Mapping[str, str],
    *,
    tw: str,
    name: str | None = None,
) -> dict[str, Any]:
    """A resource as schema.org: type, IRI, name (in `lang`; `name` when the page names it
    otherwise, e.g. a resource without a label), other names, description, `sameAs`, and
    what its kind has (a place's `geo` and country; a source's `url`, publisher and
    language; a concept's term set)."""
    name = text(graph, node, LABEL_PROPS, lang) or name
    others = sorted(
        {str(o) for p in LABEL_PROPS for o in graph.objects(node, p) if isinstance(o, Literal)} - {name}
    )
    types = schema_types(node, graph, ontology, fallback)
    data: dict[str, Any] = {
        "@type": _one_or_many(types),
        "@id": public(str(node)),
        "name": name,
        "alternateName": others,
        "description": text(graph, node, DESCRIPTION_PROPS, lang),
        "identifier": text(graph, node, (SCHEMA.identifier,), lang),
        "sameAs": sorted(str(o) for o in graph.objects(node, OWL.sameAs) if isinstance(o, URIRef)),
        "geo": geo(graph, node),
        "url": _iri(graph.value(node, SCHEMA.url)),
    }
    country = graph.value(node, URIRef(tw + "country"))
    if country is not None:
        data["containedInPlace"] = reference(country, graph, ontology, lang, public, fallback)
    publisher = graph.value(node, DCTERMS.publisher)
    if publisher is not None:
        data["publisher"] = _compact(
            {"@type": "Organization", "@id": public(str(publisher)),
             "name": text(graph, publisher, (FOAF.name, *LABEL_PROPS), lang)}
        )
    language = graph.value(node, DCTERMS.language)
    if isinstance(language, Literal):
        data["inLanguage"] = str(language)
    scheme = graph.value(node, SKOS.inScheme)
    if scheme is not None:
        data["inDefinedTermSet"] = reference(scheme, graph, ontology, lang, public, fallback)
    terms = sorted(public(str(c)) for c in graph.subjects(SKOS.inScheme, node))
    if terms:
        data["hasDefinedTerm"] = [{"@id": t} for t in terms]
    return _compact(data)


def reference(
    node: Node, graph: Graph, ontology: Graph, lang: str, public: Public, fallback: Mapping[str, str]
) -> dict[str, Any]:
    """A short mention of another resource: type (when known), IRI, name, coordinates."""
    known = (node, RDF.type, None) in graph
    return _compact(
        {
            "@type": _one_or_many(schema_types(node, graph, ontology, fallback)) if known else None,
            "@id": public(str(node)),
            "name": text(graph, node, LABEL_PROPS, lang),
            "sameAs": sorted(str(o) for o in graph.objects(node, OWL.sameAs) if isinstance(o, URIRef)),
            "geo": geo(graph, node),
            "url": _iri(graph.value(node, SCHEMA.url)),
        }
    )


def _iri(node: Node | None) -> str | None:
    return str(node) if isinstance(node, URIRef) else None


def item_page(
    page_url: str,
    lang: str,
    main: dict[str, Any],
    *,
    site: dict[str, Any],
    mentions: Sequence[dict[str, Any]] = (),
    citations: Sequence[dict[str, Any]] = (),
    temporal: str | None = None,
) -> dict[str, Any]:
    """A resource page: about `main`, mentioning other resources (a partnership's two
    places), citing the sources its statements rest on, over the period `temporal`."""
    return _compact(
        {
            "@context": CONTEXT,
            "@type": "ItemPage",
            "@id": page_url,
            "url": page_url,
            "name": main.get("name"),
            "inLanguage": lang,
            "isPartOf": site,
            "mainEntity": main,
            "mentions": list(mentions),
            "citation": list(citations),
            "temporalCoverage": temporal,
        }
    )


def term_set(
    iri: str, lang: str, name: str | None, description: str | None, terms: list[dict[str, Any]]
) -> dict[str, Any]:
    """The ontology page: the vocabulary as a `DefinedTermSet` of its classes, properties,
    individuals and datatypes (`terms`: `@id`, `name`, `description`, `termCode`)."""
    return _compact(
        {
            "@context": CONTEXT,
            "@type": "DefinedTermSet",
            "@id": iri,
            "url": iri,
            "name": name,
            "description": description,
            "inLanguage": lang,
            "hasDefinedTerm": [_compact({"@type": "DefinedTerm", **t}) for t in terms],
        }
    )


def interval(start: Literal | None, end: Literal | None) -> str | None:
    """An ISO 8601 interval as schema.org writes it: `1952/..` when open-ended."""
    if start is None:
        return None
    return f"{start}/{end if end is not None else '..'}"


# ------------------------------------------------------------------ the dataset


def dataset(
    catalog: Graph,
    node: URIRef,
    lang: str,
    public: Public,
    *,
    page_url: str,
    media_types: Mapping[str, str],
    places: Mapping[str, dict[str, Any]],
) -> dict[str, Any]:
    """The schema.org `Dataset` of the catalog's dataset `node` (canonical IRIs).

    `media_types`: served file name -> the Content-Type it is served with (the manifest's);
    `places`: our places among its `dct:spatial`, as `thing()` describes them from the
    graph (with their Wikidata and GeoNames links); the other spatial IRIs (GeoNames, the
    municipality key) are added to their `sameAs`.
    """
    catalog_node = next(iter(sorted(catalog.subjects(DCAT.dataset, node))), None)
    publisher = catalog.value(node, DCTERMS.publisher)
    organisation = (
        _compact(
            {
                "@type": "Organization",
                "@id": public(str(publisher)),
                "name": text(catalog, publisher, (FOAF.name, *LABEL_PROPS), lang),
                "url": _public_iri(catalog.value(publisher, FOAF.homepage), public),
            }
        )
        if publisher is not None
        else None
    )
    distributions = sorted(catalog.objects(node, DCAT.distribution), key=str)
    period = catalog.value(node, DCTERMS.temporal)
    return _compact(
        {
            "@context": CONTEXT,
            "@type": "Dataset",
            "@id": public(str(node)),
            "url": page_url,
            "name": text(catalog, node, (DCTERMS.title,), lang),
            "description": text(catalog, node, (DCTERMS.description,), lang),
            "inLanguage": sorted({o.language for o in catalog.objects(node, DCTERMS.title) if o.language}),
            "keywords": _keywords(catalog, node, lang),
            "license": _licences(catalog, distributions),
            "creator": organisation,
            "publisher": organisation,
            "isAccessibleForFree": (node, DCTERMS.accessRights, PUBLIC_ACCESS) in catalog or None,
            "version": text(catalog, node, (DCAT.version,), lang),
            "datePublished": text(catalog, node, (DCTERMS.issued,), lang),
            "dateModified": text(catalog, node, (DCTERMS.modified,), lang),
            "spatialCoverage": _spatial(catalog, node, lang, public, places),
            "temporalCoverage": interval(
                catalog.value(period, DCAT.startDate), catalog.value(period, DCAT.endDate)
            )
            if period is not None
            else None,
            "includedInDataCatalog": _compact(
                {
                    "@type": "DataCatalog",
                    "@id": public(str(catalog_node)),
                    "url": public(str(catalog_node)),
                    "name": text(catalog, catalog_node, (DCTERMS.title,), lang),
                }
            )
            if catalog_node is not None
            else None,
            "distribution": [
                d for d in (_download(catalog, x, lang, public, media_types) for x in distributions) if d
            ],
        }
    )


def _public_iri(node: Node | None, public: Public) -> str | None:
    return public(str(node)) if isinstance(node, URIRef) else None


def _keywords(catalog: Graph, node: URIRef, lang: str) -> list[str]:
    words = [o for o in catalog.objects(node, DCAT.keyword) if isinstance(o, Literal)]
    mine = sorted(str(o) for o in words if o.language == lang)
    return mine or sorted({str(o) for o in words})


def _licences(catalog: Graph, distributions: list[Node]) -> Any:
    """The distributions' licences, each as the deed the catalog links it to (`rdfs:seeAlso`,
    the Creative Commons page search engines recognise), else its own IRI."""
    licences = {catalog.value(d, DCTERMS.license) for d in distributions} - {None}
    deeds = sorted({_deed(catalog, lic) for lic in licences} - {None})
    return _one_or_many(deeds) if deeds else None


def _deed(catalog: Graph, licence: Node | None) -> str | None:
    if licence is None:
        return None
    return str(catalog.value(licence, RDFS.seeAlso) or licence)


def _spatial(
    catalog: Graph, node: URIRef, lang: str, public: Public, places: Mapping[str, dict[str, Any]]
) -> Any:
    spatial = sorted(catalog.objects(node, DCTERMS.spatial), key=str)
    others = [str(s) for s in spatial if str(s) not in places]
    out = []
    for iri in sorted(places):
        place = dict(places[iri])
        place["sameAs"] = sorted(set(place.get("sameAs", [])) | set(others))
        out.append(place)
    if not out and spatial:  # no place of ours named: one Place, known by the IRIs given
        out.append(
            _compact(
                {
                    "@type": "Place",
                    "name": next((text(catalog, s, LABEL_PROPS, lang) for s in spatial), None),
                    "sameAs": others,
                }
            )
        )
    return _one_or_many(out) if out else None


def _download(
    catalog: Graph, dist: Node, lang: str, public: Public, media_types: Mapping[str, str]
) -> dict[str, Any] | None:
    """A dump as a `DataDownload`; None for a distribution that is not a file (the SPARQL graph)."""
    url = catalog.value(dist, DCAT.downloadURL)
    if url is None:
        return None
    name = str(url).rsplit("/", 1)[-1]
    size = catalog.value(dist, DCAT.byteSize)
    checksum = catalog.value(dist, SPDX.checksum)
    sha256 = catalog.value(checksum, SPDX.checksumValue) if checksum is not None else None
    return _compact(
        {
            "@type": "DataDownload",
            "@id": public(str(dist)),
            "name": text(catalog, dist, (DCTERMS.title,), lang),
            "contentUrl": public(str(url)),
            "encodingFormat": media_types.get(name),
            # schema.org: "File size in (mega/kilo) bytes": exact, with its unit
            "contentSize": f"{int(size)} B" if size is not None else None,
            "sha256": str(sha256) if sha256 is not None else None,
            "license": _deed(catalog, catalog.value(dist, DCTERMS.license)),
        }
    )
