"""The format-neutral result of reading an import file: places, pairs, what was skipped.

Readers fill an `ImportBatch`; `merge.py` turns it into RDF. Pairs are keyed by the two
QIDs in numeric order (the partnership IRI is `{base}id/partnership/{Qa}--{Qb}`), so
both directions of a directed source meet in one record and a one-direction pair is
simply a record that saw one direction.
"""

from __future__ import annotations

import datetime
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import Graph, URIRef
from rdflib.namespace import XSD

from twinning_kg.vocab import Iris

QID_RE = re.compile(r"Q[1-9][0-9]*")
WIKIDATA_ENTITY = "http://www.wikidata.org/entity/"
# How many example locations to keep per skip reason (the summary shows them).
EXAMPLES_PER_REASON = 5
# Precision concept -> datatype of the date literal (docs/architecture.md, tw:startDate).
PRECISION_DATATYPE: dict[str, URIRef] = {
    "day": XSD.date,
    "month": XSD.gYearMonth,
    "year": XSD.gYear,
    "decade": XSD.gYear,
    "approximate": XSD.gYear,
}
# Finer precision first: used to pick between two statements of the same date.
PRECISION_RANK = {"day": 0, "month": 1, "year": 2, "decade": 3, "approximate": 4}


class InputError(Exception):
    """Input that cannot be imported; `str()` names the file, the line and what is wrong.

    `exit_code` is what the CLI exits with: 1 for content the checks refuse (a bad cell,
    a missing variable), 2 for a file that is not well-formed in its format at all.
    """

    exit_code = 1


class MalformedInput(InputError):
    """The file is not well-formed in its format (syntax, structure, nesting): exit status 2."""

    exit_code = 2


def parse_described(path: Path, iris: Iris) -> Graph:
    """A Turtle file of descriptions the kit ships (a source, its publisher), in a project's terms.

    Relative IRIs land under the project's base IRI, as in `data/`; the file's terms
    (`<ontology#…>`) are then moved to the kit's vocabulary, which a city's project speaks
    under a base of its own (`Settings.vocabulary`).
    """
    graph = Graph()
    graph.parse(path, format="turtle", publicID=iris.base)
    wrong, right = f"{iris.base}ontology#", str(iris.TW)
    if wrong == right:
        return graph
    moved = Graph()
    for prefix, ns in graph.namespaces():
        moved.bind(prefix, right if str(ns) == wrong else ns, override=True)
    for triple in graph:
        moved.add(tuple(  # type: ignore[arg-type]
            URIRef(right + str(t)[len(wrong):]) if isinstance(t, URIRef) and str(t).startswith(wrong) else t
            for t in triple
        ))
    return moved


def is_qid(text: str) -> bool:
    return QID_RE.fullmatch(text) is not None


def qid_from(text: str) -> str | None:
    """`Q64` or `http://www.wikidata.org/entity/Q64` -> `Q64`; anything else -> None."""
    text = text.strip()
    if text.startswith(WIKIDATA_ENTITY):
        text = text[len(WIKIDATA_ENTITY) :]
    return text if is_qid(text) else None


def ordered(qid_a: str, qid_b: str) -> tuple[str, str]:
    """The two QIDs in numeric order (Q9 before Q10, unlike string order)."""
    return (qid_a, qid_b) if int(qid_a[1:]) <= int(qid_b[1:]) else (qid_b, qid_a)


@dataclass(frozen=True)
class Label:
    text: str
    lang: str | None = None  # None: the source does not say which language


@dataclass(frozen=True)
class DateValue:
    """A date as stated, with its precision concept (`day`, `month`, `year`, ...)."""

    lexical: str
    precision: str

    @property
    def datatype(self) -> URIRef:
        return PRECISION_DATATYPE[self.precision]

    def finer_than(self, other: DateValue) -> bool:
        return PRECISION_RANK[self.precision] < PRECISION_RANK[other.precision]


