"""SPARQL 1.1 query syntax, read exactly as far as the guard needs it.

The guard (`query_guard`) must know every SERVICE clause a query contains and the IRI
each one calls, without trusting a keyword scan (a `.SERVICE`, a `'>'` string or a
comment throws a scan out of step) and without rdflib's parser (slow, recursive and
superlinear: 150 flat SERVICE clauses took 17 s). This module is a tokenizer of the
grammar's terminals (SPARQL 1.1 Query §19.8: IRIREF, PNAME_NS/PNAME_LN with PN_LOCAL
escapes, the four string forms, comments, \\u escapes applied first as §19.2 says) and a
recursive-descent reader of the whole query grammar (§19.8 rules 1-139, plus the
`LATERAL` pattern and `ADJUST` function that pyoxigraph also accepts). It builds no
tree: it checks that the text is a query and records what the guard asks for.

Properties the guard relies on:
- Fail closed: anything that is not a complete, grammatical query is a `QuerySyntaxError`
  with line and column; there is no "could not tell, let it pass".
- Linear time and bounded depth: one regular-expression match per token, no
  backtracking over tokens, and the `Budget` (characters, tokens, nesting depth, SERVICE
  clauses) is checked while reading, so an oversized query stops early.
- Tokens follow the grammar's longest-match rule, so `?a<?b&&?c>?d` holds the IRI
  `<?b&&?c>` and is an error (W3C test syn-bad-26), although pyoxigraph's parser reads a
  comparison there. Where pyoxigraph is laxer than the grammar in a way that could hide
  a SERVICE clause (keywords glued to the next token: `SERVICE SILENT:x` read as
  SILENT + `:x`, `SERVICEx:y` as SERVICE + `x:y`), those spellings are refused rather
  than guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from twinning_kg.config import Settings

UPDATE_KEYWORDS = frozenset(
    {"insert", "delete", "load", "clear", "create", "drop", "copy", "move", "add", "with"}
)


class QuerySyntaxError(ValueError):
    """The text is not a SPARQL 1.1 query this reader can fully analyse."""

    def __init__(self, message: str, text: str = "", position: int | None = None) -> None:
        if position is not None:
            line = text.count("\n", 0, position) + 1
            column = position - (text.rfind("\n", 0, position) + 1) + 1
            message = f"at {line}:{column}: {message}"
        super().__init__(message)
        self.message = message


class BudgetExceeded(QuerySyntaxError):
    """The query is larger or deeper than this endpoint analyses (a limit, not a syntax error)."""


class UpdateRequest(QuerySyntaxError):
    """The text is a SPARQL Update request; `keyword` is its first operation."""

    def __init__(self, keyword: str) -> None:
        super().__init__(f"{keyword.upper()} is SPARQL Update")
        self.keyword = keyword


@dataclass(frozen=True)
class Budget:
    """How much query the reader accepts; the defaults are `config.Settings`'."""

    max_chars: int = 200_000
    max_tokens: int = 20_000
    max_depth: int = 100
    max_services: int = 10

    @classmethod
    def of(cls, settings: Settings) -> Budget:
        """The budget a server or build was configured with."""
        return cls(
            max_chars=settings.max_query_chars,
            max_tokens=settings.max_query_tokens,
            max_depth=settings.max_query_depth,
            max_services=settings.max_service_clauses,
        )


@dataclass(frozen=True)
class ServiceClause:
    """One `SERVICE [SILENT] target {…}` clause."""

    target: str | None  # the absolute IRI called; None when the target is a variable
    written: str  # the target as written, for messages
    start: int  # span of the target token in `Analysis.text`
    end: int
    silent: bool
    # Inside another SERVICE clause: sent as text to that service, which calls it (if it
    # federates at all); the engine never calls it itself.
    nested: bool


@dataclass(frozen=True)
class Analysis:
    text: str  # the query after \u escapes were applied: what was read, what spans refer to
    form: str  # SELECT | CONSTRUCT | DESCRIBE | ASK
    has_dataset_clause: bool  # FROM / FROM NAMED in the query itself
    services: tuple[ServiceClause, ...]
    tokens: int
    depth: int  # deepest nesting of brackets reached
    # (start, end, base) of every IRIREF token in `text`, with the BASE in force there (None:
    # none), so a caller can read each IRI as written (`query.iri_space`)
    iris: tuple[tuple[int, int, str | None], ...] = ()


# ------------------------------------------------------------------ \u escapes (§19.2)

_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")


