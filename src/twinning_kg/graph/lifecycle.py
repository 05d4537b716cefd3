"""Derive a partnership's status shortcuts from its lifecycle events (docs/model.md).

The events (`tw:event`: establishment, renewal, suspension, resumption, ending, change of
partner, status confirmation) are what curators write, each dated and sourced. From them
the build adds the shortcuts queries and pages use, into the graph that types the
partnership:

- `tw:startDate`, `tw:startPrecision`, `tw:startSource` from the establishment;
- `tw:status` from the latest event that sets a status (establishment, renewal and
  resumption: active; suspension: suspended; ending: ended);
- `tw:statusSince` and its `tw:statusSource` from the event that began the current
  status, unless that is the establishment (then the start says it);
- `tw:statusAsOf` and its `tw:statusSource` from the latest event that sets or confirms
  the current status: the latest date a source attests it;
- `tw:endDate`, `tw:endPrecision` from the ending.

Events of mixed precision are ordered on their ISO lexical forms ("2022" before
"2022-02-24"); on the same date a status-setting event sorts before a confirmation.
Nothing is derived for a partnership whose events the shapes reject (no or two
establishments, an undated event): the shapes report it. A shortcut a curator wrote by
hand stays; if it disagrees with the events, the derived value makes two and the
shapes' "at most one" rules fire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rdflib import Literal, URIRef
from rdflib.namespace import RDF

from twinning_kg.config import Settings
from twinning_kg.vocab import Iris

SETS_STATUS = {"Establishment": "active", "Renewal": "active", "Resumption": "active",
               "Suspension": "suspended", "Ending": "ended"}
EVENT_KINDS = (*SETS_STATUS, "PartnerSuccession", "StatusConfirmation")


@dataclass(frozen=True)
class Event:
    node: URIRef
    kind: str
    date: Literal
    precision: URIRef | None
    sources: tuple[URIRef, ...]
    confirmed: URIRef | None  # tw:confirmedStatus of a confirmation

    @property
    def order(self) -> tuple[str, int]:
        return (str(self.date), 1 if self.kind == "StatusConfirmation" else 0)


def events_of(dataset: Any, partnership: URIRef, iris: Iris) -> list[Event] | None:
    """The partnership's events, or None when they cannot be read unambiguously."""
    TW = iris.TW
    found = []
    for _, _, node, _ in dataset.quads((partnership, TW.event, None, None)):
        kinds = {str(t).removeprefix(str(TW)) for _, _, t, _ in dataset.quads((node, RDF.type, None, None))}
        kinds &= set(EVENT_KINDS)
        dates = {o for _, _, o, _ in dataset.quads((node, TW.date, None, None))}
        if len(kinds) != 1 or len(dates) != 1 or not isinstance(node, URIRef):
            return None
        precision = next((o for _, _, o, _ in dataset.quads((node, TW.datePrecision, None, None))), None)
        confirmed = next((o for _, _, o, _ in dataset.quads((node, TW.confirmedStatus, None, None))), None)
        sources = tuple(sorted({o for _, _, o, _ in dataset.quads((node, TW.eventSource, None, None))}))
        found.append(Event(node, kinds.pop(), next(iter(dates)), precision, sources, confirmed))
    return sorted(set(found), key=lambda e: (*e.order, str(e.node)))


def shortcuts(events: list[Event], iris: Iris) -> list[tuple[URIRef, Any]]:
    """(property, value) pairs the events imply (see module docstring)."""
    TW = iris.TW
    establishments = [e for e in events if e.kind == "Establishment"]
    if len(establishments) != 1:
        return []
    start = establishments[0]
    out: list[tuple[URIRef, Any]] = [(TW.startDate, start.date)]
    out += [(TW.startPrecision, start.precision)] if start.precision is not None else []
    out += [(TW.startSource, s) for s in start.sources]

    setting = [e for e in events if e.kind in SETS_STATUS]
    status = SETS_STATUS[setting[-1].kind]
    out.append((TW.status, iris.concept("status", status)))
    began = setting[-1]
    for event in reversed(setting):
        if SETS_STATUS[event.kind] != status:
            break
        began = event
    if began is not start:
        out.append((TW.statusSince, began.date))
        out += [(TW.statusSource, s) for s in began.sources]
    attesting = [e for e in events if e.kind in SETS_STATUS and SETS_STATUS[e.kind] == status
                 and e.order >= began.order]
    attesting += [e for e in events if e.kind == "StatusConfirmation" and e.order >= began.order
                  and e.confirmed == iris.concept("status", status)]
    latest = max(attesting, key=lambda e: e.order)
    out.append((TW.statusAsOf, latest.date))
    out += [(TW.statusSource, s) for s in latest.sources]
    for ending in (e for e in events if e.kind == "Ending"):
        out.append((TW.endDate, ending.date))
        out += [(TW.endPrecision, ending.precision)] if ending.precision is not None else []
    return out


def derive(dataset: Any, settings: Settings) -> int:
    """Add the shortcuts of every partnership with events; returns how many triples were new."""
    iris = Iris.of(settings)
    added = 0
    partnerships = sorted({(s, g) for s, _, _, g in dataset.quads((None, iris.TW.event, None, None))},
                          key=lambda pair: str(pair[0]))
    seen: set[URIRef] = set()
    for partnership, context in partnerships:
        if partnership in seen or not isinstance(partnership, URIRef):
            continue
        seen.add(partnership)
        events = events_of(dataset, partnership, iris)
        if not events:
            continue
        graph = dataset.graph(context) if not hasattr(context, "add") else context
        for prop, value in shortcuts(events, iris):
            triple = (partnership, prop, value)
            if triple not in graph:
                graph.add(triple)
                added += 1
    return added
