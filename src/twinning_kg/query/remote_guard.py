"""What `RemoteEngine` never forwards: a store's own extensions of SPARQL.

`query_guard` decides what any engine may run (no update, SERVICE only to the
allow-list). A remote store adds a second concern: it may understand more than SPARQL
1.1, and what it understands beyond it is not ours to expose. OpenLink Virtuoso is the
case in point (docs/virtuoso.md): on a stock install its anonymous `/sparql` account
runs

- `DEFINE` pragmas before the query (`define input:default-graph-uri <…>` swaps the
  dataset for the store's system graphs, `define get:soft "replace"` makes the store
  fetch `FROM` URLs when sponging is granted);
- built-in SQL functions under the pseudo-scheme `bif:` and SQL procedures under `sql:`;
  `<bif:http_get>('http://…')` makes the store fetch any URL (server-side request
  forgery through our endpoint), `bif:sys_stat(…)` reads server internals.

The embedded engine (pyoxigraph) knows none of these: for it they are syntax errors or
"custom function not supported". So the rule is the embedded engine's language: a query
goes to the remote store only if it uses no `DEFINE`, names nothing in `bif:`/`sql:`,
and calls no function IRI except those pyoxigraph implements (XSD casts, GeoSPARQL).
Refusals are 400 with the reason, as the embedded engine answers these queries.

And the dataset: given the release's graphs, `FROM`, `FROM NAMED` and `GRAPH <iri>` may
name those only (`check_dataset` says why: Virtuoso merges a query's FROM into the
protocol's dataset, so its system graphs, or anyone else's in a shared store, would be
one FROM away).

Fail closed: `bif:`/`sql:` are looked for everywhere (inside strings too, where they
cost at most a false refusal), function calls and `DEFINE` outside strings, IRIs and
comments. A prefixed name is expanded with every declaration of its prefix; a relative
or undeclared function IRI is refused rather than resolved by guesswork. (This reads
text, like `query_guard`, not a parse tree: rdflib's parser costs milliseconds per query
and would be a third reader of the same text, which is how guards get bypassed.)
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urljoin

from twinning_kg.query.syntax import unescape

# Function IRIs the embedded engine evaluates (SPARQL 1.1 §17.5 casts; pyoxigraph's GeoSPARQL).
ALLOWED_FUNCTION_NAMESPACES = (
    "http://www.w3.org/2001/XMLSchema#",
    "http://www.opengis.net/def/function/geosparql/",
)
# Virtuoso's pseudo-schemes for SQL built-ins and stored procedures.
_STORE_SCHEMES = re.compile(r"(?i)\b(bif|sql)\s*:")

_IRIREF = r"<[^<>\"{}|^`\\\x00-\x20]*>"
# Strings and comments (masked before looking for syntax), IRIs (kept, but consumed whole
# so that a '#' or quote inside one is not read as a comment or string).
_TOKENS = re.compile(
    r"(?P<string>'''(?:[^'\\]|\\.|'(?!''))*'''"
    r'|"""(?:[^"\\]|\\.|"(?!""))*"""'
    r"|'(?:[^'\\\n\r]|\\.)*'"
    r'|"(?:[^"\\\n\r]|\\.)*")'
    rf"|(?P<iri>{_IRIREF})"
    r"|(?P<comment>#[^\n\r]*)",
    re.DOTALL,
)
_PN_CHARS = r"[\w\-\u00B7\u0300-\u036F\u203F-\u2040]"
_PNAME = (
    rf"(?<![\w?$:])(?P<prefix>[A-Za-z\u00C0-\uFFFF](?:{_PN_CHARS}|\.)*)?:(?P<local>(?:{_PN_CHARS}|[.:%\\])*)"
)
_PLACEHOLDER = r"<\d+>"
_CALL = re.compile(rf"(?:(?P<full>{_PLACEHOLDER})|{_PNAME})\s*\(")
_PREFIX_DECL = re.compile(rf"(?i)(?<![\w:?$])prefix\s+(?P<name>[^\s:]*)\s*:\s*(?P<iri>{_PLACEHOLDER})")
_DEFINE = re.compile(r"(?i)(?<![\w:?$.\-])define(?![\w:\-])")
_BASE_DECL = re.compile(rf"(?i)(?<![\w:?$])base\s+(?P<iri>{_PLACEHOLDER})")
_DATASET_REF = re.compile(
    rf"(?i)(?<![\w:?$.\-])(?P<keyword>from(?:\s+named)?|graph)(?![\w:\-])\s*"
    rf"(?:(?P<full>{_PLACEHOLDER})|{_PNAME})?"
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


class RemoteRefusal(Exception):
    """The query uses something the remote store must not be asked; `message` says what."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class QueryDataset:
    """The graphs a query's FROM (`default`) and FROM NAMED (`named`) clauses name."""

    default: tuple[str, ...]
    named: tuple[str, ...]


def check(
    query: str, graphs: Collection[str] | None = None, base_iri: str | None = None
) -> QueryDataset | None:
    """Raise RemoteRefusal if `query` reaches beyond the SPARQL the embedded engine speaks,
    or (given the release's `graphs`) names a graph outside them in FROM or GRAPH.

    Read twice: with SPARQL's `\\u` escapes applied (as the standard and pyoxigraph read
    it) and as written (Virtuoso applies them only inside strings), so an escaped quote
    cannot make one reading see a string where the store sees code.

    Returns the query's own dataset (FROM / FROM NAMED, resolved) when it has one and
    `graphs` is given, so the engine can state it to the store (see `check_dataset`).
    """
    dataset = None
    for text in dict.fromkeys((unescape(query), query)):
        reading = _Reading(text)
        reading.check_language()
        if graphs is not None:
            found = reading.check_dataset(frozenset(graphs), base_iri)
            dataset = dataset or found  # the standard reading (escapes applied) comes first
    return dataset


def has_base(query: str) -> bool:
    """Whether the query's prologue has a BASE of its own (outside strings, IRIs, comments)."""
    return _BASE_DECL.search(_Reading(query).code) is not None


class _Reading:
    """The query text with strings and comments masked and IRIs set apart (placeholders)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.iris: list[str] = []
        self.code = _TOKENS.sub(self._mask, text)
        self.prefixes: dict[str, list[str]] = {}
        for decl in _PREFIX_DECL.finditer(self.code):
            self.prefixes.setdefault(decl.group("name"), []).append(self._iri(decl.group("iri")))

    def _mask(self, match: re.Match[str]) -> str:
        if match.group("string"):
            return '""'
        if match.group("comment"):
            return " "
        self.iris.append(match.group("iri")[1:-1])
        return f"<{len(self.iris) - 1}>"  # a placeholder: nothing inside an IRI is read as syntax

    def _iri(self, placeholder: str) -> str:
        return self.iris[int(placeholder[1:-1])]

    def _expand(self, match: re.Match[str], what: str) -> list[str]:
        """Every IRI a placeholder or prefixed name in `match` can stand for."""
        if match.group("full"):
            return [self._iri(match.group("full"))]
        namespaces = self.prefixes.get(match.group("prefix") or "")
        if not namespaces:
            name = f"{match.group('prefix') or ''}:{match.group('local')}"
            raise RemoteRefusal(f"{what} {name} uses an undeclared prefix")
        return [ns + match.group("local") for ns in namespaces]

    def check_language(self) -> None:
        found = _STORE_SCHEMES.search(self.text)
        if found:
            raise RemoteRefusal(
                f"'{found.group(1)}:' names a SPARQL store's built-in SQL functions; "
                "this endpoint answers standard SPARQL 1.1 only"
            )
        if _DEFINE.search(self.code):
            raise RemoteRefusal(
                "DEFINE is not SPARQL 1.1 (it is a store-specific pragma) and is not accepted here"
            )
        for call in _CALL.finditer(self.code):
            for iri in self._expand(call, "the function"):
                if not iri.startswith(ALLOWED_FUNCTION_NAMESPACES):
                    raise RemoteRefusal(f"the function <{iri}> is not supported by this endpoint")

    def check_dataset(self, graphs: frozenset[str], base_iri: str | None) -> QueryDataset | None:
        """FROM, FROM NAMED and GRAPH <iri> may name the release's graphs only.

        Virtuoso adds a query's FROM graphs to the protocol's dataset instead of giving
        way to it (SPARQL 1.1 Protocol §2.1.4), so `FROM <its system graph>` would read
        the store's own graphs; and for `GRAPH <iri>` outside the named graphs it
        answers ASK true and COUNT 1 where there is nothing. A graph outside the release
        is therefore refused by name, whatever the store would make of it.

        Returns the query's dataset, if it has one: the engine sends the same graphs as
        `default-graph-uri`/`named-graph-uri`, an empty half as a graph that exists
        nowhere. A store that follows the protocol (the protocol's dataset replaces the
        query's) and Virtuoso (it merges the two) then both see exactly the query's
        dataset; without it Virtuoso reads "FROM <g>, no FROM NAMED" as "GRAPH may see
        every graph I hold" where the query has no named graphs at all (SPARQL 1.1 §13.2).
        """
        bases = [(m.start(), self._iri(m.group("iri"))) for m in _BASE_DECL.finditer(self.code)]
        clauses: dict[str, list[str]] = {"FROM": [], "FROM NAMED": []}
        for ref in _DATASET_REF.finditer(self.code):
            keyword = " ".join(ref.group("keyword").upper().split())
            if not (ref.group("full") or ref.group("local") is not None):
                if keyword.startswith("FROM"):
                    raise RemoteRefusal(f"could not read the graph after {keyword}")
                continue  # GRAPH ?variable
            base = next((iri for at, iri in reversed(bases) if at < ref.start()), base_iri)
            for iri in self._expand(ref, f"the graph after {keyword}"):
                graph = iri if _SCHEME.match(iri) or not base else urljoin(base, iri)
                if graph not in graphs:
                    listed = ", ".join(f"<{g}>" for g in sorted(graphs))
                    raise RemoteRefusal(
                        f"{keyword} <{graph}>: this dataset has no such graph (its graphs: {listed})"
                    )
                if keyword in clauses:
                    clauses[keyword].append(graph)
        if not clauses["FROM"] and not clauses["FROM NAMED"]:
            return None
        return QueryDataset(
            tuple(dict.fromkeys(clauses["FROM"])), tuple(dict.fromkeys(clauses["FROM NAMED"]))
        )
