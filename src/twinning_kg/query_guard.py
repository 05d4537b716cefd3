"""What a query may do on the public endpoint, decided before it reaches an engine.

pyoxigraph (like rdflib) executes `SERVICE <url>` over HTTP itself, so every SERVICE
clause is checked here against `Settings.service_allowlist`; a SERVICE with a variable
is refused because its target is only known at run time. Updates are refused: the
endpoint is read-only (pyoxigraph's query parser rejects them too, but with a message
about syntax; ours says why).

`FROM`, `FROM NAMED`, `GRAPH` and the protocol's `default-graph-uri`/`named-graph-uri`
need no check: pyoxigraph only *selects* graphs of the store by name and never
dereferences them (a `FROM <file:///etc/passwd>` is an empty graph; see
tests/test_sparql_safety.py).

Cost: the query text is scanned with one regular expression; rdflib's SPARQL parser
(slow, but it resolves prefixed names, BASE and `\\u` escapes exactly) only runs when the
unescaped text contains "service" at all, so ordinary queries pay microseconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

UPDATE_KEYWORDS = frozenset(
    {"insert", "delete", "load", "clear", "create", "drop", "copy", "move", "add", "with"}
)
QUERY_FORMS = frozenset({"select", "ask", "construct", "describe"})

_UNICODE_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")
# Everything whose inside is not SPARQL syntax: long and short strings, IRIs, comments.
# Scanning left to right, a '#' inside an IRI or a string is consumed with it.
_OPAQUE = re.compile(
    r"'''(?:[^'\\]|\\.|'(?!''))*'''"
    r'|"""(?:[^"\\]|\\.|"(?!""))*"""'
    r"|'(?:[^'\\\n\r]|\\.)*'"
    r'|"(?:[^"\\\n\r]|\\.)*"'
    r"|<[^<>\"{}|^`\\\x00-\x20]*>"
    r"|#[^\n\r]*",
    re.DOTALL,
)
# A keyword is a bare word: not part of a variable, prefixed name or longer name.
_WORD = re.compile(r"(?<![\w:?$.\-])([A-Za-z]+)(?![\w:\-])")
_PROLOGUE_WORDS = frozenset({"base", "prefix"})


class GuardError(Exception):
    """The query is refused; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class QueryInfo:
    """What the engine needs to know about an accepted query."""

    form: str  # SELECT | ASK | CONSTRUCT | DESCRIBE ("SELECT" if it could not be told)
    has_dataset_clause: bool  # FROM / FROM NAMED: then the union default graph must not override it
    services: tuple[str, ...]  # allowed SERVICE IRIs it calls (empty for most queries)


def unescape(text: str) -> str:
    """Apply SPARQL's codepoint escapes (\\uXXXX, \\UXXXXXXXX), which precede parsing."""
    if "\\u" not in text and "\\U" not in text:
        return text
    return _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), text)


def keywords(text: str) -> list[str]:
    """Bare words of the query outside strings, IRIs and comments, lower-cased."""
    return [w.lower() for w in _WORD.findall(_OPAQUE.sub(" ", text))]


def _form(words: list[str]) -> str:
    """The first keyword after the prologue decides the operation."""
    for word in words:
        if word in _PROLOGUE_WORDS:
            continue
        return word
    return ""


def check(query: str, allowlist: Iterable[str], base_iri: str | None = None) -> QueryInfo:
    """Accept or refuse `query`; raises GuardError (403 refused, 400 unverifiable).

    `base_iri`: what relative IRIs resolve against when the query has no BASE (the
    engine uses the same), so `SERVICE <relative>` is judged by the IRI that would be called.
    """
    text = unescape(query)
    words = keywords(text)
    first = _form(words)
    if first in UPDATE_KEYWORDS:
        raise GuardError(
            403,
            f"this endpoint is read-only: SPARQL Update ({first.upper()}) is not accepted",
        )
    form = first.upper() if first in QUERY_FORMS else "SELECT"
    has_dataset = "from" in words
    services: tuple[str, ...] = ()
    if "service" in text.lower():
        services = _check_services(text, words, frozenset(allowlist), base_iri)
    return QueryInfo(form=form, has_dataset_clause=has_dataset, services=services)


def _check_services(
    text: str, words: list[str], allowed: frozenset[str], base_iri: str | None
) -> tuple[str, ...]:
    try:
        targets = service_targets(text, base_iri)
    except Exception as exc:  # noqa: BLE001 - any parser failure means "cannot verify"
        if "service" not in words:
            return ()  # "service" only occurs inside strings, IRIs or comments
        raise GuardError(
            400, f"could not verify the SERVICE clauses of this query (rdflib's parser says: {exc})"
        ) from exc
    if "service" in words and not targets:
        # The keyword is there but rdflib saw no SERVICE clause: the parsers disagree
        # about this text, so we cannot vouch for what pyoxigraph would call.
        raise GuardError(400, "could not verify the SERVICE clauses of this query")
    for target in targets:
        if target is None:
            raise GuardError(403, "SERVICE with a variable is not allowed: its target must be a fixed IRI")
        if target not in allowed:
            listed = ", ".join(sorted(allowed)) or "none"
            raise GuardError(403, f"SERVICE <{target}> is not allowed on this endpoint (allowed: {listed})")
    return tuple(t for t in targets if t is not None)


def service_targets(text: str, base_iri: str | None = None) -> list[str | None]:
    """IRIs of every SERVICE clause (None for a variable), prefixes and BASE resolved.

    Uses rdflib's SPARQL parser and algebra translation: they expand prefixed names
    and relative IRIs exactly as the SPARQL grammar says. Nothing is evaluated.
    """
    from rdflib import URIRef
    from rdflib.plugins.sparql.algebra import translateQuery
    from rdflib.plugins.sparql.parser import parseQuery
    from rdflib.plugins.sparql.parserutils import CompValue

    algebra = translateQuery(parseQuery(text), base=base_iri).algebra
    found: list[str | None] = []
    seen: set[int] = set()
    stack: list[object] = [algebra]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, CompValue):
            if node.name == "ServiceGraphPattern":
                term = node.get("term")
                found.append(str(term) if isinstance(term, URIRef) else None)
            stack.extend(node.values())
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple, set)):
            stack.extend(node)
    return found
