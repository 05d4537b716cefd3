"""Content negotiation (RFC 9110 §12.5.1), one policy for every representation we serve.

Every route of the web layer (pages, RDF documents, the catalog, VoID, the audit, the
service description, error pages) and both SPARQL engines choose a representation here.
It lives in the query stage because the engines can only negotiate a result's format
once they have read the query (a SELECT has other formats than a CONSTRUCT); the web
layer imports it, the engines could not import the web layer. docs/web.md states the
policy for users; in short:

- `Accept` is a list of media ranges (`type/subtype`, `type/*`, `*/*`) with an optional
  weight `q` between 0 and 1 (default 1). A range that cannot be read (no `/`, a `q`
  that is not a number in [0, 1]) is ignored; no `Accept`, an empty one or one with no
  readable range means `*/*`. Parameters other than `q` are ignored.
- An offer's weight is the `q` of the *most specific* range that matches it: the type
  itself beats `type/*`, which beats `*/*`. So `text/html;q=0, */*` excludes HTML only.
- `q=0` means "not acceptable", never "acceptable, least preferred".
- The chosen offer has the highest weight; ties go to the more specific match (a type
  the client named beats one it reached through a wildcard), then to the server's order
  (the order of the offers). Order inside the header means nothing (RFC 9110 gives it
  no meaning).
- The server's order is the same kind on every route: the resource's data first (its
  default machine format, e.g. Turtle, or what the SPARQL Protocol names for query
  results), then its other machine formats, then the HTML page, then plain text. So
  `*/*` and no `Accept` get data everywhere, and a page goes to clients that ask for
  `text/html`, as every browser does (`text/html` at q=1 above its `*/*;q=0.8`): the
  default of the W3C's Best Practice Recipes for Publishing RDF Vocabularies (recipe 3).
- `?format=KEY` (`Offer.key`) overrides `Accept`; a key the resource does not have is a
  400 (`UnknownFormat`), a representation nobody can accept a 406 (`NotAcceptable`),
  both with the list of what is available.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Specificity of a match: the media type itself, `type/*`, `*/*`.
EXACT, SUBTYPE_WILDCARD, ANY = 3, 2, 1


@dataclass(frozen=True)
class Offer:
    """One representation a resource has.

    `media_type` is what the Content-Type says; `also` are media types that ask for this
    very representation (`application/x-turtle` for Turtle); `key` is its `?format=` value
    (None: reachable through Accept only).
    """

    media_type: str
    key: str | None = None
    also: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.media_type, *self.also)

    @property
    def content_type(self) -> str:
        """The Content-Type header: text types say their charset (always UTF-8 here)."""
        return f"{self.media_type}; charset=utf-8" if self.media_type.startswith("text/") else self.media_type

    def describe(self) -> str:
        return f"{self.media_type} (?format={self.key})" if self.key else self.media_type


@dataclass(frozen=True)
class MediaRange:
    type: str  # "*" for */*
    subtype: str  # "*" for type/* and */*
    q: float

    def specificity(self, media_type: str) -> int:
        """How specifically this range names `media_type`: EXACT, SUBTYPE_WILDCARD, ANY, or 0."""
        major, _, minor = media_type.partition("/")
        if self.type == "*":
            return ANY
        if self.type != major:
            return 0
        if self.subtype == "*":
            return SUBTYPE_WILDCARD
        return EXACT if self.subtype == minor else 0


class NegotiationError(Exception):
    """No representation can be sent; `status` and `message` are the answer's."""

    status = 406

    def __init__(self, message: str, offers: Sequence[Offer]) -> None:
        super().__init__(message)
        self.message = message
        self.offers = tuple(offers)


class NotAcceptable(NegotiationError):
    """406: none of the offers is acceptable (or the `?format=` one is not)."""

    status = 406


class UnknownFormat(NegotiationError):
    """400: `?format=` names no representation of this resource."""

    status = 400

    def __init__(self, message: str, offers: Sequence[Offer], key: str) -> None:
        super().__init__(message, offers)
        self.key = key


def available(offers: Sequence[Offer]) -> str:
    """`text/turtle (?format=ttl), …`: the list a 400 or 406 answer gives."""
    return ", ".join(offer.describe() for offer in offers)


def not_acceptable(offers: Sequence[Offer], what: str = "this resource") -> NotAcceptable:
    """The 406 for `what` (e.g. "a SELECT result"), listing what it can be had as."""
    return NotAcceptable(
        f"406 Not Acceptable: none of the media types in Accept is available for {what}. "
        f"Available: {available(offers)}",
        offers,
    )


