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

Fail closed: `bif:`/`sql:` are looked for everywhere (inside strings too, where they
cost at most a false refusal), function calls and `DEFINE` outside strings, IRIs and
comments. A prefixed name is expanded with every declaration of its prefix; a relative
or undeclared function IRI is refused rather than resolved by guesswork. (This reads
text, like `query_guard`, not a parse tree: rdflib's parser costs milliseconds per query
and would be a third reader of the same text, which is how guards get bypassed.)
"""

from __future__ import annotations

import re

from twinning_kg.query_guard import unescape

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


class RemoteRefusal(Exception):
    """The query uses something the remote store must not be asked; `message` says what."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check(query: str) -> None:
    """Raise RemoteRefusal if `query` reaches beyond the SPARQL the embedded engine speaks.

    Read twice: with SPARQL's `\\u` escapes applied (as the standard and pyoxigraph read
    it) and as written (Virtuoso applies them only inside strings), so an escaped quote
    cannot make one reading see a string where the store sees code.
    """
    for text in dict.fromkeys((unescape(query), query)):
        _check(text)


def _check(text: str) -> None:
    found = _STORE_SCHEMES.search(text)
    if found:
        raise RemoteRefusal(
            f"'{found.group(1)}:' names a SPARQL store's built-in SQL functions; "
            "this endpoint answers standard SPARQL 1.1 only"
        )
    iris: list[str] = []

    def mask(match: re.Match[str]) -> str:
        if match.group("string"):
            return '""'
        if match.group("comment"):
            return " "
        iris.append(match.group("iri")[1:-1])
        return f"<{len(iris) - 1}>"  # a placeholder: nothing inside an IRI is read as syntax

    code = _TOKENS.sub(mask, text)
    if _DEFINE.search(code):
        raise RemoteRefusal(
            "DEFINE is not SPARQL 1.1 (it is a store-specific pragma) and is not accepted here"
        )
    prefixes: dict[str, list[str]] = {}
    for decl in _PREFIX_DECL.finditer(code):
        prefixes.setdefault(decl.group("name"), []).append(iris[int(decl.group("iri")[1:-1])])
    for call in _CALL.finditer(code):
        if call.group("full"):
            candidates = [iris[int(call.group("full")[1:-1])]]
        else:
            namespaces = prefixes.get(call.group("prefix") or "")
            if not namespaces:
                name = f"{call.group('prefix') or ''}:{call.group('local')}"
                raise RemoteRefusal(f"the function {name} uses an undeclared prefix")
            candidates = [ns + call.group("local") for ns in namespaces]
        for iri in candidates:
            if not iri.startswith(ALLOWED_FUNCTION_NAMESPACES):
                raise RemoteRefusal(f"the function <{iri}> is not supported by this endpoint")
