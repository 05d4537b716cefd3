"""Which serialisation a SPARQL result gets: pyoxigraph's formats by media type.

Kept apart from the engine so the worker processes, a remote engine and the web layer
agree on one table. Formats are named by pyoxigraph's enum member names (`JSON`,
`TURTLE`, ...) so this module stays importable without pyoxigraph. The choice itself is
made by the one negotiation policy of the server (`query.negotiation`, docs/web.md):
highest q, the more specific match, then the order of the tables below; nothing
acceptable is a 406 listing what the query's form can be written as.

The first entry of each table is what `*/*` and a missing Accept get: the SPARQL 1.1
Protocol (§2.1) names "a SPARQL Results Document in XML, JSON, or CSV/TSV format" for
SELECT/ASK, and "an RDF graph ... serialized, for example, in the RDF/XML syntax" for
CONSTRUCT/DESCRIBE; we answer SPARQL XML results and RDF/XML, the formats the protocol
names first (and what rdflib-endpoint does), and fall back to Turtle when a graph the
client did not ask for by name cannot be written as RDF/XML (predicates without an XML
QName).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from twinning_kg.query.negotiation import KEY_ALIASES, SUBTYPE_WILDCARD, Offer, not_acceptable, ranked

# media type -> pyoxigraph QueryResultsFormat member, in our order of preference.
SOLUTION_FORMATS: dict[str, str] = {
    "application/sparql-results+xml": "XML",
    "application/sparql-results+json": "JSON",
    "text/csv": "CSV",
    "text/tab-separated-values": "TSV",
    "application/json": "JSON",
    "application/xml": "XML",
    "text/xml": "XML",
}
# CSV/TSV have no boolean form (SPARQL 1.1 CSV/TSV results §1), so ASK offers XML/JSON.
BOOLEAN_FORMATS: dict[str, str] = {k: v for k, v in SOLUTION_FORMATS.items() if v in ("XML", "JSON")}
# media type -> pyoxigraph RdfFormat member.
GRAPH_FORMATS: dict[str, str] = {
    "application/rdf+xml": "RDF_XML",
    "text/turtle": "TURTLE",
    "application/n-triples": "N_TRIPLES",
    "application/ld+json": "JSON_LD",
    "application/x-turtle": "TURTLE",
    "text/plain": "N_TRIPLES",
    "application/n-quads": "N_QUADS",
    "application/trig": "TRIG",
    "text/n3": "N3",
    "application/json": "JSON_LD",
    "application/xml": "RDF_XML",
    "text/xml": "RDF_XML",
}
# `?format=` values, one vocabulary for the whole site (docs/web.md).
FORMAT_KEYS: dict[str, str] = {
    "application/sparql-results+xml": "xml",
    "application/sparql-results+json": "json",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
    "application/rdf+xml": "rdf",
    "text/turtle": "ttl",
    "application/n-triples": "nt",
    "application/ld+json": "jsonld",
    "application/n-quads": "nq",
    "application/trig": "trig",
}
# `xml` and `json` name a family: the results format for SELECT and ASK, its graph
# sibling for CONSTRUCT and DESCRIBE (what SPARQLWrapper means by them).
_FAMILIES = {
    "xml": "application/sparql-results+xml, application/rdf+xml;q=0.9",
    "json": "application/sparql-results+json, application/ld+json;q=0.9",
}


def accept_for_key(key: str) -> str | None:
    """The Accept a `?format=` value of /sparql stands for (our keys and the aliases other
    clients send, `negotiation.KEY_ALIASES`); None when it names no format we write."""
    if key in _FAMILIES:
        return _FAMILIES[key]
    by_key = {k: media for media, k in FORMAT_KEYS.items()}
    for candidate in (key, *KEY_ALIASES.get(key.lower(), ())):
        if candidate in by_key:
            return by_key[candidate]
    return None


DEFAULT_MEDIA_TYPE = {
    "SELECT": "application/sparql-results+xml",
    "ASK": "application/sparql-results+xml",
    "CONSTRUCT": "application/rdf+xml",
    "DESCRIBE": "application/rdf+xml",
}
FALLBACK_GRAPH_MEDIA_TYPE = "text/turtle"


@dataclass(frozen=True)
class Choice:
    """The negotiated representation: `media_type` for the response, `format` for pyoxigraph."""

    media_type: str
    format: str
    explicit: bool  # False when only `*/*` (or no Accept) reached it: the client accepts anything

    @property
    def content_type(self) -> str:
        """Content-Type header value; text types say their charset (always UTF-8)."""
        if self.media_type.startswith("text/"):
            return f"{self.media_type}; charset=utf-8"
        return self.media_type


def table_for(form: str) -> dict[str, str]:
    if form == "ASK":
        return BOOLEAN_FORMATS
    if form == "SELECT":
        return SOLUTION_FORMATS
    return GRAPH_FORMATS


def offers_for(form: str) -> tuple[Offer, ...]:
    """What a result of `form` can be written as, in the server's order of preference."""
    return tuple(Offer(media, FORMAT_KEYS.get(media)) for media in table_for(form))


