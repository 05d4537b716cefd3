"""Two graphs' accounts of the same partnerships, compared: reciprocal, one-way or in conflict.

A partnership has two sides, and each city may publish its own sourced account of it. Two
cities' IRIs differ, so the accounts meet on the partner's Wikidata item (`owl:sameAs
wd:Q…`), or on our own IRI when the other graph links to it. Per partnership either side
states:

- **reciprocal**: both graphs state it, and where both give a kind, start, end or status
  they agree (a start compares at the coarser precision: 1965 agrees with 1965-05-14);
- **conflict**: both state it, and one of those four differs: both values are reported,
  each with the sources its graph gives for it;
- **one-way-ours** / **one-way-theirs**: only one graph states it.

Which partnerships count: every one their graph states with our city, and every one of
ours with a city their graph speaks for: the place(s) taking part in the most of their
partnerships (a city's graph is about that city); so Kassel's partnership with Florence
is not expected in Mulhouse's graph. A value only one side gives is no conflict (the
other is silent, not contrary); the report shows both sides' values.

Both graphs are asked the same SPARQL, through any `Select` (the sources, a release's store,
a graph read from elsewhere, or one named graph of ours holding a partner's snapshot), so
`check-links`, the audit and the pages compare alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyoxigraph
from rdflib import Graph

from twinning_kg.graph.claims import Select, store_select

WIKIDATA_ENTITY = "http://www.wikidata.org/entity/"
OWL_SAME_AS = "http://www.w3.org/2002/07/owl#sameAs"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
PROV_DERIVED = "http://www.w3.org/ns/prov#wasDerivedFrom"
SCHEMA_URL = "https://schema.org/url"
TWINNED = {"twinnedWith": "tw:twinnedWith", "http://www.wikidata.org/prop/direct/P190": "wdt:P190"}
PROPERTIES = ("kind", "start", "end", "status")
ASSERTIONS = ["tw:Partnership", "tw:twinnedWith", "wdt:P190"]
STATUSES = ("reciprocal", "conflict", "one-way-ours", "one-way-theirs")


@dataclass(frozen=True)
class SourceInfo:
    """A source one graph gives for a value: its IRI, a label and its web page when stated."""

    iri: str
    label: str | None = None
    url: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"iri": self.iri, "label": self.label, "url": self.url}

    def text(self) -> str:
        name = self.label or self.iri
        return f"{name} <{self.url}>" if self.url else name


@dataclass(frozen=True)
class Fact:
    """One value of one graph's account, with the sources that graph gives for it."""

    value: str | None
    sources: tuple[SourceInfo, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "sources": [s.to_json() for s in self.sources]}


@dataclass
class Account:
    """What one graph states about one partnership."""

    partnership: str | None  # its IRI there (None: stated only as a link between the places)
    place: str  # the partner place's IRI in that graph
    asserted_as: list[str] = field(default_factory=list)  # "tw:Partnership", "tw:twinnedWith", "wdt:P190"
    facts: dict[str, Fact] = field(default_factory=dict)  # kind, start, end, status
    provisional: bool = False

    def value(self, name: str) -> str | None:
        fact = self.facts.get(name)
        return fact.value if fact else None

    def to_json(self) -> dict[str, Any]:
        return {
            "partnership": self.partnership, "place": self.place, "asserted_as": self.asserted_as,
            "provisional": self.provisional,
            **{name: (self.facts[name].to_json() if name in self.facts else None) for name in PROPERTIES},
        }


@dataclass(frozen=True)
class Difference:
    """One value the two accounts give differently."""

    property: str
    ours: Fact
    theirs: Fact

    def to_json(self) -> dict[str, Any]:
        return {"property": self.property, "ours": self.ours.to_json(), "theirs": self.theirs.to_json()}

    def text(self, short: Callable[[str], str] = str) -> str:
        def side(fact: Fact) -> str:
            value = short(fact.value) if fact.value else "-"
            return f"{value} ({'; '.join(s.text() for s in fact.sources)})" if fact.sources else value

        return f"{self.property}: ours {side(self.ours)}, theirs {side(self.theirs)}"


@dataclass
class PairCheck:
    """One partnership either side states, and how the two accounts relate."""

    partner: str  # the partner's Wikidata QID, else its IRI
    label: str | None
    ours: Account | None
    theirs: Account | None
    differences: list[Difference] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.ours is None:
            return "one-way-theirs"
        if self.theirs is None:
            return "one-way-ours"
        return "conflict" if self.differences else "reciprocal"

    def to_json(self) -> dict[str, Any]:
        """docs/schemas/check-links.schema.json: `partner`, `ours`, `theirs`, `status`, `differences`."""
        return {
            "partner": self.partner,
            "label": self.label,
            "ours": self.ours.partnership or self.ours.place if self.ours else None,
            "theirs": self.theirs.partnership or self.theirs.place if self.theirs else None,
            "status": self.status,
            "differences": [d.to_json() for d in self.differences],
            "accounts": {
                "ours": self.ours.to_json() if self.ours else None,
                "theirs": self.theirs.to_json() if self.theirs else None,
            },
        }


