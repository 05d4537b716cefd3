"""Read another city's published graph over HTTP, as a linked-data client would, within bounds.

Discovery, in the order a client that knows nothing but a URL follows it:
1. the URL itself, asking for RDF (and accepting HTML): a dump is taken as it is; a VoID or
   DCAT description leads on to its dumps (`void:dataDump`, `dcat:downloadURL`) or, when
   it has none, to its SPARQL endpoint (`void:sparqlEndpoint`, `dcat:endpointURL`);
2. an HTML page's `<link rel="alternate|describedby|meta">` to an RDF document, else the
   host's `/.well-known/void` (RFC 8615; VoID §7.2), which is then read as in 1 (a linked
   document that offers no dump or endpoint is the data itself, as an alternate of the page);
3. the dump (N-Triples, N-Quads, Turtle, RDF/XML, JSON-LD, plain or gzip), or a SPARQL
   CONSTRUCT of the partnerships and what they point to from the endpoint.

Bounds, because the other side may be slow, huge, looping or lying, and a build or a
check must end with a one-line message rather than hang or fill the memory:
- `timeout`: seconds for the whole read, all requests together (asyncio's timeout around
  everything, so a server that stalls or drips a byte a second is cut off on time);
- `max_bytes`: per response, counted as received and again after any decompression
  (Content-Encoding or a `.gz` dump is unpacked here, in bounded steps, never by httpx);
- `max_redirects`: per request, each hop checked (http or https; a loop is named as one);
- media types: each step accepts only what it can read (RDF, or HTML for a landing page);
- a host on the public internet cannot send the client on to a loopback, private or
  link-local address (a description must not turn the reader against its own network).
Then the bytes pass `untrusted_input` (RDF/XML without DTD, JSON of sane depth) and the
strict Oxigraph parsers. Every failure is a `RemoteGraphError` whose text is one line.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import re
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
import pyoxigraph
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF
from rdflib.term import Node

from twinning_kg.sources import untrusted_input
from twinning_kg.vocab import DCAT, VOID

# Media type -> parser; what a dump or a description may be served as.
RDF_TYPES: dict[str, pyoxigraph.RdfFormat] = {
    "application/n-triples": pyoxigraph.RdfFormat.N_TRIPLES,
    "application/n-quads": pyoxigraph.RdfFormat.N_QUADS,
    "text/turtle": pyoxigraph.RdfFormat.TURTLE,
    "application/x-turtle": pyoxigraph.RdfFormat.TURTLE,
    "application/rdf+xml": pyoxigraph.RdfFormat.RDF_XML,
    "application/ld+json": pyoxigraph.RdfFormat.JSON_LD,
}
EXTENSIONS: dict[str, str] = {
    ".nt": "application/n-triples", ".nq": "application/n-quads", ".ttl": "text/turtle",
    ".rdf": "application/rdf+xml", ".owl": "application/rdf+xml", ".jsonld": "application/ld+json",
}
GZIP_TYPES = {"application/gzip", "application/x-gzip"}
HTML_TYPES = {"text/html", "application/xhtml+xml"}
# Which dump to take when a description offers several: the simplest to parse first.
PREFERENCE = list(EXTENSIONS.values())
ACCEPT_RDF = ("application/n-triples, application/n-quads;q=0.95, text/turtle;q=0.9, "
              "application/rdf+xml;q=0.8, application/ld+json;q=0.7")
ACCEPT_START = ACCEPT_RDF + ", text/html;q=0.5"
REDIRECTS = {301, 302, 303, 307, 308}
CHUNK = 64 * 1024
USER_AGENT = "twinning-kg (linked-data client; check-links, refresh-partners)"


class RemoteGraphError(Exception):
    """The graph could not be read; `str()` is one line naming the URL and what went wrong."""


@dataclass(frozen=True)
class Limits:
    """How much one read may cost (module docstring)."""

    timeout: float = 60.0
    max_bytes: int = 64 * 1024 * 1024
    max_redirects: int = 5


@dataclass
class Response:
    """One HTTP answer, read in full within the limits."""

    url: str  # after redirects
    media_type: str
    body: bytes  # as received, Content-Encoding undone
    headers: httpx.Headers


@dataclass
class RemoteGraph:
    """What was read: the graph, the URL its bytes came from and their checksum."""

    requested: str
    url: str
    media_type: str
    sha256: str  # of the RDF bytes as parsed (after any gzip)
    size: int
    retrieved: datetime
    graph: Graph
    trail: list[str] = field(default_factory=list)  # every URL read, in order
    via: str = "dump"  # "dump" | "sparql"


def read(url: str, limits: Limits | None = None, vocabulary: str | None = None) -> RemoteGraph:
    """Read the graph published at `url` (see module docstring); raises RemoteGraphError.

    `vocabulary`: base of the twinning-kg vocabulary, for the CONSTRUCT query sent to a
    SPARQL endpoint when no dump is offered.
    """
    limits = limits or Limits()
    _check_url(url, url)
    try:
        return asyncio.run(asyncio.wait_for(_read(url, limits, vocabulary), limits.timeout))
    except TimeoutError as exc:
        raise RemoteGraphError(f"{url}: no complete answer within {limits.timeout:g} s (time limit)") from exc


async def _read(url: str, limits: Limits, vocabulary: str | None) -> RemoteGraph:
    trail: list[str] = []
    timeout = httpx.Timeout(limits.timeout)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}
    client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, headers=headers, trust_env=False)
    async with client:
        reader = _Reader(client, limits, url, trail)
        first = await reader.get(url, ACCEPT_START, allowed=set(RDF_TYPES) | HTML_TYPES | GZIP_TYPES)
        landing = first.media_type in HTML_TYPES
        linked = None
        if landing:
            linked = _linked_description(first)
            description_url = linked or urljoin(first.url, "/.well-known/void")
            first = await reader.get(description_url, ACCEPT_RDF, allowed=set(RDF_TYPES))
        parsed = _parse(first, limits)
        dumps, endpoints = _offers(parsed[0], first.url)
        if not dumps and not endpoints:
            # the page's own RDF alternate is the data; /.well-known/void must lead on
            if landing and not linked:
                raise RemoteGraphError(f"{first.url}: describes no dump (void:dataDump, dcat:downloadURL) "
                                       "and no SPARQL endpoint")
            return _result(url, first.url, parsed, trail)  # the URL was the data itself
        if dumps:
            dump = await reader.get(dumps[0], ACCEPT_RDF, allowed={*RDF_TYPES, *GZIP_TYPES, "text/plain"})
            return _result(url, dump.url, _parse(dump, limits), trail)
        query = _construct(vocabulary)
        endpoint = endpoints[0]
        answer = await reader.get(
            f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode({'query': query})}",
            "application/n-triples, text/turtle;q=0.9", allowed=set(RDF_TYPES),
        )
        result = _result(url, answer.url, _parse(answer, limits), trail)
        result.via = "sparql"
        return result


class _Reader:
    """GETs with manual redirects, size limits and media-type checks (module docstring)."""

    def __init__(self, client: httpx.AsyncClient, limits: Limits, start: str, trail: list[str]) -> None:
        self.client, self.limits, self.start, self.trail = client, limits, start, trail

    async def get(self, url: str, accept: str, allowed: set[str]) -> Response:
        seen: list[str] = []
        current = url
        while True:
            _check_url(current, self.start)
            self.trail.append(current)
            try:
                async with self.client.stream("GET", current, headers={"Accept": accept}) as response:
                    if response.status_code in REDIRECTS and "location" in response.headers:
                        seen.append(current)
                        target = urljoin(current, response.headers["location"])
                        if target in seen:
                            raise RemoteGraphError(f"{url}: redirect loop ({' -> '.join([*seen, target])})")
                        if len(seen) > self.limits.max_redirects:
                            raise RemoteGraphError(
                                f"{url}: more than {self.limits.max_redirects} redirects (last: {target})"
                            )
                        current = target
                        continue
                    if response.status_code != 200:
                        status = f"{response.status_code} {response.reason_phrase}"
                        raise RemoteGraphError(f"{current}: HTTP {status}")
                    media = (response.headers.get("content-type") or "").split(";")[0].strip().lower()
                    if media not in allowed and not (media == "text/plain" and current.endswith(".nt")):
                        shown = media or "none"
                        raise RemoteGraphError(
                            f"{current}: served as {shown}, not one of the media types expected here "
                            f"({', '.join(sorted(allowed))})"
                        )
                    body = await self._body(response, current)
                    return Response(str(response.url), media, body, response.headers)
            except httpx.HTTPError as exc:
                raise RemoteGraphError(f"{current}: {_http_error(exc)}") from exc

    async def _body(self, response: httpx.Response, url: str) -> bytes:
        limit = self.limits.max_bytes
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise RemoteGraphError(f"{url}: {int(declared):,} bytes announced, over the limit of {limit:,}")
        encoding = (response.headers.get("content-encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
            raise RemoteGraphError(f"{url}: unsupported Content-Encoding {encoding!r}")
        chunks = _limited(response.aiter_raw(CHUNK), limit, url)
        if encoding != "identity":
            chunks = _inflate(chunks, limit, url, gzip=encoding != "deflate")
        return b"".join([chunk async for chunk in chunks])


async def _limited(chunks: AsyncIterator[bytes], limit: int, url: str) -> AsyncIterator[bytes]:
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise RemoteGraphError(f"{url}: more than the limit of {limit:,} bytes")
        yield chunk


async def _inflate(chunks: AsyncIterator[bytes], limit: int, url: str, gzip: bool) -> AsyncIterator[bytes]:
    """Decompress in steps of at most CHUNK output bytes, so a small bomb cannot grow past `limit`."""
    inflater = zlib.decompressobj(wbits=31 if gzip else 15)
    total = 0
    async for chunk in chunks:
        data = chunk
        while data:
            try:
                out = inflater.decompress(data, CHUNK)
            except zlib.error as exc:
                raise RemoteGraphError(f"{url}: broken compressed data ({exc})") from exc
            total += len(out)
            if total > limit:
                raise RemoteGraphError(f"{url}: more than the limit of {limit:,} bytes once decompressed")
            yield out
            data = inflater.unconsumed_tail
    if not inflater.eof:
        raise RemoteGraphError(f"{url}: compressed data ends early")


def _gunzip(data: bytes, limit: int, url: str) -> bytes:
    """A `.gz` dump: the same bounded steps as Content-Encoding."""
    inflater = zlib.decompressobj(wbits=31)
    parts, total, rest = [], 0, data
    while rest and not inflater.eof:
        try:
            out = inflater.decompress(rest, CHUNK)
        except zlib.error as exc:
            raise RemoteGraphError(f"{url}: broken gzip data ({exc})") from exc
        total += len(out)
        if total > limit:
            raise RemoteGraphError(f"{url}: more than the limit of {limit:,} bytes once decompressed")
        parts.append(out)
        rest = inflater.unconsumed_tail
    if not inflater.eof:
        raise RemoteGraphError(f"{url}: gzip data ends early")
    return b"".join(parts)


def _rdf_bytes(response: Response, limits: Limits) -> tuple[str, bytes]:
    """(RDF media type, bytes) of a response, unpacking a gzip dump and naming its format."""
    media, body = response.media_type, response.body
    path = urlsplit(response.url).path.lower()
    if media in GZIP_TYPES or (path.endswith(".gz") and body[:2] == b"\x1f\x8b"):
        body = _gunzip(body, limits.max_bytes, response.url)
        path = path.removesuffix(".gz")
        media = next((m for ext, m in EXTENSIONS.items() if path.endswith(ext)), "")
        if not media:
            raise RemoteGraphError(
                f"{response.url}: a gzip file whose name says no RDF format ({', '.join(EXTENSIONS)})"
            )
    if media == "text/plain":
        media = "application/n-triples"
    return media, body


def _parse(response: Response, limits: Limits) -> tuple[Graph, str, bytes]:
    """The response's graph, with the RDF media type and bytes it was parsed from."""
    media, body = _rdf_bytes(response, limits)
    return parse_rdf(body, media, response.url), media, body


