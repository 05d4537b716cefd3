"""Our partnerships against what the partners' own graphs say (the snapshots of refresh-partners).

The snapshots live in our graph as named graphs `{base}graph/partner/<name>`, their
provenance in `{base}graph/partners` (`sources.partner_snapshots`). Per partner graph, its
account of each partnership with us is compared with ours (`checks.reciprocity`); the audit
lists the result beside the claims, and each partnership page says which of these holds:

- **confirmed**: the partner's graph states the partnership, and no value differs;
- **differs**: it states it, but kind, start, end or status differ (both values shown);
- **not-stated**: we hold a graph of that partner, and it does not state it;
- **no-graph**: we hold no graph of that partner (none listed, or not refreshed yet).

Everything is read through a `Select` over a store that holds the snapshots (the sources
with them loaded, or a built release), never from the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twinning_kg.checks import reciprocity
from twinning_kg.checks.reciprocity import Account, Difference, PairCheck
from twinning_kg.graph.claims import Select

PROV = "http://www.w3.org/ns/prov#"
DCT_SPATIAL = "http://purl.org/dc/terms/spatial"
SPDX = "http://spdx.org/rdf/terms#"
STATES = ("confirmed", "differs", "not-stated", "no-graph")


@dataclass(frozen=True)
class PartnerGraph:
    """One stored snapshot and where it came from."""

    graph: str  # the named graph in our store
    url: str  # the partner's URL (prov:hadPrimarySource)
    source: str | None  # the dump or endpoint its bytes came from
    retrieved: str | None
    sha256: str | None
    cities: tuple[str, ...]  # Wikidata QIDs of the cities it speaks for

    def to_json(self) -> dict[str, Any]:
        return {"graph": self.graph, "url": self.url, "source": self.source, "retrieved": self.retrieved,
                "sha256": self.sha256, "cities": list(self.cities)}


@dataclass
class CrossGraph:
    """One partner graph's accounts of our partnerships, compared with ours."""

    partner: PartnerGraph
    checks: list[PairCheck] = field(default_factory=list)

    @property
    def conflicts(self) -> list[PairCheck]:
        return [c for c in self.checks if c.status == "conflict"]

    def to_json(self) -> dict[str, Any]:
        return {**self.partner.to_json(), "partnerships": [c.to_json() for c in self.checks]}


@dataclass(frozen=True)
class Confirmation:
    """What the partner's own graph says about one of our partnerships (module docstring)."""

    state: str
    partner: PartnerGraph | None = None
    theirs: Account | None = None
    differences: tuple[Difference, ...] = ()


def partner_graphs(select: Select, base_iri: str) -> list[PartnerGraph]:
    """The snapshots our graph holds, from their provenance."""
    rows = select(f"""SELECT ?g ?url ?source ?when ?sha ?city WHERE {{
        GRAPH <{base_iri}graph/partners> {{
          ?g a <{PROV}Entity> ; <{PROV}hadPrimarySource> ?url .
          OPTIONAL {{ ?g <{PROV}wasDerivedFrom> ?source }}
          OPTIONAL {{ ?g <{PROV}generatedAtTime> ?when }}
          OPTIONAL {{ ?g <{SPDX}checksum>/<{SPDX}checksumValue> ?sha }}
          OPTIONAL {{ ?g <{DCT_SPATIAL}> ?city }}
        }}
        FILTER (STRSTARTS(STR(?g), "{base_iri}graph/partner/"))
      }} ORDER BY ?g ?city""")
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = found.setdefault(row["g"].value, {
            "url": row["url"].value, "source": _text(row, "source"), "retrieved": _text(row, "when"),
            "sha256": _text(row, "sha"), "cities": [],
        })
        city = _text(row, "city")
        if city and city.startswith(reciprocity.WIKIDATA_ENTITY):
            entry["cities"].append(city[len(reciprocity.WIKIDATA_ENTITY):])
    return [
        PartnerGraph(g, e["url"], e["source"], e["retrieved"], e["sha256"], tuple(dict.fromkeys(e["cities"])))
        for g, e in found.items()
    ]


def _text(row: dict, var: str) -> str | None:
    return row[var].value if var in row else None


def cross_graph(select: Select, base_iri: str, vocabulary: str, city_key: str) -> list[CrossGraph]:
    """Every partner graph's accounts of our partnerships with the cities it speaks for."""
    graphs = partner_graphs(select, base_iri)
    if not graphs:
        return []
    city = f"{base_iri}id/place/{city_key}"
    city_qid = reciprocity.qid(reciprocity.same_as(select, [city]).get(city, []))
    ours = _our_accounts(select, base_iri, vocabulary, city)
    our_qids = {p: reciprocity.qid(t) for p, t in reciprocity.same_as(select, ours).items()}
    names = {our_qids.get(p) or p: label for p, label in reciprocity.labels(select, ours).items()}
    results = []
    for partner in graphs:
        us = {city} | ({reciprocity.WIKIDATA_ENTITY + city_qid} if city_qid else set())
        linked = reciprocity.same_as(select, us, partner.graph)  # their IRIs for our city
        us |= {iri for targets in linked.values() for iri in targets}
        theirs = reciprocity.accounts(select, vocabulary, us, partner.graph)
        their_same = reciprocity.same_as(select, theirs, partner.graph)

        def key_theirs(place: str, same: dict[str, list[str]] = their_same) -> str:
            return our_qids.get(place) or reciprocity.qid(same.get(place, [])) or place

        checks = reciprocity.compare(
            ours, theirs, lambda p: our_qids.get(p) or p, key_theirs, set(partner.cities), names
        )
        results.append(CrossGraph(partner, checks))
    return results


def _our_accounts(select: Select, base_iri: str, vocabulary: str, city: str) -> dict[str, Account]:
    """Our own accounts only: a partner graph that uses our city's IRI is theirs, not ours."""
    accounts = reciprocity.accounts(select, vocabulary, [city])
    if not accounts:
        return {}
    rows = select(f"""SELECT DISTINCT ?p WHERE {{
        VALUES ?p {{ {' '.join(f'<{a.partnership}>' for a in accounts.values() if a.partnership)} }}
        GRAPH ?g {{ ?p a <{vocabulary}ontology#Partnership> }}
        FILTER (!STRSTARTS(STR(?g), "{base_iri}graph/partner"))
      }}""") if any(a.partnership for a in accounts.values()) else []
    mine = {row["p"].value for row in rows}
    return {place: a for place, a in accounts.items() if a.partnership in mine}


def confirmation(
    select: Select, base_iri: str, vocabulary: str, city_key: str, partnership: str
) -> Confirmation:
    """Whether the partner's own graph confirms our `partnership` (module docstring)."""
    return confirmation_in(cross_graph(select, base_iri, vocabulary, city_key), partnership)


def confirmation_in(results: list[CrossGraph], partnership: str) -> Confirmation:
    """The same, from comparisons already made (the server computes them once per release)."""
    for result in results:
        for check in result.checks:
            if check.ours is not None and check.ours.partnership == partnership:
                if check.theirs is None:
                    return Confirmation("not-stated", result.partner)
                state = "differs" if check.differences else "confirmed"
                return Confirmation(state, result.partner, check.theirs, tuple(check.differences))
    return Confirmation("no-graph")