# ------------------------------------------------------------------ reading an account


def graph_select(graph: Graph) -> Select:
    """SPARQL over an rdflib Graph read from elsewhere, through the same engine as ours."""
    store = pyoxigraph.Store()
    data = graph.serialize(format="nt", encoding="utf-8")
    if data.strip():
        store.load(data, format=pyoxigraph.RdfFormat.N_TRIPLES)
    return store_select(store)


def _values(iris: Iterable[str]) -> str:
    return " ".join(f"<{iri}>" for iri in sorted(set(iris)))


def _in_graph(pattern: str, graph: str | None) -> str:
    return f"GRAPH <{graph}> {{ {pattern} }}" if graph else pattern


def accounts(
    select: Select, vocabulary: str, city: Iterable[str], graph: str | None = None
) -> dict[str, Account]:
    """Partner place IRI -> the graph's account of its partnership with `city` (the city's
    IRIs in that graph); `graph`: read only that named graph."""
    tw = f"{vocabulary}ontology#"
    cities = _values(city)
    if not cities:
        return {}
    found: dict[str, Account] = {}
    rows = select(f"""SELECT ?p ?other ?kind ?start ?end ?status ?provisional WHERE {{ {_in_graph(f'''
        VALUES ?city {{ {cities} }}
        ?p a <{tw}Partnership> ; <{tw}partner> ?city , ?other .
        FILTER (?other NOT IN ({cities.replace("> <", ">, <")}) && isIRI(?other))
        OPTIONAL {{ ?p <{tw}kind> ?kind }} OPTIONAL {{ ?p <{tw}startDate> ?start }}
        OPTIONAL {{ ?p <{tw}endDate> ?end }} OPTIONAL {{ ?p <{tw}status> ?status }}
        OPTIONAL {{ ?p a <{tw}ProvisionalPartnership> BIND (true AS ?provisional) }}''', graph)} }}
        ORDER BY ?p ?other""")
    by_partnership: dict[str, Account] = {}
    for row in rows:
        other = row["other"].value
        if other in found:
            continue  # two partnerships with one place: the shapes reject it; the first is compared
        account = Account(row["p"].value, other, ["tw:Partnership"], provisional="provisional" in row)
        for name in PROPERTIES:
            if name in row:
                account.facts[name] = Fact(row[name].value)
        found[other] = by_partnership[row["p"].value] = account
    _add_sources(select, tw, by_partnership, graph)
    links = select(f"""SELECT ?a ?property ?b WHERE {{ {_in_graph(f'''
        VALUES ?property {{ <{tw}twinnedWith> <http://www.wikidata.org/prop/direct/P190> }}
        VALUES ?city {{ {cities} }}
        {{ ?city ?property ?other BIND (?city AS ?a) BIND (?other AS ?b) }}
        UNION {{ ?other ?property ?city BIND (?other AS ?a) BIND (?city AS ?b) }}''', graph)} }}
        ORDER BY ?a ?property ?b""")
    for row in links:
        a, b = row["a"].value, row["b"].value
        other = b if a in set(city) else a
        if other in set(city) or row["b"].type != "uri":
            continue
        name = next(v for k, v in TWINNED.items() if row["property"].value.endswith(k))
        account = found.setdefault(other, Account(None, other))
        if name not in account.asserted_as:
            account.asserted_as.append(name)
    for account in found.values():
        account.asserted_as.sort(key=ASSERTIONS.index)
    return found


def _add_sources(select: Select, tw: str, accounts_by_iri: dict[str, Account], graph: str | None) -> None:
    """Each value's sources: its own (tw:kindSource, tw:startSource, tw:statusSource, the
    ending's tw:eventSource), else every source of the partnership (prov:wasDerivedFrom)."""
    if not accounts_by_iri:
        return
    rows = select(f"""SELECT ?p ?fact ?source ?label ?url WHERE {{ {_in_graph(f'''
        VALUES ?p {{ {_values(accounts_by_iri)} }}
        {{ ?p <{tw}kindSource> ?source BIND ("kind" AS ?fact) }}
        UNION {{ ?p <{tw}startSource> ?source BIND ("start" AS ?fact) }}
        UNION {{ ?p <{tw}statusSource> ?source BIND ("status" AS ?fact) }}
        UNION {{ ?p <{tw}event> ?e . ?e a <{tw}Ending> ; <{tw}eventSource> ?source BIND ("end" AS ?fact) }}
        UNION {{ ?p <{PROV_DERIVED}> ?source BIND ("any" AS ?fact) }}
        OPTIONAL {{ ?source <{RDFS_LABEL}> ?label
                    FILTER (LANGMATCHES(LANG(?label), "en") || LANG(?label) = "") }}
        OPTIONAL {{ ?source <{SCHEMA_URL}> ?url }}''', graph)} }}
        ORDER BY ?p ?fact ?source ?label ?url""")
    sources: dict[tuple[str, str], dict[str, SourceInfo]] = {}
    for row in rows:
        key = (row["p"].value, row["fact"].value)
        iri = row["source"].value
        sources.setdefault(key, {}).setdefault(iri, SourceInfo(
            iri, row["label"].value if "label" in row else None, row["url"].value if "url" in row else None
        ))
    for iri, account in accounts_by_iri.items():
        fallback = tuple(sources.get((iri, "any"), {}).values())
        for name, fact in list(account.facts.items()):
            own = tuple(sources.get((iri, name), {}).values())
            account.facts[name] = Fact(fact.value, own or fallback)


