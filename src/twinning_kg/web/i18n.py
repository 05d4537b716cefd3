"""German and English UI strings, chosen per request.

The strings live in `i18n.toml` beside this module (data, not code). The language is
`?lang=de|en` when given, else the best match of Accept-Language, else English.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

STRINGS_FILE = Path(__file__).resolve().parent / "i18n.toml"
LANGUAGES = ("en", "de")
DEFAULT_LANGUAGE = "en"


@cache
def _catalog() -> dict[str, dict[str, str]]:
    with STRINGS_FILE.open("rb") as fh:
        return tomllib.load(fh)


class Strings:
    """UI strings of one language; `s["key"]` or `s.key`, falling back to English."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE

    def __getitem__(self, key: str) -> str:
        catalog = _catalog()
        return catalog.get(self.lang, {}).get(key) or catalog[DEFAULT_LANGUAGE].get(key) or key

    def __getattr__(self, key: str) -> str:
        if key.startswith("_"):
            raise AttributeError(key)
        return self[key]


def parse_accept_language(header: str | None) -> list[tuple[str, float]]:
    """Language ranges of an Accept-Language header with their q, best first (RFC 9110 §12.5.4)."""
    ranges: list[tuple[str, float, int]] = []
    for index, part in enumerate((header or "").split(",")):
        fields = [f.strip() for f in part.split(";")]
        tag = fields[0].lower()
        if not tag:
            continue
        q = 1.0
        for param in fields[1:]:
            if param.lower().startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        ranges.append((tag, q, index))
    ranges.sort(key=lambda r: (-r[1], r[2]))
    return [(tag, q) for tag, q, _ in ranges]


def negotiate_language(query_lang: str | None, accept_language: str | None) -> str:
    """`?lang=` wins; else the first acceptable of our languages; else English."""
    if query_lang and query_lang.lower() in LANGUAGES:
        return query_lang.lower()
    for tag, q in parse_accept_language(accept_language):
        if q <= 0:
            continue
        if tag == "*":
            return DEFAULT_LANGUAGE
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE
