"""German and English: the language of a page, its strings, and how it writes dates and numbers.

One message catalogue per language, `messages/en.toml` and `messages/de.toml` (data, not
code): every page, the audit report (web page, terminal text and the standalone HTML
file of `twinning-kg audit`) and the error pages take their strings from there.

The language is `?lang=de|en` when given, else the best match of Accept-Language
(RFC 9110 §12.5.4), else English. Dates are written as each language writes them, to
the precision the data states (docs/model.md): "14. August 1972" / "14 August 1972",
"August 1972", "1972", "1950er-Jahre" / "1950s", "um 1952" / "c. 1952".
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, datetime
from functools import cache
from pathlib import Path

MESSAGES = Path(__file__).resolve().parent / "messages"
LANGUAGES = ("en", "de")
DEFAULT_LANGUAGE = "en"


@cache
def catalogue(lang: str) -> dict[str, str]:
    """The strings of one language (`messages/{lang}.toml`)."""
    with (MESSAGES / f"{lang}.toml").open("rb") as fh:
        return tomllib.load(fh)


class Strings:
    """UI strings of one language; `s["key"]` or `s.key`, falling back to English, then the key."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE

    def __getitem__(self, key: str) -> str:
        return catalogue(self.lang).get(key) or catalogue(DEFAULT_LANGUAGE).get(key) or key

    def __getattr__(self, key: str) -> str:
        if key.startswith("_"):
            raise AttributeError(key)
        return self[key]

    def get(self, key: str, default: str) -> str:
        """The string in this very language, else `default` (no English fallback)."""
        return catalogue(self.lang).get(key) or default

    def prefixed(self, prefix: str) -> dict[str, str]:
        """The strings whose key starts with `prefix`, without it (e.g. the audit's `audit_`)."""
        english = catalogue(DEFAULT_LANGUAGE)
        return {key[len(prefix) :]: self[key] for key in english if key.startswith(prefix)}


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


# ------------------------------------------------------------------ numbers and dates


def format_number(value: int | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """Thousands separators as each language writes them (1,191 / 1.191)."""
    if value is None:
        return ""
    text = f"{int(value):,}"
    return text.replace(",", ".") if lang == "de" else text


_CALENDAR = re.compile(r"^(-?\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")
PRECISIONS = ("day", "month", "year", "decade", "approximate")


def format_date(value: object, precision: str | None = None, lang: str = DEFAULT_LANGUAGE) -> str:
    """A calendar value (xsd:date, xsd:gYearMonth, xsd:gYear, xsd:dateTime, or their lexical
    form) as `lang` writes it, no more precisely than `precision` (the last segment of a
    `{base}id/precision/…` concept) or the value itself says. Anything else: unchanged."""
    if isinstance(value, datetime):
        return _date_time(value, lang)
    text = value.isoformat() if isinstance(value, date) else str(value)
    if "T" in text:
        try:
            return _date_time(datetime.fromisoformat(text.replace("Z", "+00:00")), lang)
        except ValueError:
            return text
    match = _CALENDAR.match(text)
    if match is None:
        return text
    year, month, day = match.group(1), match.group(2), match.group(3)
    s = Strings(lang)
    if precision == "decade":
        return s.date_decade.format(decade=int(year) // 10 * 10)
    if precision == "approximate":
        return s.date_approximate.format(year=int(year))
    if precision == "year" or month is None:
        return str(int(year))
    month_name = s[f"month_{int(month)}"]
    if precision == "month" or day is None:
        return s.date_month.format(month=month_name, year=int(year))
    return s.date_day.format(day=int(day), month=month_name, year=int(year))


def _date_time(value: datetime, lang: str) -> str:
    s = Strings(lang)
    day = format_date(value.date().isoformat(), "day", lang)
    zone = "UTC" if value.utcoffset() is not None and not value.utcoffset() else (value.strftime("%z") or "")
    return s.date_time.format(date=day, time=value.strftime("%H:%M"), zone=zone).strip()
