"""What a query may do on the public endpoint, decided before it reaches an engine.

The guard reads the whole query with `query_syntax` (a tokenizer and reader of the
SPARQL 1.1 grammar, linear in the query's size, bounded by a `Budget`) and decides:

- SPARQL Update is refused (403): the endpoint is read-only.
- Every SERVICE clause must call an IRI of `Settings.service_allowlist`, compared
  exactly after BASE, prefixes, relative IRIs and \\u escapes are resolved; a SERVICE
  with a variable is refused (403), its target being known only at run time. This holds
  for SERVICE nested in another SERVICE too, although the outer service, not we, would
  call it: the endpoint does not relay calls to places it would not call itself.
- Anything the reader cannot fully analyse is refused: a syntax error is 400 with line
  and column, a query over the budget (size, tokens, nesting, SERVICE clauses) is 422.
  There is no "could not tell, let it pass".

The guard is not the only wall: query workers have no network of their own and reach
allow-listed services only through the egress proxy (see `egress` and `sandbox`). An
accepted SERVICE target is rewritten (`QueryInfo.routed`) to the relay that leads
there, so what the engine calls never depends on its parser agreeing with ours.

`FROM`, `FROM NAMED`, `GRAPH` and the protocol's `default-graph-uri`/`named-graph-uri`
need no check: pyoxigraph only *selects* graphs of the store by name and never
dereferences them (a `FROM <file:///etc/passwd>` is an empty graph; see
tests/test_sparql_safety.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from twinning_kg.query import syntax as query_syntax
from twinning_kg.query.iri_space import IriSpace
from twinning_kg.query.syntax import Budget

# The first query-form word of a plain query (`plain`): a guess the worker verifies.
_FORM_WORD = re.compile(r"\b(select|ask|construct|describe)\b", re.IGNORECASE | re.ASCII)
# A `<` both parsers read alike: an operator followed by white space (`<`, `<=`), or an IRI
# of the common characters. Any other (`?x<?a&&?b>?y`: an IRI for the grammar's longest-token
# rule, a comparison for pyoxigraph's parser) sends the query to the full reader.
_UNCLEAR_LT = re.compile(r"<(?!=?\s)(?![A-Za-z0-9:/#._~%+,;@-]*>)")

# Engines cache verdicts: this many, of queries up to this many characters (pages repeat theirs).
GUARD_CACHE_SIZE = 256
GUARD_CACHE_CHARS = 4096


class GuardError(Exception):
    """The query is refused; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class QueryInfo:
    """What the engine needs to know about an accepted query."""

    form: str  # SELECT | ASK | CONSTRUCT | DESCRIBE
    has_dataset_clause: bool  # FROM / FROM NAMED: then the union default graph must not override it
    services: tuple[str, ...]  # allowed SERVICE IRIs the engine calls, in order (empty for most queries)
    text: str = ""  # the query as analysed (\u escapes applied): what the engine must run
    # (start, end, IRI) of each SERVICE target token the engine calls: not those nested in
    # another SERVICE, which travel as text to that service (rewriting them would send it
    # our relay's address)
    spans: tuple[tuple[int, int, str], ...] = ()

    def routed(self, route: Callable[[str], str]) -> str:
        """The text to execute: the analysed text, with each SERVICE target the engine calls
        replaced by `<route(IRI)>`.

        Always the analysed text, never the one received: pyoxigraph applies \\u escapes
        only inside strings and IRIs, not everywhere as SPARQL 1.1 §19.2 says, so given a
        comment holding `\\u000A` it would read another query than the guard did. The
        analysed text holds no \\u escape (`query_syntax.unescape` refuses one that would
        survive), so the engine sees exactly the characters the guard read.
        """
        if not self.spans:
            return self.text
        parts: list[str] = []
        last = 0
        for start, end, iri in self.spans:
            parts += [self.text[last:start], f"<{route(iri)}>"]
            last = end
        parts.append(self.text[last:])
        return "".join(parts)