def unescape(text: str) -> str:
    """Apply SPARQL's codepoint escapes, which precede tokenizing (SPARQL 1.1 §19.2).

    An escape must name a Unicode scalar value (U+0000..U+10FFFF, no surrogates); one
    whose result is itself an escape (`\\u005Cu0041`) is refused, because a second
    reader applying escapes again would see another text than we analysed.
    """
    if "\\u" not in text and "\\U" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        code = int(match.group(1) or match.group(2), 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            kind = "a surrogate" if 0xD800 <= code <= 0xDFFF else "beyond U+10FFFF"
            raise QuerySyntaxError(
                f"the escape {match.group(0)} is not a Unicode character ({kind}); "
                "\\u and \\U escapes must name a code point U+0000..U+10FFFF outside D800-DFFF",
                text,
                match.start(),
            )
        return chr(code)

    result = _ESCAPE.sub(replace, text)
    again = _ESCAPE.search(result)
    if again:
        raise QuerySyntaxError(
            f"an escape produces another escape ({again.group(0)}); write the character itself",
            result,
            again.start(),
        )
    return result


# ------------------------------------------------------------------ terminals (§19.8)

_PN_CHARS_BASE = (
    "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_PN_CHARS_U = _PN_CHARS_BASE + "_"
_PN_CHARS = _PN_CHARS_U + "\\-0-9\u00b7\u0300-\u036f\u203f-\u2040"
_PLX = r"%[0-9A-Fa-f]{2}|\\[_~.\-!$&'()*+,;=/?#@%]"
_PN_PREFIX = f"[{_PN_CHARS_BASE}](?:[{_PN_CHARS}.]*[{_PN_CHARS}])?"
_PN_LOCAL = f"(?:[{_PN_CHARS_U}:0-9]|{_PLX})(?:(?:[{_PN_CHARS}.:]|{_PLX})*(?:[{_PN_CHARS}:]|{_PLX}))?"
_VARNAME = f"[{_PN_CHARS_U}0-9][{_PN_CHARS_U}0-9\u00b7\u0300-\u036f\u203f-\u2040]*"
_ECHAR = r"\\[tbnrf\\\"']"
_EXPONENT = r"[eE][+-]?[0-9]+"
_NUMBER = rf"[+-]?(?:[0-9]+\.[0-9]*{_EXPONENT}|\.[0-9]+{_EXPONENT}|[0-9]+{_EXPONENT}|[0-9]*\.[0-9]+|[0-9]+)"

# Tokens, chosen by their first character: one short regular expression each instead of
# one alternation tried in order for every token (measured: 3x faster). Where two
# terminals share a first character the longer comes first: IRIREF before `<`, numbers
# before `.`/`+`/`-`, variables before the path modifier `?`, `^^` before `^`.
_SPACE = re.compile(r"(?:[ \t\r\n]++|#[^\r\n]*+)*+")
_STRING = re.compile(
    rf"(?P<string>'''(?:[^'\\]|{_ECHAR}|'(?!''))*'''"
    rf'|"""(?:[^"\\]|{_ECHAR}|"(?!""))*"""'
    rf"|'(?:[^'\\\n\r]|{_ECHAR})*'"
    rf'|"(?:[^"\\\n\r]|{_ECHAR})*")'
)
_PNAME = rf"(?P<pname>(?:{_PN_PREFIX})?:(?:{_PN_LOCAL})?)"
_NUMBER_OR_PUNCT = re.compile(rf"(?P<number>{_NUMBER})|(?P<punct>[.+\-])")
_PNAME_OR_WORD = re.compile(rf"{_PNAME}|(?P<word>[A-Za-z][A-Za-z0-9_]*)")
# Most letters start a keyword: match the plain word first, and read a prefixed name only
# when the word is followed by a character that can continue one.
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_NOT_AFTER_WORD = frozenset(":.-\u00b7")
_NON_ASCII_PNAME = re.compile(_PNAME)  # a prefix may start with any PN_CHARS_BASE letter
_BY_FIRST: dict[str, re.Pattern[str]] = {
    "<": re.compile(r"(?P<iri><[^<>\"{}|^`\\\x00-\x20]*>)|(?P<punct><=?)"),
    "'": _STRING,
    '"': _STRING,
    "?": re.compile(rf"(?P<var>\?{_VARNAME})|(?P<punct>\?)"),
    "$": re.compile(rf"(?P<var>\${_VARNAME})"),
    "_": re.compile(rf"(?P<bnode>_:[{_PN_CHARS_U}0-9](?:[{_PN_CHARS}.]*[{_PN_CHARS}])?)"),
    "@": re.compile(r"(?P<lang>@[a-zA-Z]+(?:-[a-zA-Z0-9]+)*)"),
    ":": _NON_ASCII_PNAME,
    "^": re.compile(r"(?P<punct>\^\^?)"),
    "&": re.compile(r"(?P<punct>&&)"),
    "|": re.compile(r"(?P<punct>\|\|?)"),
    "!": re.compile(r"(?P<punct>!=?)"),
    ">": re.compile(r"(?P<punct>>=?)"),
    **dict.fromkeys("0123456789.+-", _NUMBER_OR_PUNCT),
}
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_SINGLE = frozenset("{}()[];,=*/")
_LOCAL_ESCAPE = re.compile(r"\\(.)")

# Built-in calls (§17.4) by arity: an int, (min, max), "list" (ExpressionList) or a special form.
_BUILTINS: dict[str, object] = {
    **dict.fromkeys(("rand", "now", "uuid", "struuid"), 0),
    **dict.fromkeys(
        (
            "str", "lang", "datatype", "iri", "uri", "abs", "ceil", "floor", "round", "strlen",
            "ucase", "lcase", "encode_for_uri", "year", "month", "day", "hours", "minutes",
            "seconds", "timezone", "tz", "md5", "sha1", "sha256", "sha384", "sha512", "isiri",
            "isuri", "isblank", "isliteral", "isnumeric",
        ),
        1,
    ),
    **dict.fromkeys(
        (
            "langmatches", "contains", "strstarts", "strends", "strbefore", "strafter", "strlang",
            "strdt", "sameterm", "adjust",
        ),
        2,
    ),
    "if": 3,
    "regex": (2, 3),
    "substr": (2, 3),
    "replace": (3, 4),
    "concat": "list",
    "coalesce": "list",
    "bnode": "bnode",
    "bound": "bound",
}
_AGGREGATES = frozenset({"count", "sum", "min", "max", "avg", "sample", "group_concat"})
_PATTERN_KEYWORDS = frozenset(
    {"optional", "minus", "graph", "service", "filter", "bind", "values", "lateral"}
)
_RELATIONAL = frozenset({"=", "!=", "<", ">", "<=", ">="})
_BINARY = frozenset({"||", "&&", "+", "-", "*", "/"})


def analyse(query: str, base_iri: str | None = None, budget: Budget | None = None) -> Analysis:
    """Read `query` completely; raise QuerySyntaxError (or a subclass) unless it is a query.

    `base_iri`: what relative IRIs resolve against when the query has no BASE (the
    engine is given the same).
    """
    budget = budget or Budget()
    if len(query) > budget.max_chars:
        raise BudgetExceeded(
            f"the query has {len(query)} characters; this endpoint analyses at most {budget.max_chars}"
        )
    text = unescape(query)
    reader = _Reader(text, base_iri, budget)
    try:
        return reader.read()
    except RecursionError as exc:  # only reachable with a max_depth set beyond Python's stack
        raise BudgetExceeded("the query is nested too deeply to analyse") from exc


def resolve(reference: str, base: str | None) -> str:
    """RFC 3986 §5.2 reference resolution (urllib's urljoin skips schemes it does not know)."""
    if _ABSOLUTE_PLAIN.match(reference) and "/." not in reference:
        return reference  # absolute, no dot segments: resolution changes nothing
    match = _URI.match(reference)
    scheme, authority, path, query, fragment = match.group(2, 4, 5, 7, 9) if match else (None,) * 5
    if scheme is not None:
        return _recompose(scheme, authority, _remove_dots(path or ""), query, fragment)
    if base is None:
        return reference
    bmatch = _URI.match(base)
    assert bmatch is not None  # the pattern matches every string
    bscheme, bauthority, bpath, bquery = bmatch.group(2, 4, 5, 7)
    if authority is not None:
        return _recompose(bscheme, authority, _remove_dots(path or ""), query, fragment)
    if not path:
        return _recompose(bscheme, bauthority, bpath or "", query if query is not None else bquery, fragment)
    if path.startswith("/"):
        return _recompose(bscheme, bauthority, _remove_dots(path), query, fragment)
    if bauthority is not None and not bpath:
        merged = "/" + path
    else:
        merged = (bpath or "")[: (bpath or "").rfind("/") + 1] + path
    return _recompose(bscheme, bauthority, _remove_dots(merged), query, fragment)


_ABSOLUTE_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_URI = re.compile(r"^(([A-Za-z][A-Za-z0-9+.\-]*):)?(//([^/?#]*))?([^?#]*)(\?([^#]*))?(#(.*))?$", re.DOTALL)


def _remove_dots(path: str) -> str:
    output: list[str] = []
    while path:
        if path.startswith("../"):
            path = path[3:]
        elif path.startswith("./") or path.startswith("/./"):
            path = path[2:]
        elif path == "/.":
            path = "/"
        elif path.startswith("/../") or path == "/..":
            path = "/" + path[4:] if path.startswith("/../") else "/"
            if output:
                output.pop()
        elif path in (".", ".."):
            path = ""
        else:
            start = 1 if path.startswith("/") else 0
            cut = path.find("/", start)
            cut = len(path) if cut < 0 else cut
            output.append(path[:cut])
            path = path[cut:]
    return "".join(output)


def _recompose(
    scheme: str | None, authority: str | None, path: str, query: str | None, fragment: str | None
) -> str:
    out = f"{scheme}:" if scheme is not None else ""
    if authority is not None:
        out += f"//{authority}"
    out += path
    if query is not None:
        out += f"?{query}"
    if fragment is not None:
        out += f"#{fragment}"
    return out


class _Reader:
    """Recursive descent over the SPARQL 1.1 query grammar, one token of lookahead."""

    __slots__ = (
        "text", "base", "budget", "prefixes", "services", "has_dataset", "count", "depth",
        "deepest", "kind", "value", "lower", "start", "end", "in_service", "iris",
    )

    def __init__(self, text: str, base: str | None, budget: Budget) -> None:
        self.text = text
        self.base = base
        self.budget = budget
        self.prefixes: dict[str, str] = {}
        self.services: list[ServiceClause] = []
        self.has_dataset = False
        self.count = 0
        self.depth = 0
        self.deepest = 0
        self.in_service = 0
        self.iris: list[tuple[int, int, str | None]] = []
        # the current token
        self.kind = ""
        self.value = ""
        self.lower = ""
        self.start = 0
        self.end = 0
        self._lex(0)

    # -- tokens

    def _lex(self, pos: int) -> None:
        text = self.text
        if pos < len(text) and text[pos] in " \t\r\n#":
            pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr] - always matches
        self.count += 1
        if self.count > self.budget.max_tokens:
            raise BudgetExceeded(
                f"the query has more than {self.budget.max_tokens} tokens, the most this endpoint analyses",
                text,
                pos,
            )
        self.start = pos
        self.lower = ""
        if pos >= len(text):
            self.kind, self.value, self.end = "end", "", pos
            return
        first = text[pos]
        if first in _SINGLE:
            self.kind, self.value, self.end = "punct", first, pos + 1
            return
        if first in _LETTERS:
            word = _WORD.match(text, pos).end()  # type: ignore[union-attr] - a letter matches
            after = text[word : word + 1]
            if not after or (after not in _NOT_AFTER_WORD and after < "\x80"):
                self.kind, self.value, self.end = "word", text[pos:word], word
                self.lower = self.value.lower()
                return
            pattern = _PNAME_OR_WORD
        else:
            pattern = _BY_FIRST.get(first) or (_NON_ASCII_PNAME if first > "\x7f" else None)
        match = pattern.match(text, pos) if pattern is not None else None
        if match is None:
            raise QuerySyntaxError(f"unexpected character {first!r}", text, pos)
        self.kind = kind = match.lastgroup or ""
        self.value = match.group()
        self.end = match.end()
        if kind == "word":
            self.lower = self.value.lower()
        elif kind == "iri":
            self.iris.append((pos, self.end, self.base))

    def _advance(self) -> None:
        self._lex(self.end)

    def _fail(self, expected: str) -> QuerySyntaxError:
        found = "the end of the query" if self.kind == "end" else repr(self.value[:40])
        return QuerySyntaxError(f"expected {expected}, found {found}", self.text, self.start)

    def _is(self, keyword: str) -> bool:
        return self.lower == keyword

    def _accept(self, keyword: str) -> bool:
        if self.lower == keyword:
            self._advance()
            return True
        return False

    def _expect(self, keyword: str) -> None:
        if self.lower != keyword:
            raise self._fail(keyword.upper())
        self._advance()

    def _at(self, punct: str) -> bool:
        return self.kind == "punct" and self.value == punct

    def _take(self, punct: str) -> bool:
        if self.kind == "punct" and self.value == punct:
            self._advance()
            return True
        return False

    def _need(self, punct: str) -> None:
        if not (self.kind == "punct" and self.value == punct):
            raise self._fail(f"'{punct}'")
        self._advance()

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > self.deepest:
            self.deepest = self.depth
            if self.depth > self.budget.max_depth:
                raise BudgetExceeded(
                    f"the query nests deeper than {self.budget.max_depth} levels, the most this "
                    "endpoint analyses",
                    self.text,
                    self.start,
                )

    def _leave(self) -> None:
        self.depth -= 1

    # -- query (rules 1-2, 7-16)

    def read(self) -> Analysis:
        self._prologue()
        if self.lower in UPDATE_KEYWORDS:
            raise UpdateRequest(self.lower)
        form = self.lower
        if form == "select":
            self._select_clause()
            self._dataset_clauses()
            self._where_clause()
            self._solution_modifier()
        elif form == "construct":
            self._construct()
        elif form == "describe":
            self._describe()
        elif form == "ask":
            self._advance()
            self._dataset_clauses()
            self._where_clause()
            self._solution_modifier()
        else:
            raise self._fail("SELECT, CONSTRUCT, DESCRIBE or ASK")
        self._values_clause()
        if self.kind != "end":
            raise self._fail("the end of the query")
        return Analysis(
            text=self.text,
            form=form.upper(),
            has_dataset_clause=self.has_dataset,
            services=tuple(self.services),
            tokens=self.count,
            depth=self.deepest,
            iris=tuple(self.iris),
        )

    def _prologue(self) -> None:
        while True:
            if self._accept("base"):
                if self.kind != "iri":
                    raise self._fail("an IRI in <…> after BASE")
                self.base = resolve(self.value[1:-1], self.base)
                self._advance()
            elif self._accept("prefix"):
                if self.kind != "pname" or self.value.find(":") != len(self.value) - 1:
                    raise self._fail("a prefix such as ex: after PREFIX")
                name = self.value[:-1]
                self._advance()
                if self.kind != "iri":
                    raise self._fail("an IRI in <…> after PREFIX")
                self.prefixes[name] = resolve(self.value[1:-1], self.base)
                self._advance()
            else:
                return

    def _select_clause(self) -> None:
        self._expect("select")
        if not self._accept("distinct"):
            self._accept("reduced")
        if self._take("*"):
            return
        projected = 0
        while True:
            if self.kind == "var":
                self._advance()
            elif self._at("("):
                self._advance()
                self._expression()
                self._expect("as")
                self._var()
                self._need(")")
            else:
                break
            projected += 1
        if not projected:
            raise self._fail("'*', a variable or (expression AS ?var) after SELECT")

    def _construct(self) -> None:
        self._expect("construct")
        if self._at("{"):
            self._enter()
            self._advance()
            if not self._at("}"):
                self._triples_template()
            self._need("}")
            self._leave()
            self._dataset_clauses()
            self._where_clause()
        else:
            self._dataset_clauses()
            self._expect("where")
            self._enter()
            self._need("{")
            if not self._at("}"):
                self._triples_template()
            self._need("}")
            self._leave()
        self._solution_modifier()

    def _describe(self) -> None:
        self._expect("describe")
        if not self._take("*"):
            if not self._starts_var_or_iri():
                raise self._fail("'*', a variable or an IRI after DESCRIBE")
            while self._starts_var_or_iri():
                self._var_or_iri()
        self._dataset_clauses()
        if self._is("where") or self._at("{"):
            self._where_clause()
        self._solution_modifier()

    def _dataset_clauses(self) -> None:
        while self._accept("from"):
            self._accept("named")
            self._iri()
            self.has_dataset = True

    def _where_clause(self) -> None:
        self._accept("where")
        self._group_graph_pattern()

    def _solution_modifier(self) -> None:
        if self._accept("group"):
            self._expect("by")
            conditions = 0
            while True:
                if self.kind == "var":
                    self._advance()
                elif self._at("("):
                    self._enter()
                    self._advance()
                    self._expression()
                    if self._accept("as"):
                        self._var()
                    self._need(")")
                    self._leave()
                elif self._starts_call():
                    self._call()
                else:
                    break
                conditions += 1
            if not conditions:
                raise self._fail("a condition after GROUP BY")
        if self._accept("having"):
            self._constraint()
            while self._at("(") or self._starts_call():
                self._constraint()
        if self._accept("order"):
            self._expect("by")
            conditions = 0
            while True:
                if self._is("asc") or self._is("desc"):
                    self._advance()
                    self._bracketted()
                elif self.kind == "var":
                    self._advance()
                elif self._at("(") or self._starts_call():
                    self._constraint()
                else:
                    break
                conditions += 1
            if not conditions:
                raise self._fail("a condition after ORDER BY")
        if self._accept("limit"):
            self._integer()
            if self._accept("offset"):
                self._integer()
        elif self._accept("offset"):
            self._integer()
            if self._accept("limit"):
                self._integer()

    def _integer(self) -> None:
        if self.kind != "number" or not self.value.isdigit():
            raise self._fail("an integer")
        self._advance()

    def _values_clause(self) -> None:
        if self._accept("values"):
            self._data_block()

    # -- graph patterns (rules 53-73)

    def _group_graph_pattern(self) -> None:
        self._enter()
        self._need("{")
        if self._is("select"):
            self._select_clause()
            self._where_clause()
            self._solution_modifier()
            self._values_clause()
        else:
            if self._starts_triples():
                self._triples_block()
            while self._at("{") or self.lower in _PATTERN_KEYWORDS:
                self._graph_pattern_not_triples()
                self._take(".")
                if self._starts_triples():
                    self._triples_block()
        self._need("}")
        self._leave()

    def _graph_pattern_not_triples(self) -> None:
        if self._at("{"):
            self._group_graph_pattern()
            while self._accept("union"):
                self._group_graph_pattern()
            return
        keyword = self.lower
        self._advance()
        if keyword in ("optional", "minus", "lateral"):
            self._group_graph_pattern()
        elif keyword == "graph":
            self._var_or_iri()
            self._group_graph_pattern()
        elif keyword == "service":
            self._service()
        elif keyword == "filter":
            self._constraint()
        elif keyword == "bind":
            self._enter()
            self._need("(")
            self._expression()
            self._expect("as")
            self._var()
            self._need(")")
            self._leave()
        else:  # values
            self._data_block()

    def _service(self) -> None:
        silent = self._accept("silent")
        start, end, written = self.start, self.end, self.value
        if self.kind == "var":
            target = None
            self._advance()
        elif self.kind in ("iri", "pname"):
            if not silent and self.kind == "pname" and written.lower().startswith("silent"):
                # pyoxigraph reads `SERVICE SILENT:x` as SILENT + `:x` (keywords need no
                # separator there): two readings, so neither is taken.
                raise QuerySyntaxError(
                    f"ambiguous SERVICE target {written}: a prefix starting with 'silent' "
                    "right after SERVICE can be read as the keyword SILENT; rename the prefix",
                    self.text,
                    start,
                )
            target = self._iri()
        else:
            raise self._fail("an IRI or a variable after SERVICE")
        if len(self.services) >= self.budget.max_services:
            raise BudgetExceeded(
                f"the query has more than {self.budget.max_services} SERVICE clauses, the most this "
                "endpoint accepts",
                self.text,
                start,
            )
        self.services.append(ServiceClause(target, written, start, end, silent, self.in_service > 0))
        self.in_service += 1
        self._group_graph_pattern()
        self.in_service -= 1

    def _data_block(self) -> None:
        if self.kind == "var":
            self._advance()
            self._enter()
            self._need("{")
            while not self._at("}"):
                self._data_block_value()
            self._advance()
            self._leave()
            return
        self._enter()
        self._need("(")
        while self.kind == "var":
            self._advance()
        self._need(")")
        self._need("{")
        while self._take("("):
            while not self._at(")"):
                self._data_block_value()
            self._advance()
        self._need("}")
        self._leave()

    def _data_block_value(self) -> None:
        if self._accept("undef") or self._accept("true") or self._accept("false"):
            return
        if self.kind in ("iri", "pname"):
            self._iri()
        elif self.kind == "string":
            self._rdf_literal()
        elif self.kind == "number":
            self._advance()
        else:
            raise self._fail("an IRI, a literal or UNDEF")

    # -- triples (rules 74-104)

    def _starts_triples(self, pattern: bool = True) -> bool:
        kind = self.kind
        if kind in ("var", "iri", "pname", "string", "number", "bnode"):
            if pattern and kind == "pname" and self.value.lower().startswith("service"):
                # pyoxigraph would also try SERVICE + the rest of this name: refuse the
                # spelling instead of choosing one reading.
                raise QuerySyntaxError(
                    f"ambiguous {self.value}: a prefixed name starting with 'service' where a "
                    "pattern may start can be read as the keyword SERVICE; rename the prefix",
                    self.text,
                    self.start,
                )
            return True
        if kind == "punct":
            return self.value in ("[", "(")
        return self.lower in ("true", "false")

    def _triples_template(self) -> None:
        self._triples_same_subject(path=False)
        while self._take("."):
            if not self._starts_triples(pattern=False):
                return
            self._triples_same_subject(path=False)

    def _triples_block(self) -> None:
        self._triples_same_subject(path=True)
        while self._take("."):
            if not self._starts_triples():
                return
            self._triples_same_subject(path=True)

    def _triples_same_subject(self, path: bool) -> None:
        if self._at("[") or self._at("("):
            opener = self.value
            self._enter()
            self._advance()
            if self._take("]" if opener == "[" else ")"):  # ANON or NIL: a plain term
                self._leave()
                self._property_list(path, required=True)
                return
            if opener == "[":
                self._property_list(path, required=True)
                self._need("]")
            else:
                while not self._at(")"):
                    self._graph_node(path)
                self._advance()
            self._leave()
            self._property_list(path, required=False)
            return
        self._var_or_term()
        self._property_list(path, required=True)

    def _property_list(self, path: bool, required: bool) -> None:
        if not self._starts_verb(path):
            if required:
                raise self._fail("a predicate")
            return
        self._verb(path)
        self._object_list(path)
        while self._take(";"):
            if self._starts_verb(path):
                self._verb(path)
                self._object_list(path)

    def _starts_verb(self, path: bool) -> bool:
        if self.kind in ("var", "iri", "pname") or (self.kind == "word" and self.value == "a"):
            return True
        return path and self.kind == "punct" and self.value in ("^", "!", "(")

    def _verb(self, path: bool) -> None:
        if self.kind == "var":
            self._advance()
        elif path:
            self._path()
        elif self.kind == "word" and self.value == "a":
            self._advance()
        else:
            self._iri()

    def _object_list(self, path: bool) -> None:
        self._graph_node(path)
        while self._take(","):
            self._graph_node(path)

    def _graph_node(self, path: bool) -> None:
        if self._at("[") or self._at("("):
            opener = self.value
            self._enter()
            self._advance()
            if opener == "[":
                if not self._take("]"):
                    self._property_list(path, required=True)
                    self._need("]")
            else:
                while not self._at(")"):
                    self._graph_node(path)
                self._advance()
            self._leave()
            return
        self._var_or_term()

    def _path(self) -> None:
        self._path_sequence()
        while self._take("|"):
            self._path_sequence()

    def _path_sequence(self) -> None:
        self._path_element()
        while self._take("/"):
            self._path_element()

    def _path_element(self) -> None:
        self._take("^")
        if self.kind in ("iri", "pname"):
            self._iri()
        elif self.kind == "word" and self.value == "a":
            self._advance()
        elif self._take("!"):
            if self._at("("):
                self._enter()
                self._advance()
                if not self._at(")"):
                    self._negated_one()
                    while self._take("|"):
                        self._negated_one()
                self._need(")")
                self._leave()
            else:
                self._negated_one()
        elif self._at("("):
            self._enter()
            self._advance()
            self._path()
            self._need(")")
            self._leave()
        else:
            raise self._fail("a property path")
        if self.kind == "punct" and self.value in ("?", "*", "+"):
            self._advance()

    def _negated_one(self) -> None:
        self._take("^")
        if self.kind == "word" and self.value == "a":
            self._advance()
        else:
            self._iri()

    # -- terms

    def _var(self) -> None:
        if self.kind != "var":
            raise self._fail("a variable")
        self._advance()

    def _starts_var_or_iri(self) -> bool:
        return self.kind in ("var", "iri", "pname")

    def _var_or_iri(self) -> None:
        if self.kind == "var":
            self._advance()
        else:
            self._iri()

    def _var_or_term(self) -> None:
        kind = self.kind
        if kind in ("var", "bnode", "number"):
            self._advance()
        elif kind in ("iri", "pname"):
            self._iri()
        elif kind == "string":
            self._rdf_literal()
        elif self.lower in ("true", "false"):
            self._advance()
        elif kind == "punct" and self.value in ("[", "("):
            closer = "]" if self.value == "[" else ")"
            self._advance()
            self._need(closer)
        else:
            raise self._fail("a variable or an RDF term")

    def _iri(self) -> str:
        """Read an IRIREF or prefixed name; return it as an absolute IRI (as far as BASE allows)."""
        if self.kind == "iri":
            iri = resolve(self.value[1:-1], self.base)
        elif self.kind == "pname":
            prefix, _, local = self.value.partition(":")
            namespace = self.prefixes.get(prefix)
            if namespace is None:
                raise QuerySyntaxError(f"the prefix {prefix}: is not declared", self.text, self.start)
            iri = namespace + (_LOCAL_ESCAPE.sub(r"\1", local) if "\\" in local else local)
        else:
            raise self._fail("an IRI")
        self._advance()
        return iri

    def _rdf_literal(self) -> None:
        self._advance()
        if self.kind == "lang":
            self._advance()
        elif self._take("^^"):
            self._iri()

    # -- expressions (rules 110-134)

    def _expression(self) -> None:
        """An expression, read flat: operands joined by operators.

        No tree is needed, so precedence is not modelled; what the grammar forbids is:
        at most one comparison (or IN / NOT IN) between two `&&`/`||`, and nothing but
        `&&`/`||` after an IN list.
        """
        self._enter()
        compared = False
        self._unary()
        while True:
            kind, value = self.kind, self.value
            if kind == "punct" and value in _BINARY:
                if value in ("&&", "||"):
                    compared = False
                self._advance()
                self._unary()
            elif kind == "punct" and value in _RELATIONAL:
                if compared:
                    raise self._fail("'&&', '||' or ')' (one comparison per operand)")
                compared = True
                self._advance()
                self._unary()
            elif kind == "iri":
                # `?a<?b&&?c>?d`: the longest-token rule (§19.8) makes `<?b&&?c>` an IRI
                raise QuerySyntaxError(
                    f"{value[:40]} is read as an IRI where an operator is expected; "
                    "put spaces around < and > when they compare",
                    self.text,
                    self.start,
                )
            elif kind == "number" and value[0] in "+-":
                self._advance()  # `?a -1`: AdditiveExpression's signed-literal form
            elif self.lower in ("in", "not"):
                if compared:
                    raise self._fail("'&&', '||' or ')' (one comparison per operand)")
                compared = True
                if self._accept("not"):
                    self._expect("in")
                else:
                    self._advance()
                self._expression_list()
                if not (self._at("&&") or self._at("||")):
                    break
            else:
                break
        self._leave()

    def _unary(self) -> None:
        while self.kind == "punct" and self.value in ("!", "+", "-"):
            self._advance()
        self._primary()

    def _primary(self) -> None:
        kind = self.kind
        if kind == "punct" and self.value == "(":
            self._bracketted()
        elif kind in ("var", "number"):
            self._advance()
        elif kind == "string":
            self._rdf_literal()
        elif kind in ("iri", "pname"):
            self._iri()
            if self._at("("):
                self._arguments(allow_distinct=True)
        elif self.lower in ("true", "false"):
            self._advance()
        elif self._starts_call():
            self._call()
        else:
            raise self._fail("an expression")

    def _bracketted(self) -> None:
        self._enter()
        self._need("(")
        self._expression()
        self._need(")")
        self._leave()

    def _constraint(self) -> None:
        if self._at("("):
            self._bracketted()
        elif self._starts_call():
            self._call()
        else:
            raise self._fail("a constraint: (expression), a built-in call or a function call")

    def _starts_call(self) -> bool:
        lower = self.lower
        if lower:
            return lower in _BUILTINS or lower in _AGGREGATES or lower in ("exists", "not")
        return self.kind in ("iri", "pname")

    def _call(self) -> None:
        """BuiltInCall, Aggregate, EXISTS / NOT EXISTS, or FunctionCall (iri ArgList)."""
        if self.kind in ("iri", "pname"):
            self._iri()
            self._arguments(allow_distinct=True)
            return
        name = self.lower
        self._advance()
        if name == "exists":
            self._group_graph_pattern()
            return
        if name == "not":
            self._expect("exists")
            self._group_graph_pattern()
            return
        if name in _AGGREGATES:
            self._aggregate(name)
            return
        arity = _BUILTINS[name]
        if arity == "list":
            self._expression_list()
        elif arity == 0:
            self._nil()
        elif arity == "bnode":
            self._enter()
            self._need("(")
            if not self._take(")"):
                self._expression()
                self._need(")")
            self._leave()
        elif arity == "bound":
            self._enter()
            self._need("(")
            self._var()
            self._need(")")
            self._leave()
        else:
            low, high = arity if isinstance(arity, tuple) else (arity, arity)
            self._enter()
            self._need("(")
            self._expression()
            count = 1
            while count < high and self._take(","):
                self._expression()
                count += 1
            if count < low:
                raise self._fail(f"{low} arguments to {name.upper()}")
            self._need(")")
            self._leave()

    def _aggregate(self, name: str) -> None:
        self._enter()
        self._need("(")
        self._accept("distinct")
        if name == "count" and self._take("*"):
            pass
        else:
            self._expression()
        if name == "group_concat" and self._take(";"):
            self._expect("separator")
            self._need("=")
            if self.kind != "string":
                raise self._fail("a string after SEPARATOR =")
            self._advance()
        self._need(")")
        self._leave()

    def _nil(self) -> None:
        self._need("(")
        self._need(")")

    def _arguments(self, allow_distinct: bool) -> None:
        self._enter()
        self._need("(")
        if not self._take(")"):
            if allow_distinct:
                self._accept("distinct")
            self._expression()
            while self._take(","):
                self._expression()
            self._need(")")
        self._leave()

    def _expression_list(self) -> None:
        self._arguments(allow_distinct=False)
