"""Checks a file from outside passes before any parser sees it: XML without a DTD, JSON of sane depth.

Why before, and not by configuring the parsers:

- **XML.** Oxigraph's RDF/XML parser (what `check-links` uses) expands the internal
  entities a DOCTYPE declares and has no switch to stop it, so a 1 KB "billion laughs"
  file grows to gigabytes in memory; other XML parsers add external entities
  (`<!ENTITY x SYSTEM "file:///etc/passwd">`) on top. A DTD has no role in RDF/XML
  beyond such abbreviations, so any markup declaration (`<!DOCTYPE`, `<!ENTITY`, ...)
  is refused outright, the way defusedxml's `forbid_dtd` does. The scan is on the text
  the parser would read: Oxigraph reads UTF-8 only, and anything else is refused here
  too, so an encoding trick (UTF-16, UTF-7, a BOM) cannot hide a declaration from the
  scan and show it to a parser. Comments and CDATA are not skipped: a `<!DOCTYPE`
  inside one is refused as well (fail closed; no real file needs that).
- **JSON.** Python's `json` module recurses once per level and raises `RecursionError`
  around 1,000 levels (a traceback, not an error message); RDF and SPARQL results
  never nest deeper than a few dozen. `json_document` measures the nesting first,
  without recursion, and names the line and column where it passes `MAX_JSON_DEPTH`.

Every refusal is an `UntrustedInputError` whose text is one line: `FILE[:LINE:COLUMN]: what`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

# Deepest JSON nesting accepted: far above any JSON-LD document or SPARQL result
# (a few dozen levels), far below Python's recursion limit (~1,000).
MAX_JSON_DEPTH = 256

# Every markup declaration starts with "<!"; only comments and CDATA sections are content.
_DECLARATION = re.compile(r"<!(?!--|\[CDATA\[)")
# A JSON string (skipped whole, so brackets inside strings do not count) or a bracket.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


class UntrustedInputError(ValueError):
    """A file refused before parsing; `str()` is one line naming the file (and line:column)."""


def _where(source: str, text: str, offset: int) -> str:
    """`source:line:column` (1-based) of the character at `offset` in `text`."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"{source}:{line}:{column}"


def decode_utf8(data: bytes, source: str | Path, what: str = "the file") -> str:
    """`data` as text, strictly UTF-8 (a UTF-8 BOM is dropped); anything else is refused."""
    if data.startswith(_UTF16_32_BOMS):
        raise UntrustedInputError(f"{source}: {what} is UTF-16 or UTF-32; only UTF-8 is accepted")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start].decode("utf-8-sig", errors="replace")
        raise UntrustedInputError(
            f"{_where(str(source), prefix, len(prefix))}: {what} is not UTF-8 "
            f"({exc.reason} at byte {exc.start}); only UTF-8 is accepted"
        ) from exc


def check_xml(data: bytes, source: str | Path) -> None:
    """Refuse XML that is not UTF-8 or that carries a DTD or any other markup declaration."""
    text = decode_utf8(data, source, "the XML")
    found = _DECLARATION.search(text)
    if found is not None:
        declared = text[found.start() : found.start() + 12].split(maxsplit=1)[0]
        raise UntrustedInputError(
            f"{_where(str(source), text, found.start())}: refused: the XML has a markup declaration "
            f"({declared}...); a DOCTYPE's entities can expand without bound (\"billion laughs\") or "
            "read local files, so DTDs are not accepted: write the entities out or send Turtle"
        )


def check_json_depth(text: str, source: str | Path, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse JSON nested deeper than `limit` (measured without recursion)."""
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        char = token.group()[0]
        if char in "[{":
            depth += 1
            if depth > limit:
                raise UntrustedInputError(
                    f"{_where(str(source), text, token.start())}: refused: JSON nested deeper than "
                    f"{limit} levels"
                )
        elif char in "]}":
            depth -= 1


def json_document(data: bytes, source: str | Path, what: str = "JSON") -> Any:
    """Parse untrusted JSON: UTF-8, depth-checked, syntax errors with line and column."""
    text = decode_utf8(data, source, f"the {what}")
    check_json_depth(text, source)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UntrustedInputError(f"{source}:{exc.lineno}:{exc.colno}: invalid {what}: {exc.msg}") from exc
    except RecursionError as exc:  # unreachable after check_json_depth; never a traceback anyway
        raise UntrustedInputError(f"{source}: refused: {what} nested too deeply") from exc
