"""`/ontology`: the vocabulary as a page and in every RDF syntax; `/ontology/{version}`.

The ontology uses a hash namespace (`{base}ontology#Term`), so the document answers at
its own IRI without a 303 (Cool URIs §4.2), negotiated like every resource (docs/web.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rdflib import Literal, URIRef
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS, SKOS
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from twinning_kg.query.negotiation import NegotiationError
from twinning_kg.web import schema_org, site_queries
from twinning_kg.web.context import AppContext, context
from twinning_kg.web.i18n import Strings
from twinning_kg.web.labels import Labeller, Link, pick
from twinning_kg.web.rendering import language, render
from twinning_kg.web.responses import (
    RDF_PAGE,
    VARY,
    engine_failed,
    negotiate,
    negotiation_failed,
    not_found,
    rdf,
)
from twinning_kg.web.site_queries import LABEL_PROPS, values_in
from twinning_kg.web.views.resources import kept_query, with_prefixes


async def ontology(request: Request) -> Response:
    ctx = context(request)
    try:
        offer = negotiate(request, RDF_PAGE)
    except NegotiationError as exc:
        return negotiation_failed(request, exc)
    headers = {"Content-Location": f"/ontology?format={offer.key}"}
    try:
        if offer.key != "html":
            graph = await site_queries.ontology_graph(ctx)
            return rdf(ctx.localize(with_prefixes(ctx, graph)), offer, headers)
        lang = language(request)
        view = await ontology_view(ctx, lang)
    except Exception as exc:  # noqa: BLE001 - any engine failure is a 503 page
        return engine_failed(request, exc)
    return render(
        request,
        "ontology.html",
        lang=lang,
        headers=headers,
        onto=view,
        formats=[o for o in RDF_PAGE if o.key != "html"],
        title=view["title"] or Strings(lang).ontology,
        json_ld=schema_org.script(term_set(ctx, view, lang)),
    )


def term_set(ctx: AppContext, view: dict[str, Any], lang: str) -> dict[str, Any]:
    """schema.org for the ontology page: the terms it documents, named as the page names them."""
    terms = [
        {
            "@id": t.iri,
            "name": t.labels.get(lang) or t.labels.get("en") or t.anchor,
            "description": t.comments.get(lang) or t.comments.get("en"),
            "termCode": t.anchor,
        }
        for kind in ("classes", "properties", "individuals", "datatypes")
        for t in view[kind]
    ]
    return schema_org.term_set(
        ctx.public(f"{ctx.base_iri}ontology"), lang, view["title"], view["description"], terms
    )


async def ontology_version(request: Request) -> Response:
    """The owl:versionIRI of the ontology: the current version is the document at /ontology
    (303 there, format and language kept); earlier versions are not kept online (404)."""
    ctx = context(request)
    version = request.path_params["version"]
    try:
        graph = await site_queries.ontology_graph(ctx)
    except Exception as exc:  # noqa: BLE001
        return engine_failed(request, exc)
    current = graph.value(URIRef(f"{ctx.base_iri}ontology"), OWL.versionIRI)
    wanted = f"{ctx.base_iri}ontology/{version}"
    if current is None or str(current) != wanted:
        return not_found(request, ctx.public(wanted))
    target = (ctx.public_base if ctx.settings.base_url else "/") + "ontology" + kept_query(request)
    return RedirectResponse(target, status_code=303, headers={"Vary": VARY})


@dataclass
class Term:
    iri: str
    anchor: str
    labels: dict[str, str]
    comments: dict[str, str]
    facts: list[tuple[str, list[Link]]]


async def ontology_view(ctx: AppContext, lang: str) -> dict[str, Any]:
    """Classes, properties, individuals and concept schemes, with their de/en labels and comments."""
    onto = await site_queries.ontology_graph(ctx)
    schemes_graph = await site_queries.construct(
        ctx,
        f"""CONSTRUCT {{ ?s ?p ?o }} WHERE {{
  {{ ?s a <{SKOS.ConceptScheme}> . ?s ?p ?o .
     FILTER(?p IN ({values_in([*LABEL_PROPS, RDF.type, SKOS.definition])})) }}
  UNION {{ ?s <{SKOS.inScheme}> ?x . ?s ?p ?o .
           FILTER(?p IN ({values_in([*LABEL_PROPS, SKOS.inScheme, SKOS.definition, RDF.type])})) }}
}}""",
    )
    labeller = Labeller(ctx, lang, onto, schemes_graph)
    ns = f"{ctx.vocabulary}ontology#"

    def local(link: Link) -> Link:
        """Terms of this ontology link to their anchor on this very page."""
        if link.iri.startswith(ns):
            link.href = "#" + link.iri[len(ns) :]
        return link

    def term(node: URIRef, fact_props: list[tuple[str, URIRef]]) -> Term:
        def by_lang(prop: URIRef) -> dict[str, str]:
            return {o.language or "": str(o) for o in onto.objects(node, prop) if isinstance(o, Literal)}

        facts = []
        for key, prop in fact_props:
            objects = sorted((o for o in onto.objects(node, prop) if isinstance(o, URIRef)), key=str)
            links = [local(labeller.link(o)) for o in objects]
            if links:
                facts.append((key, links))
        return Term(
            iri=ctx.public(str(node)),
            anchor=str(node)[len(ns) :],
            labels=by_lang(RDFS.label),
            comments=by_lang(RDFS.comment),
            facts=facts,
        )

    def ours(kinds: Iterable[URIRef]) -> list[URIRef]:
        found = {
            s
            for k in kinds
            for s in onto.subjects(RDF.type, k)
            if isinstance(s, URIRef) and str(s).startswith(ns)
        }
        return sorted(found, key=str)

    classes = [term(c, [("subclass_of", RDFS.subClassOf)]) for c in ours([OWL.Class, RDFS.Class])]
    property_kinds = [
        OWL.ObjectProperty,
        OWL.DatatypeProperty,
        OWL.AnnotationProperty,
        RDF.Property,
        OWL.SymmetricProperty,
        OWL.FunctionalProperty,
    ]
    props = [
        term(p, [("subproperty_of", RDFS.subPropertyOf), ("domain", RDFS.domain), ("range", RDFS.range)])
        for p in ours(property_kinds)
    ]
    individuals = [term(i, [("types", RDF.type)]) for i in ours([OWL.NamedIndividual])]
    datatypes = [term(d, []) for d in ours([RDFS.Datatype])]
    schemes = []
    for scheme in sorted(schemes_graph.subjects(RDF.type, SKOS.ConceptScheme), key=str):
        concepts = sorted(
            (labeller.link(c) for c in schemes_graph.subjects(SKOS.inScheme, scheme)),
            key=lambda link: link.text,
        )
        schemes.append({"link": labeller.link(scheme), "concepts": concepts})
    node = URIRef(f"{ctx.base_iri}ontology")
    title = pick([o for o in onto.objects(node, DCTERMS.title) if isinstance(o, Literal)], lang)
    desc = pick([o for o in onto.objects(node, DCTERMS.description) if isinstance(o, Literal)], lang)
    return {
        "title": str(title) if title is not None else None,
        "description": str(desc) if desc is not None else None,
        "classes": classes,
        "properties": props,
        "individuals": individuals,
        "datatypes": datatypes,
        "schemes": schemes,
        "namespace": ctx.public(ns),
    }