def parse_accept(header: str | None) -> list[MediaRange]:
    """The readable media ranges of an Accept header, in header order; `*/*` when none."""
    ranges: list[MediaRange] = []
    for item in (header or "").split(","):
        media, *params = (part.strip() for part in item.split(";"))
        major, slash, minor = media.lower().partition("/")
        if not slash or not major or not minor or (major == "*" and minor != "*"):
            continue
        q: float | None = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                q = _weight(value.strip())
                break  # what follows q are accept-extensions, not media type parameters
        if q is not None:
            ranges.append(MediaRange(major, minor, q))
    return ranges or [MediaRange("*", "*", 1.0)]


def _weight(value: str) -> float | None:
    try:
        q = float(value)
    except ValueError:
        return None
    return q if math.isfinite(q) and 0.0 <= q <= 1.0 else None


# Codings a recipient reads as another's name (RFC 9110 §8.4.1.1, §8.4.1.3).
_CODING_ALIASES = {"x-gzip": "gzip", "x-compress": "compress"}


def accepts_coding(header: str | None, coding: str) -> bool:
    """Whether an `Accept-Encoding` header allows the content coding `coding` (RFC 9110 §12.5.3).

    The coding's own weight decides when the client lists it (`x-gzip` is `gzip`), else the
    weight of `*`; `q=0` refuses, as in `Accept`. An element whose `q` cannot be read is
    ignored, as `parse_accept` ignores such a range. No header or an empty one gets no
    coding: the RFC would allow any, but a client that does not ask is sent the bytes as
    they are.
    """
    own: float | None = None
    star: float | None = None
    for item in (header or "").split(","):
        name, *params = (part.strip() for part in item.split(";"))
        name = name.lower()
        name = _CODING_ALIASES.get(name, name)
        q: float | None = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                q = _weight(value.strip())
                break
        if q is None:
            continue
        if name == coding:
            own = q if own is None else max(own, q)
        elif name == "*":
            star = q if star is None else max(star, q)
    weight = own if own is not None else star
    return weight is not None and weight > 0


def quality(offer: Offer, ranges: Sequence[MediaRange]) -> tuple[float, int]:
    """(q, specificity) of `offer`: the most specific range matching it.

    Wildcards match the offer's own media type, the one the answer is labelled with (a
    client accepting `application/*` is not sent `text/turtle` because Turtle is also
    known as `application/x-turtle`); its other names (`also`) count where the client
    names them outright. At equal specificity the offer's own media type decides.
    """
    best: tuple[float, int] = (0.0, 0)
    for name in offer.names:
        own = name == offer.media_type
        specificity, q = 0, 0.0
        for media_range in ranges:
            found = media_range.specificity(name)
            if (own or found == EXACT) and found > specificity:
                specificity, q = found, media_range.q
        if specificity > best[1]:
            best = (q, specificity)
    return best


def ranked(offers: Sequence[Offer], accept: str | None) -> list[tuple[Offer, int]]:
    """The acceptable offers, best first, each with the specificity it was matched by."""
    ranges = parse_accept(accept)
    scored = []
    for order, offer in enumerate(offers):
        q, specificity = quality(offer, ranges)
        if q > 0:
            scored.append((-q, -specificity, order, offer, specificity))
    scored.sort(key=lambda item: item[:3])
    return [(offer, specificity) for *_rank, offer, specificity in scored]


def choose(offers: Sequence[Offer], accept: str | None, format_key: str | None = None) -> Offer:
    """The representation to send: `?format=` when given, else the best by Accept.

    Raises `UnknownFormat` (400) for a key none of the offers has, `NotAcceptable` (406)
    when nothing is acceptable.
    """
    if format_key is not None:
        return by_key(offers, format_key)
    found = ranked(offers, accept)
    if not found:
        raise not_acceptable(offers)
    return found[0][0]


# `format=` values other SPARQL clients send (SPARQLWrapper, Fuseki's and Virtuoso's
# habits), read as ours when no offer has the key itself: a CONSTRUCT asked for as
# `xml` or `json` is RDF/XML or JSON-LD, the graph forms of those families.
KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "turtle": ("ttl",),
    "n3": ("ttl",),
    "json-ld": ("jsonld",),
    "rdf+xml": ("rdf",),
    "ntriples": ("nt",),
    "n-triples": ("nt",),
    "nquads": ("nq",),
    "xml": ("rdf",),
    "json": ("jsonld",),
}


def by_key(offers: Sequence[Offer], key: str) -> Offer:
    """The offer whose `?format=` value is `key` (or a known alias of it); `UnknownFormat`
    (400) when there is none."""
    for candidate in (key, *KEY_ALIASES.get(key.lower(), ())):
        for offer in offers:
            if offer.key == candidate:
                return offer
    keys = ", ".join(offer.key for offer in offers if offer.key)
    raise UnknownFormat(f"400 Bad Request: unknown format {key!r}; use one of: {keys}", offers, key)