def check(
    query: str,
    allowlist: Iterable[str],
    base_iri: str | None = None,
    budget: Budget | None = None,
    iris: IriSpace | None = None,
) -> QueryInfo:
    """Accept or refuse `query`; raises GuardError (400 syntax, 403 refused, 422 over budget).

    `base_iri`: what relative IRIs resolve against when the query has no BASE (the
    engine uses the same), so `SERVICE <relative>` is judged by the IRI that would be called.
    `iris`: the server's IRI space; IRIs written under its public base are read as the
    canonical ones, and the guard judges (and the engine runs) that text.
    """
    try:
        analysis = query_syntax.analyse(query, base_iri, budget)
        mapped = iris.query_text(analysis) if iris is not None else None
        if mapped is not None:
            analysis = query_syntax.analyse(mapped, base_iri, budget)
    except query_syntax.UpdateRequest as exc:
        raise GuardError(
            403, f"this endpoint is read-only: SPARQL Update ({exc.keyword.upper()}) is not accepted"
        ) from exc
    except query_syntax.BudgetExceeded as exc:
        raise GuardError(
            422,
            f"this query is beyond what the endpoint accepts: {exc.message}; "
            "split it into smaller queries or download the dumps",
        ) from exc
    except query_syntax.QuerySyntaxError as exc:
        raise GuardError(400, f"SPARQL syntax error {exc.message}") from exc
    allowed = frozenset(allowlist)
    spans: list[tuple[int, int, str]] = []
    for clause in analysis.services:
        if clause.target is None:
            raise GuardError(
                403, f"SERVICE {clause.written} is not allowed: a SERVICE target must be a fixed IRI"
            )
        if clause.target not in allowed:
            listed = ", ".join(f"<{a}>" for a in sorted(allowed)) or "none"
            raise GuardError(
                403, f"SERVICE <{clause.target}> is not allowed on this endpoint (allowed: {listed})"
            )
        if not clause.nested:
            spans.append((clause.start, clause.end, clause.target))
    return QueryInfo(
        form=analysis.form,
        has_dataset_clause=analysis.has_dataset_clause,
        services=tuple(iri for _s, _e, iri in spans),
        text=analysis.text,
        spans=tuple(spans),
    )


def plain(query: str, budget: Budget) -> QueryInfo | None:
    """The `QueryInfo` of a query the engine may run exactly as received, decided from
    the text alone; None when the query must be read in full (`check`).

    Most public queries are lookups that cannot reach anything, and reading one with
    the full reader costs as much as the engine's own work. A query is plain only when
    it *cannot* hold what the guard exists to stop, so a wrong "not plain" costs time
    and never safety:

    - it is ASCII and has no backslash: no \\u escape can spell a keyword, and the
      engine reads exactly these characters;
    - "service" appears nowhere, in any case: the engine's parser compares keywords
      ASCII-case-insensitively, so there is no SERVICE clause (a variable or a string
      containing the word is enough to send the query to the full reader);
    - "from" appears nowhere: there is no FROM / FROM NAMED dataset clause;
    - the budget holds: no more characters than tokens allowed; brackets, which are
      what nests, at most (max_depth - 2) / 2 (the reader counts up to two levels per
      bracket, and one for the query);
    - every `<` is read alike by the grammar and by the engine's parser (`_UNCLEAR_LT`),
      so the engine never answers a query the grammar calls malformed (W3C syn-bad-26);
    - SPARQL Update is not decided here: the engine's query parser refuses it, and
      the worker then reads the query in full for the 403.

    The form is a guess (the first query-form word); the worker checks it against the
    kind of result and reads the query in full when they differ, as on a syntax error
    or a 406 (`worker._run_job`). tests/test_guard_plain.py holds the claims against
    the W3C syntax suite and the obfuscation battery.
    """
    if len(query) > min(budget.max_chars, budget.max_tokens) or not query.isascii() or "\\" in query:
        return None
    lowered = query.lower()
    if "service" in lowered or "from" in lowered:
        return None
    if 2 * (query.count("{") + query.count("(") + query.count("[")) + 2 > budget.max_depth:
        return None
    if "<" in query and _UNCLEAR_LT.search(query):
        return None
    found = _FORM_WORD.search(query)
    if found is None:
        return None
    return QueryInfo(form=found.group(1).upper(), has_dataset_clause=False, services=(), text=query)