# Clients send a handful of distinct Accept headers; parsing and ranking one costs more
# than a lookup takes in the engine, so the ranking is kept per (form, Accept).
CHOICES_CACHE_SIZE = 512


@lru_cache(maxsize=CHOICES_CACHE_SIZE)
def _choices(form: str, accept: str | None) -> tuple[Choice, ...]:
    table = table_for(form)
    return tuple(
        Choice(offer.media_type, table[offer.media_type], explicit=specificity >= SUBTYPE_WILDCARD)
        for offer, specificity in ranked(offers_for(form), accept)
    )


def negotiate(form: str, accept: str | None) -> Choice:
    """The representation of a `form` result for this Accept header (`query.negotiation`).

    Raises `NotAcceptable` (406, with the formats `form` can be written as) when the
    client accepts none of them: a CONSTRUCT asked for as SPARQL results, say.
    """
    found = _choices(form, accept)
    if not found:
        raise not_acceptable(offers_for(form), f"a {form} result")
    return found[0]


def without_xml(form: str, accept: str | None) -> Choice | None:
    """The client's best acceptable representation that is not XML, for a result XML cannot
    carry; None when the client accepts only XML (then the answer is 406)."""
    return next((c for c in _choices(form, accept) if c.format not in XML_FORMATS), None)


# ------------------------------------------------------------------ characters XML cannot carry

# XML 1.0 §2.2 Char excludes U+0000-U+0008, U+000B, U+000C, U+000E-U+001F, U+FFFE, U+FFFF
# (and surrogates, which UTF-8 text cannot hold); not even a character reference may name
# them. pyoxigraph's XML writers copy them raw, which no XML parser accepts. UTF-8 bytes
# under 0x20 are always those characters themselves, so a bytes search is exact.
_XML_FORBIDDEN = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]|\xef\xbf[\xbe\xbf]")
XML_FORMATS = frozenset({"XML", "RDF_XML"})


def xml_forbidden(body: bytes) -> str | None:
    """The first character of an XML serialisation that XML 1.0 forbids (as "U+0001"), or None."""
    found = _XML_FORBIDDEN.search(body)
    return None if found is None else f"U+{ord(found.group().decode('utf-8')):04X}"


def xml_refusal(character: str, form: str) -> str:
    """The 406 message when only XML is acceptable and the result holds `character`."""
    others = (
        "application/sparql-results+json, text/csv or text/tab-separated-values"
        if form in ("SELECT", "ASK")
        else "text/turtle, application/n-triples or application/ld+json"
    )
    return (
        f"the result contains the character {character}, which XML 1.0 cannot carry (not even as a "
        f"character reference), so it has no XML serialisation; ask for {others}"
    )