def parse_rdf(body: bytes, media: str, source: str, base_iri: str | None = None) -> Graph:
    """Untrusted RDF bytes of a known media type -> rdflib Graph (named graphs are merged).

    `source` names the bytes in messages (`source:line:column: …`); relative IRIs resolve
    against `base_iri` (default: `source`). No JSON-LD context is ever fetched.
    """
    fmt = RDF_TYPES.get(media)
    if fmt is None:
        raise RemoteGraphError(f"{source}: {media or 'no media type'} is not an RDF format this client reads")
    try:
        if fmt == pyoxigraph.RdfFormat.RDF_XML:
            untrusted_input.check_xml(body, source)
        elif fmt == pyoxigraph.RdfFormat.JSON_LD:
            untrusted_input.json_document(body, source)
        else:
            untrusted_input.decode_utf8(body, source, "the RDF")
    except untrusted_input.UntrustedInputError as exc:
        raise RemoteGraphError(str(exc)) from exc
    graph = Graph()
    try:
        for quad in pyoxigraph.parse(body, format=fmt, base_iri=base_iri or source):
            graph.add(tuple(_node(t, source) for t in (quad.subject, quad.predicate, quad.object)))  # type: ignore
    except SyntaxError as exc:
        line, column = getattr(exc, "lineno", None), getattr(exc, "offset", None)
        where = f"{source}:{line}:{column}" if line is not None else source
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else "syntax error"
        raise RemoteGraphError(f"{where}: not valid {media}: {message}") from exc
    except (OSError, ValueError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RemoteGraphError(f"{source}: {message}") from exc
    return graph


def _node(term: object, source: str) -> Node:
    if isinstance(term, pyoxigraph.NamedNode):
        return URIRef(term.value)
    if isinstance(term, pyoxigraph.BlankNode):
        return BNode(term.value)
    if isinstance(term, pyoxigraph.Literal):
        if term.language:
            return Literal(term.value, lang=term.language)
        return Literal(term.value, datatype=URIRef(term.datatype.value))
    raise RemoteGraphError(f"{source}: RDF-star terms are not expected in a twinning graph")


def _offers(graph: Graph, base: str) -> tuple[list[str], list[str]]:
    """Dumps and SPARQL endpoints a VoID or DCAT description offers, best first.

    Only the described datasets' own: the dataset a VoID linkset links to (its
    objectsTarget: Wikidata, with its endpoint) is another one, not this one.
    """
    targets = set(graph.objects(None, VOID.objectsTarget)) - set(graph.objects(None, VOID.subjectsTarget))
    dumps: set[str] = set()
    for dataset, url in graph.subject_objects(VOID.dataDump):
        if dataset not in targets and isinstance(url, URIRef):
            dumps.add(str(url))
    for url in graph.objects(None, DCAT.downloadURL):
        if isinstance(url, URIRef):
            dumps.add(str(url))
    endpoints: set[str] = set()
    for dataset, url in graph.subject_objects(VOID.sparqlEndpoint):
        if dataset not in targets and isinstance(url, URIRef):
            endpoints.add(str(url))
    for service in graph.subjects(RDF.type, DCAT.DataService):
        endpoints.update(str(u) for u in graph.objects(service, DCAT.endpointURL) if isinstance(u, URIRef))
    return sorted(dumps, key=_dump_rank), sorted(endpoints)


def _dump_rank(url: str) -> tuple[int, int, str]:
    path = urlsplit(url).path.lower()
    compressed = path.endswith(".gz")
    path = path.removesuffix(".gz")
    media = next((m for ext, m in EXTENSIONS.items() if path.endswith(ext)), None)
    return (PREFERENCE.index(media) if media in PREFERENCE else len(PREFERENCE), int(compressed), url)


class _LinkFinder(HTMLParser):
    """`<link rel="alternate|describedby|meta" type="<RDF>" href>` of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "link":
            return
        values = {k: (v or "") for k, v in attrs}
        rels = set(values.get("rel", "").lower().split())
        media = values.get("type", "").split(";")[0].strip().lower()
        if rels & {"alternate", "describedby", "meta"} and media in RDF_TYPES and values.get("href"):
            self.found.append(values["href"])


def _linked_description(page: Response) -> str | None:
    finder = _LinkFinder()
    try:
        finder.feed(page.body[: 1024 * 1024].decode("utf-8", errors="replace"))
    except (ValueError, AssertionError):  # a broken page is simply one without links
        return None
    return urljoin(page.url, finder.found[0]) if finder.found else None


def _construct(vocabulary: str | None) -> str:
    """Partnerships, what they point to (places, events, sources) and the events' sources."""
    tw = f"{vocabulary or 'https://w3id.org/twinning-kg/'}ontology#"
    return (
        f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ "
        f"{{ ?s a <{tw}Partnership> }} UNION "
        f"{{ ?x a <{tw}Partnership> ; ?q ?s . FILTER(isIRI(?s)) }} UNION "
        f"{{ ?x a <{tw}Partnership> ; <{tw}event> ?e . ?e ?q ?s . FILTER(isIRI(?s)) }} "
        f"?s ?p ?o }}"
    )


def _result(requested: str, url: str, parsed: tuple[Graph, str, bytes], trail: list[str]) -> RemoteGraph:
    graph, media, body = parsed
    return RemoteGraph(
        requested=requested, url=url, media_type=media, sha256=hashlib.sha256(body).hexdigest(),
        size=len(body), retrieved=datetime.now(UTC).replace(microsecond=0), graph=graph, trail=list(trail),
    )


def _check_url(url: str, start: str) -> None:
    """http(s) only; and no way from a public host to a loopback, private or link-local one."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteGraphError(f"{url}: only http and https URLs are read")
    if _internal(parts.hostname) and not _internal(urlsplit(start).hostname or ""):
        raise RemoteGraphError(
            f"{url}: refused: {start} (a public host) points to an internal address"
        )


def _internal(host: str) -> bool:
    if host.lower() in ("localhost",) or host.lower().endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local or address.is_unspecified


def _http_error(exc: httpx.HTTPError) -> str:
    """One line for any transport failure."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    kinds = {
        httpx.ConnectError: "cannot connect", httpx.ConnectTimeout: "connection timed out",
        httpx.ReadTimeout: "no data within the time limit", httpx.RemoteProtocolError: "broken HTTP answer",
        httpx.ReadError: "connection failed while reading", httpx.UnsupportedProtocol: "unsupported protocol",
    }
    kind = next((name for cls, name in kinds.items() if isinstance(exc, cls)), type(exc).__name__)
    return re.sub(r"\s+", " ", f"{kind}: {text}" if text else kind)
