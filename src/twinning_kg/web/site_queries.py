"""What the site's own pages read, always through the query engine.

Every read goes through `ctx.engine.execute` (N-Triples for graphs, SPARQL JSON for
tables), never through a local rdflib graph, so the same pages work over a remote store.
The queries run in the engine's site lane and in canonical IRIs (the pages map them to
the public base themselves, `AppContext.public`). Things that only change with the
release (the ontology, the landing page's counts, the catalog) are computed once per
release (`AppContext.memo`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, FOAF, RDF, RDFS, SKOS
from rdflib.term import Node

from twinning_kg.query.engine import QueryRequest
from twinning_kg.vocab import GEO, SCHEMA
from twinning_kg.web.context import AppContext

NTRIPLES = "application/n-triples"
SPARQL_JSON = "application/sparql-results+json"
LABEL_PROPS = (RDFS.label, SKOS.prefLabel, FOAF.name, SCHEMA.name, DCTERMS.title)
INCOMING_LIMIT = 1000
# Characters that may not appear in an IRIREF (SPARQL 1.1 §19.8): refuse rather than escape.
_BAD_IRI = re.compile(r'[\x00-\x20<>"{}|^`\\]')


class UnsafeIri(ValueError):
    """A requested path that cannot be an IRI we hold."""


def iri_ref(iri: str) -> str:
    """`<iri>` for a SPARQL query; refuses characters that would break out of the IRIREF."""
    if not iri or _BAD_IRI.search(iri):
        raise UnsafeIri(iri)
    return f"<{iri}>"


def tw(ctx: AppContext, term: str) -> URIRef:
    return URIRef(f"{ctx.vocabulary}ontology#{term}")


def values_in(props: Iterable[Node]) -> str:
    """`<a>, <b>`: the list of an `IN (…)` filter."""
    return ", ".join(f"<{p}>" for p in props)


# ------------------------------------------------------------------ engine access


async def construct(ctx: AppContext, query: str) -> Graph:
    """Run a CONSTRUCT/DESCRIBE and parse the N-Triples answer."""
    result = await ctx.engine.execute(QueryRequest(query=query, accept=NTRIPLES))
    graph = Graph()
    if result.body:
        graph.parse(data=result.body.decode("utf-8"), format="nt")
    return graph


def _term(binding: dict[str, Any]) -> Node:
    kind, value = binding.get("type"), binding.get("value", "")
    if kind == "uri":
        return URIRef(value)
    if kind == "bnode":
        return BNode(value)
    lang, datatype = binding.get("xml:lang"), binding.get("datatype")
    return Literal(value, lang=lang or None, datatype=URIRef(datatype) if datatype and not lang else None)


async def select(ctx: AppContext, query: str) -> list[dict[str, Node]]:
    """Run a SELECT and return its rows as rdflib terms."""
    result = await ctx.engine.execute(QueryRequest(query=query, accept=SPARQL_JSON))
    data = json.loads(result.body)
    return [{k: _term(v) for k, v in row.items()} for row in data.get("results", {}).get("bindings", [])]


async def ask(ctx: AppContext, query: str) -> bool:
    result = await ctx.engine.execute(QueryRequest(query=query, accept=SPARQL_JSON))
    return bool(json.loads(result.body).get("boolean"))


async def holds(ctx: AppContext, iri: str) -> bool:
    """Do we hold `iri`, i.e. is it the subject of a triple in the store?"""
    return await ask(ctx, f"ASK {{ {iri_ref(iri)} ?p ?o }}")


# ------------------------------------------------------------------ descriptions


def description_query(iri: str, incoming_limit: int = INCOMING_LIMIT) -> str:
    """The RDF document about `iri`: its triples, triples pointing at it, labels of both ends.

    Blank nodes hanging off the resource come with their own triples (one level), so the
    document is self-contained. Incoming links are capped (a concept used by every imported
    partnership would otherwise flood the page); no ORDER BY, which costs seconds at world
    scale; the read-only store answers in the same order every time.
    """
    r = iri_ref(iri)
    labels = values_in(LABEL_PROPS)
    return f"""CONSTRUCT {{ ?s ?p ?o }} WHERE {{
  {{ BIND({r} AS ?s) {r} ?p ?o }}
  UNION {{ {{ SELECT ?s ?p ?o WHERE {{ ?s ?p {r} BIND({r} AS ?o) }}
             LIMIT {incoming_limit} }} }}
  UNION {{ {r} ?q ?s . ?s ?p ?o . FILTER(isBlank(?s) || ?p IN ({labels})) }}
  UNION {{ {{ SELECT DISTINCT ?s WHERE {{ ?s ?q {r} }} LIMIT {incoming_limit} }}
           ?s ?p ?o . FILTER(?p IN ({labels})) }}
}}"""


async def describe(ctx: AppContext, iri: str) -> Graph:
    """The dereferenced document's triples, in canonical IRIs."""
    return await construct(ctx, description_query(iri))