def same_as(select: Select, iris: Iterable[str], graph: str | None = None) -> dict[str, list[str]]:
    """IRI -> its owl:sameAs targets in the graph (both directions), sorted."""
    values = _values(iris)
    if not values:
        return {}
    rows = select(f"""SELECT ?x ?y WHERE {{ {_in_graph(f'''
        VALUES ?x {{ {values} }}
        {{ ?x <{OWL_SAME_AS}> ?y }} UNION {{ ?y <{OWL_SAME_AS}> ?x }}''', graph)} }}""")
    out: dict[str, set[str]] = {}
    for row in rows:
        if row["y"].type == "uri":
            out.setdefault(row["x"].value, set()).add(row["y"].value)
    return {k: sorted(v) for k, v in out.items()}


def labels(select: Select, iris: Iterable[str], graph: str | None = None) -> dict[str, str]:
    """An English (else untagged, else any) label per IRI, for the report."""
    values = _values(iris)
    if not values:
        return {}
    rows = select(f"""SELECT ?x ?label WHERE {{ {_in_graph(f'''
        VALUES ?x {{ {values} }} ?x <{RDFS_LABEL}> ?label''', graph)} }} ORDER BY ?x ?label""")
    best: dict[str, tuple[int, str]] = {}
    for row in rows:
        rank = {"en": 0, None: 1}.get(row["label"].lang, 2)
        current = best.get(row["x"].value)
        if current is None or rank < current[0]:
            best[row["x"].value] = (rank, row["label"].value)
    return {k: v for k, (_, v) in best.items()}


def hubs(select: Select, vocabulary: str, graph: str | None = None) -> list[str]:
    """The places a graph speaks for: those taking part in the most of its partnerships."""
    tw = f"{vocabulary}ontology#"
    rows = select(f"""SELECT ?place (COUNT(DISTINCT ?p) AS ?n) WHERE {{ {_in_graph(f'''
        ?p a <{tw}Partnership> ; <{tw}partner> ?place . FILTER (isIRI(?place))''', graph)} }}
        GROUP BY ?place ORDER BY DESC(?n) ?place""")
    if not rows:
        return []
    top = int(rows[0]["n"].value)
    return [row["place"].value for row in rows if int(row["n"].value) == top]


def qid(iris: Iterable[str]) -> str | None:
    """The Wikidata QID among `iris` (the smallest, should there be several)."""
    found = sorted(i[len(WIKIDATA_ENTITY):] for i in iris if i.startswith(WIKIDATA_ENTITY))
    return min(found, key=lambda q: int(q[1:]) if q[1:].isdigit() else 0) if found else None


# ------------------------------------------------------------------ comparing


def compare(
    ours: dict[str, Account], theirs: dict[str, Account], key_ours: Callable[[str], str],
    key_theirs: Callable[[str], str], expected: set[str], names: dict[str, str],
) -> list[PairCheck]:
    """Pair the two sides' accounts by partner key (module docstring); `expected`: the keys
    of the cities their graph speaks for, whose partnerships of ours must appear there."""
    mine = {key_ours(place): account for place, account in ours.items()}
    yours = {key_theirs(place): account for place, account in theirs.items()}
    keys = sorted(set(yours) | (set(mine) & expected), key=_key_order)
    checks = []
    for key in keys:
        check = PairCheck(key, names.get(key), mine.get(key), yours.get(key))
        if check.ours is not None and check.theirs is not None:
            check.differences = differences(check.ours, check.theirs)
        checks.append(check)
    return checks


def differences(ours: Account, theirs: Account) -> list[Difference]:
    found = []
    for name in PROPERTIES:
        mine, yours = ours.facts.get(name), theirs.facts.get(name)
        if mine is None or yours is None or mine.value is None or yours.value is None:
            continue  # one side is silent: nothing to disagree with
        if not _same(name, mine.value, yours.value):
            found.append(Difference(name, mine, yours))
    return found


def _same(name: str, ours: str, theirs: str) -> bool:
    if name in ("start", "end"):
        return ours == theirs or ours.startswith(theirs + "-") or theirs.startswith(ours + "-")
    # Concepts of the kit's schemes compare by scheme and name, so two deployments whose
    # vocabulary lives under different bases still compare (…/id/status/active).
    return _concept(ours) == _concept(theirs)


def _concept(iri: str) -> str:
    for scheme in ("/id/kind/", "/id/status/"):
        if scheme in iri:
            return scheme + iri.rsplit(scheme, 1)[1]
    return iri


def _key_order(key: str) -> tuple[int, int, str]:
    if key.startswith("Q") and key[1:].isdigit():
        return (0, int(key[1:]), key)
    return (1, 0, key)


def summary(checks: Iterable[PairCheck]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for check in checks:
        counts[check.status] += 1
    return counts

