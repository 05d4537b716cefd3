"""Which serialisation a SPARQL result gets, by content negotiation (RFC 9110 §12.5.1).

Kept apart from the engine so the worker processes, a remote engine and the web layer
agree on one table. Formats are named by pyoxigraph's enum member names (`JSON`,
`TURTLE`, ...) so this module stays importable without pyoxigraph.

Defaults when `Accept` is absent, `*/*` or names nothing we serve: the SPARQL 1.1
Protocol (§2.1) names "a SPARQL Results Document in XML, JSON, or CSV/TSV format" for
SELECT/ASK, and "an RDF graph ... serialized, for example, in the RDF/XML syntax" for
CONSTRUCT/DESCRIBE; the W3C protocol manifest accepts XML/JSON/CSV/TSV and RDF/XML/
Turtle/N-Triples. We answer SPARQL XML results and RDF/XML, the formats the protocol
names first (and what rdflib-endpoint does), and fall back to Turtle when a graph
cannot be written as RDF/XML (predicates without an XML QName).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
    explicit: bool  # False when we chose the default (the client accepts anything)

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


def parse_accept(accept: str | None) -> list[tuple[str, float]]:
    """`Accept` -> [(media range, q)] best first (q, then specificity, then order)."""
    ranges: list[tuple[float, int, int, str]] = []
    for order, item in enumerate((accept or "").split(",")):
        parts = [p.strip() for p in item.split(";")]
        media = parts[0].lower()
        if not media or "/" not in media:
            continue
        q = 1.0
        for param in parts[1:]:
            if param.lower().startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        specificity = 0 if media == "*/*" else 1 if media.endswith("/*") else 2
        ranges.append((q, specificity, -order, media))
    ranges.sort(reverse=True)
    return [(media, q) for q, _spec, _order, media in ranges]


def best_match(accept: str | None, offered: list[str] | dict[str, str]) -> str | None:
    """The offered media type the client prefers; None when it accepts anything (or nothing offered)."""
    for media, q in parse_accept(accept):
        if q <= 0:
            continue
        if media == "*/*":
            return None
        if media.endswith("/*"):
            for candidate in offered:
                if candidate.startswith(media[:-1]):
                    return candidate
            continue
        if media in offered:
            return media
    return None


def negotiate(form: str, accept: str | None) -> Choice:
    """Pick the representation of a `form` result for this `Accept` header.

    Lenient by design (RFC 9110 allows ignoring Accept): when nothing acceptable is
    served, the default is sent rather than a 406, so odd client headers never fail a query.
    """
    table = table_for(form)
    media = best_match(accept, table)
    if media is None:
        default = DEFAULT_MEDIA_TYPE[form]
        return Choice(default, table[default], explicit=False)
    return Choice(media, table[media], explicit=True)


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


def without_xml(form: str, accept: str | None) -> Choice | None:
    """The client's best acceptable representation that is not XML, for a result XML cannot
    carry; None when the client accepts only XML (then the answer is 406)."""
    table = {media: fmt for media, fmt in table_for(form).items() if fmt not in XML_FORMATS}
    ranges = [(media, q) for media, q in parse_accept(accept) if q > 0]
    if not ranges:
        ranges = [("*/*", 1.0)]
    for media, _q in ranges:
        if media == "*/*":
            results = form in ("SELECT", "ASK")
            default = "application/sparql-results+json" if results else FALLBACK_GRAPH_MEDIA_TYPE
            return Choice(default, table[default], explicit=False)
        if media.endswith("/*"):
            for candidate, fmt in table.items():
                if candidate.startswith(media[:-1]):
                    return Choice(candidate, fmt, explicit=True)
        elif media in table:
            return Choice(media, table[media], explicit=True)
    return None


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