@dataclass
class PairRecord:
    """One unordered pair of places and what the source says about it."""

    a: str
    b: str
    where: str  # first place the pair is stated, e.g. `relations.tsv:12`
    directions: set[str] = field(default_factory=set)  # {"ab", "ba"} for a directed source
    directed: bool = True  # False: the source states the partnership itself (CSV)
    kind: str | None = None
    status: str | None = None
    status_since: str | None = None
    start: DateValue | None = None
    end: DateValue | None = None
    sources: set[str] = field(default_factory=set)

    @property
    def one_way(self) -> bool:
        return self.directed and len(self.directions) == 1


@dataclass
class ImportBatch:
    """Everything one input file says, before it meets the curated data."""

    title: str  # for the summary, e.g. "Wikidata P190 crawl (2016)"
    area: str  # local name of the named graph: `{base}graph/{area}`
    source_id: str  # the source every statement is derived from (unless a row names another)
    places: dict[str, list[Label]] = field(default_factory=dict)
    place_where: dict[str, str] = field(default_factory=dict)  # QID -> where it is first named
    pairs: dict[tuple[str, str], PairRecord] = field(default_factory=dict)
    rows: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: Counter[str] = field(default_factory=Counter)  # counted, not skipped (e.g. duplicates)
    extra: Graph | None = None  # further triples the input brings (e.g. source descriptions)

    def skip(self, reason: str, where: str) -> None:
        """Count a row left out, keep a few examples of where."""
        self.skipped[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < EXAMPLES_PER_REASON:
            examples.append(where)

    def note(self, what: str, where: str | None = None) -> None:
        self.notes[what] += 1
        if where is not None:
            examples = self.examples.setdefault(what, [])
            if len(examples) < EXAMPLES_PER_REASON:
                examples.append(where)

    def add_label(self, qid: str, label: Label) -> None:
        labels = self.places.setdefault(qid, [])
        if label.text and label not in labels:
            labels.append(label)

    def pair(self, qid_a: str, qid_b: str, where: str, directed: bool = True) -> PairRecord:
        """The record for {a, b} (created on first sight); marks the direction a -> b."""
        a, b = ordered(qid_a, qid_b)
        record = self.pairs.get((a, b))
        if record is None:
            record = self.pairs[(a, b)] = PairRecord(a=a, b=b, where=where, directed=directed)
            for qid in (a, b):
                self.places.setdefault(qid, [])
                self.place_where.setdefault(qid, where)
        if directed:
            record.directions.add("ab" if (qid_a, qid_b) == (a, b) else "ba")
        return record


_DATE_FORMS = {  # lexical form -> precisions it can carry
    re.compile(r"-?\d{4}-\d{2}-\d{2}"): ("day",),
    re.compile(r"-?\d{4}-\d{2}"): ("month",),
    re.compile(r"-?\d{4}"): ("year", "decade", "approximate"),
}


def parse_date(text: str, precision: str | None = None) -> DateValue:
    """`1972-08-14` / `1972-08` / `1972` with an optional precision; ValueError says what is wrong.

    Without a precision the lexical form decides (day, month or year); a precision that
    the form cannot carry (e.g. `day` for `1972`) is an error rather than a guess.
    """
    text, precision = text.strip(), (precision or "").strip() or None
    for pattern, allowed in _DATE_FORMS.items():
        if pattern.fullmatch(text):
            chosen = precision or allowed[0]
            if chosen not in allowed:
                raise ValueError(
                    f"date {text!r} cannot have precision {chosen!r} (use one of {', '.join(allowed)})"
                )
            _check_calendar(text)
            return DateValue(text, chosen)
    raise ValueError(f"date {text!r} is not YYYY, YYYY-MM or YYYY-MM-DD")


def _check_calendar(text: str) -> None:
    parts = text.lstrip("-").split("-")
    year, month, day = (
        int(parts[0]),
        int(parts[1]) if len(parts) > 1 else 1,
        int(parts[2]) if len(parts) > 2 else 1,
    )
    try:
        datetime.date(max(year, 1), month, day)
    except ValueError as exc:
        raise ValueError(f"date {text!r}: {exc}") from exc