def neighbourhood_query(ctx: AppContext, iri: str) -> str:
    """Two hops of summaries for the HTML view: partnerships of a place, partners' positions,
    sources' URLs and publishers, concepts' labels. Not part of the RDF document."""
    r = iri_ref(iri)
    summary = values_in(
        [
            *LABEL_PROPS,
            RDF.type,
            SCHEMA.url,
            GEO.lat,
            GEO.long,
            DCTERMS.publisher,
            DCTERMS.description,
            SKOS.inScheme,
            *(
                tw(ctx, term)
                for term in (
                    "partner",
                    "kind",
                    "status",
                    "statusSince",
                    "startDate",
                    "startPrecision",
                    "endDate",
                    "endPrecision",
                    "reliability",
                    "country",
                )
            ),
        ]
    )
    short = values_in([*LABEL_PROPS, GEO.lat, GEO.long, SCHEMA.url])
    return f"""CONSTRUCT {{ ?s ?p ?o }} WHERE {{
  {{ {r} ?q ?s . FILTER(!isLiteral(?s)) ?s ?p ?o . FILTER(?p IN ({summary})) }}
  UNION {{ {{ SELECT DISTINCT ?s WHERE {{ ?s ?q {r} }} LIMIT 200 }}
           ?s ?p ?o . FILTER(?p IN ({summary})) }}
  UNION {{ {{ SELECT DISTINCT ?n WHERE {{ ?n ?q {r} }} LIMIT 200 }}
           ?n ?q2 ?s . FILTER(!isLiteral(?s)) ?s ?p ?o . FILTER(?p IN ({short})) }}
  UNION {{ {r} ?q ?n . FILTER(!isLiteral(?n)) ?n ?q2 ?s . FILTER(!isLiteral(?s)) ?s ?p ?o .
           FILTER(?p IN ({short})) }}
}}"""


async def neighbourhood(ctx: AppContext, iri: str) -> Graph:
    return await construct(ctx, neighbourhood_query(ctx, iri))


# ------------------------------------------------------------------ once per release


async def ontology_graph(ctx: AppContext) -> Graph:
    """The ontology graph `{base}graph/ontology`, queried once per release."""
    g = iri_ref(f"{ctx.base_iri}graph/ontology")
    query = f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH {g} {{ ?s ?p ?o }} }}"
    return await ctx.memo_async("ontology", lambda: construct(ctx, query))


def catalog_graph(ctx: AppContext) -> Graph:
    """The release's DCAT catalog (`catalog.ttl`) if the build wrote one; empty otherwise."""

    def read() -> Graph:
        graph = Graph()
        path = ctx.release.file("catalog.ttl")
        if path.is_file():
            try:
                graph.parse(path, format="turtle")
            except Exception:  # noqa: BLE001 - a broken catalog must not break the landing page
                graph = Graph()
        return graph

    return ctx.memo("catalog graph", read)


def count_queries(ctx: AppContext) -> dict[str, str]:
    """The SPARQL COUNTs behind the landing page's numbers (also used by the tests)."""
    place, partnership, source = (f"<{tw(ctx, t)}>" for t in ("Place", "Partnership", "Source"))
    return {
        "places": f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ ?x a ?c . ?c <{RDFS.subClassOf}>* {place} }}",
        "partnerships": f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ ?x a {partnership} }}",
        "sources": f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ ?x a {source} }}",
        "triples": "SELECT (COUNT(*) AS ?n) WHERE { SELECT DISTINCT ?s ?p ?o WHERE { ?s ?p ?o } }",
    }


async def counts(ctx: AppContext) -> dict[str, int]:
    async def count() -> dict[str, int]:
        out = {}
        for name, query in count_queries(ctx).items():
            rows = await select(ctx, query)
            out[name] = int(rows[0]["n"].toPython()) if rows and "n" in rows[0] else 0
        return out

    return await ctx.memo_async("counts", count)
