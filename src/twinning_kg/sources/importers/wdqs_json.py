"""Read a Wikidata Query Service result (SPARQL 1.1 JSON) of P190 with start/end qualifiers.

The query to run on https://query.wikidata.org/ is `wdqs-p190.rq` beside this module
(documented in docs/importing.md). Variables: `?city ?twin` (Wikidata entity IRIs,
required), `?cityLabel ?twinLabel` (language-tagged, from the label service), and the
P580 start / P582 end qualifiers as full values, `?start ?startPrecision ?end
?endPrecision`, because only the value node carries Wikidata's time precision
(11 day, 10 month, 9 year, 8 decade). Coarser or missing precision: the date is left
out and counted, never guessed. Each row is one direction (`?city` states P190 =
`?twin`); both directions meet in one partnership, one-direction pairs are marked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from twinning_kg.sources import untrusted_input
from twinning_kg.sources.importers.model import (
    DateValue,
    ImportBatch,
    InputError,
    Label,
    MalformedInput,
    PairRecord,
    parse_described,
    qid_from,
)
from twinning_kg.sources.importers.wikidata_p190 import P190_KIND
from twinning_kg.vocab import Iris

AREA = "wikidata-p190-wdqs"
SOURCE_ID = "wikidata-p190-wdqs"
SOURCE_FILE = Path(__file__).resolve().parent / "wdqs-source.ttl"
QUERY_FILE = Path(__file__).resolve().parent / "wdqs-p190.rq"
# Wikidata time precision (wikibase:timePrecision) -> our precision concept.
WIKIBASE_PRECISION = {11: "day", 10: "month", 9: "year", 8: "decade"}
XSD_DATETIME = "http://www.w3.org/2001/XMLSchema#dateTime"
TIME_RE = re.compile(r"([+-]?)(\d{4,})-(\d{2})-(\d{2})T")
# RDF term types of SPARQL 1.1 JSON results (`triple`: SPARQL-star; `typed-literal`: older
# servers), and a well-formed language tag as RDF 1.1 and XML Schema define it (BCP 47's
# syntax: letters, then subtags).
TERM_TYPES = ("uri", "literal", "bnode", "triple", "typed-literal")
LANGUAGE_TAG = re.compile(r"[a-zA-Z]{1,8}(?:-[a-zA-Z0-9]{1,8})*")


def read(path: Path, iris: Iris, area: str | None = None) -> ImportBatch:
    """Parse the JSON result; raises InputError when it is not a usable result.

    A file that is not a well-formed SPARQL 1.1 JSON result (syntax, nesting, a row that
    is not an object, a term without a string value, an ill-formed language tag) is a
    `MalformedInput` naming the file and the result number; nothing is imported from it.
    """
    try:
        document = untrusted_input.json_document(path.read_bytes(), path, "SPARQL JSON result")
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from exc
    except untrusted_input.UntrustedInputError as exc:
        raise MalformedInput(str(exc)) from exc
    variables, bindings = _result_parts(document, path)
    if not {"city", "twin"} <= set(variables):
        raise InputError(
            f"{path}: the result needs variables ?city and ?twin (it has: {', '.join(variables)}); "
            f"run the query in {QUERY_FILE.name}"
        )
    for number, row in enumerate(bindings, start=1):
        _check_row(row, f"{path}: result {number} (results.bindings[{number - 1}])")

    batch = ImportBatch(title=f"WDQS result {path.name}", area=area or AREA, source_id=SOURCE_ID)
    for number, row in enumerate(bindings, start=1):
        where = f"{path.name}: result {number}"
        batch.rows += 1
        city, twin = _qid(row.get("city")), _qid(row.get("twin"))
        if city is None or twin is None:
            batch.skip("binding of ?city or ?twin is not a Wikidata entity", where)
            continue
        if city == twin:
            batch.skip("self-loop", where)
            continue
        record = batch.pair(city, twin, where)
        record.kind = P190_KIND
        record.sources.add(SOURCE_ID)
        for qid, var in ((city, "cityLabel"), (twin, "twinLabel")):
            label = row.get(var)
            if label and label.get("type") == "literal" and label.get("value") and label["value"] != qid:
                batch.add_label(qid, Label(label["value"], label.get("xml:lang") or None))
        for name in ("start", "end"):
            if name in row:
                value = _date(batch, row[name], row.get(f"{name}Precision"), where, name)
                if value is not None:
                    _keep(batch, record, name, value, where)
    for qid, labels in batch.places.items():
        if not labels:
            batch.note("place without a label in the result (labelled with its QID)", qid)
            labels.append(Label(qid))
    batch.extra = parse_described(SOURCE_FILE, iris)
    return batch


def _result_parts(document: Any, path: Path) -> tuple[list[str], list[Any]]:
    """`head.vars` (strings) and `results.bindings` (a list) of a SPARQL 1.1 JSON result."""
    head = document.get("head") if isinstance(document, dict) else None
    results = document.get("results") if isinstance(document, dict) else None
    variables = head.get("vars") if isinstance(head, dict) else None
    bindings = results.get("bindings") if isinstance(results, dict) else None
    if not isinstance(variables, list) or not isinstance(bindings, list):
        raise MalformedInput(
            f"{path}: not a SPARQL 1.1 JSON SELECT result (no head.vars / results.bindings lists)"
        )
    for index, name in enumerate(variables):
        if not isinstance(name, str) or not name:
            raise MalformedInput(f"{path}: head.vars[{index}] is not a variable name: {_short(name)}")
    return variables, bindings


def _check_row(row: Any, where: str) -> None:
    """One row as the SPARQL 1.1 JSON results format defines it (§3.2.2 RDF terms)."""
    if not isinstance(row, dict):
        raise MalformedInput(f"{where}: a row must be a JSON object, not {_kind(row)}: {_short(row)}")
    for name, term in row.items():
        if not isinstance(term, dict):
            raise MalformedInput(f"{where}: ?{name} must be a JSON object (an RDF term), not {_kind(term)}")
        kind = term.get("type")
        if kind not in TERM_TYPES:
            raise MalformedInput(
                f"{where}: ?{name} has type {_short(kind)}, not one of {', '.join(TERM_TYPES)}"
            )
        value = term.get("value")
        if not isinstance(value, dict if kind == "triple" else str):
            raise MalformedInput(f"{where}: ?{name} has no valid value: {_short(value)}")
        lang = term.get("xml:lang")
        if lang is not None and (not isinstance(lang, str) or not LANGUAGE_TAG.fullmatch(lang)):
            raise MalformedInput(f"{where}: ?{name} has an ill-formed language tag {_short(lang)}")
        datatype = term.get("datatype")
        if datatype is not None and not isinstance(datatype, str):
            raise MalformedInput(f"{where}: ?{name} has a datatype that is not an IRI: {_short(datatype)}")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def _short(value: Any) -> str:
    """A value for an error message: JSON, on one line, at most 60 characters."""
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 60 else text[:57] + "..."


def _qid(binding: dict | None) -> str | None:
    if not binding or binding.get("type") != "uri":
        return None
    return qid_from(binding.get("value", "")) if binding["value"].startswith("http") else None


def _date(batch: ImportBatch, value: dict, precision: dict | None, where: str, name: str) -> DateValue | None:
    """A qualifier value + precision -> DateValue, or None (counted) when it cannot be kept faithfully."""
    if value.get("type") != "literal" or value.get("datatype") != XSD_DATETIME:
        batch.note(f"{name} that is not a dateTime (unknown or no value) left out", where)
        return None
    match = TIME_RE.match(value.get("value", ""))
    if match is None or match.group(1) == "-":
        batch.note(f"{name} not a Gregorian date after year 0 left out", where)
        return None
    try:
        level = int(precision["value"]) if precision else None
    except (KeyError, TypeError, ValueError):
        level = None
    concept = WIKIBASE_PRECISION.get(level) if level is not None else None
    if concept is None:
        batch.note(f"{name} without day/month/year/decade precision left out", where)
        return None
    year, month, day = match.group(2).lstrip("0").zfill(4), match.group(3), match.group(4)
    lexical = {"day": f"{year}-{month}-{day}", "month": f"{year}-{month}"}.get(concept, year)
    if concept == "decade":
        lexical = f"{year[:-1]}0"
    return DateValue(lexical, concept)


def _keep(batch: ImportBatch, record: PairRecord, name: str, value: DateValue, where: str) -> None:
    """Two statements of one pair's date: the finer precision wins; a tie keeps the earlier date."""
    current: DateValue | None = getattr(record, name)
    if current is None or value.finer_than(current):
        setattr(record, name, value)
    elif current != value and not current.finer_than(value):
        batch.note(f"conflicting {name} dates for one pair (kept the earlier)", where)
        if value.lexical < current.lexical:
            setattr(record, name, value)
