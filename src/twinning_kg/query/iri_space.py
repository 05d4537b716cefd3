"""One IRI space per server: our IRIs as clients of *this* server see them.

The release holds its IRIs under its base IRI (`canonical`, e.g. `https://w3id.org/
twinning-kg/`). A server started with `serve --base-url URL` is reached somewhere else
(`public`, e.g. `http://127.0.0.1:8000/`), and every IRI of ours it hands out is written
under that URL, so a client can follow it there. The rule (docs/web.md): whatever a
client dereferences it can query with, and whatever the VoID or the service description
names exists at /sparql. So the mapping runs both ways, on terms, never on raw text:

- in: IRIs written in a query (each IRIREF token the guard's tokenizer reads, BASE and
  PREFIX included: `query.syntax`), and the protocol's `default-graph-uri` and
  `named-graph-uri`, are read as the canonical IRIs they stand for;
- out: every IRI in a result (solutions, graphs, datatype IRIs) is written under the
  public base; so are the pages, the dereferenced documents, the catalog, the VoID and
  the service description (`web.context.AppContext`).

Literals are data and stay as they are: `STR(?place)` gives the canonical IRI's text, and
a string compared with `STRSTARTS` must use it (docs/web.md says so). The one exception
is on the way out of the VoID: `void:uriSpace`, a literal that by definition is the
common prefix of our IRIs, is written under the public base too (`VOID_IRI_LITERALS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from twinning_kg.query.syntax import Analysis, resolve

# Literal-valued properties whose value is the prefix of IRIs (VoID §4.6, void:uriSpace).
VOID_IRI_LITERALS = ("http://rdfs.org/ns/void#uriSpace",)


@dataclass(frozen=True)
class IriSpace:
    """`canonical`: the base IRI of the data; `public`: the base clients see (`--base-url`)."""

    canonical: str
    public: str

    def __post_init__(self) -> None:
        for base in (self.canonical, self.public):
            if not base.endswith("/"):
                raise ValueError(f"a base IRI must end with '/': {base}")
        if self.canonical != self.public and (
            self.canonical.startswith(self.public) or self.public.startswith(self.canonical)
        ):
            # Then one IRI would belong to both spaces and the mapping would not be one-to-one.
            raise ValueError(
                f"the public base {self.public} and the base IRI {self.canonical} must not contain each other"
            )

    @property
    def identity(self) -> bool:
        return self.canonical == self.public

    def to_public(self, iri: str) -> str:
        """A canonical IRI of ours -> the IRI clients see; any other IRI unchanged."""
        if iri.startswith(self.canonical) and not self.identity:
            return self.public + iri[len(self.canonical) :]
        return iri

    def to_canonical(self, iri: str) -> str:
        """An IRI clients see -> the canonical IRI the data holds; any other IRI unchanged."""
        if iri.startswith(self.public) and not self.identity:
            return self.canonical + iri[len(self.public) :]
        return iri

    # ------------------------------------------------------------------ queries

    def query_text(self, analysis: Analysis) -> str | None:
        """The analysed query with its public IRIs read as canonical; None if it names none.

        Works on the IRIREF tokens the reader found (`Analysis.iris`), each resolved against
        the BASE in force where it stands; prefixed names expand from PREFIX IRIs, which
        are IRIREF tokens too. When any of them is public, every IRIREF is written out as
        its absolute canonical form, so that no relative IRI depends on a BASE that was
        itself mapped. The caller reads the new text again (the guard judges what runs).
        """
        if self.identity:
            return None
        text = analysis.text
        resolved = [
            (start, end, resolve(text[start + 1 : end - 1], base)) for start, end, base in analysis.iris
        ]
        if not any(iri.startswith(self.public) for _s, _e, iri in resolved):
            return None
        parts: list[str] = []
        last = 0
        for start, end, iri in resolved:
            parts += [text[last:start], f"<{self.to_canonical(iri)}>"]
            last = end
        parts.append(text[last:])
        return "".join(parts)

    def graph_names(self, names: Iterable[str]) -> tuple[str, ...]:
        """`default-graph-uri` / `named-graph-uri` values read as canonical IRIs."""
        return tuple(self.to_canonical(name) for name in names)

    # ------------------------------------------------------------------ results

    def solutions_tsv(self, tsv: bytes) -> bytes:
        """SPARQL TSV results (the engines' intermediate form) with our IRIs made public.

        A TSV cell is one RDF term in SPARQL syntax (SPARQL 1.1 TSV §2): `<iri>`, a literal
        `"…"` with `@lang` or `^^<datatype>`, a number, a blank node, or empty. Tabs and
        newlines inside literals are escaped, so cells and rows split exactly.
        """
        if self.identity or self.canonical.encode() not in tsv:
            return tsv
        lines = tsv.decode("utf-8").split("\n")
        out = [lines[0]]  # the variables
        for line in lines[1:]:
            out.append("\t".join(self._tsv_cell(cell) for cell in line.split("\t")) if line else line)
        return "\n".join(out).encode("utf-8")

    def _tsv_cell(self, cell: str) -> str:
        if cell.startswith("<") and not cell.startswith("<<") and cell.endswith(">"):
            return f"<{self.to_public(cell[1:-1])}>"
        if cell.startswith('"') and cell.endswith(">"):
            cut = cell.rfind('"^^<')  # the datatype follows the last quote; IRIs hold no quote
            if cut > 0:
                return f"{cell[: cut + 4]}{self.to_public(cell[cut + 4 : -1])}>"
        return cell

    def term(self, ox: Any, term: Any) -> Any:
        """A pyoxigraph term with our IRIs (and our datatype IRIs) made public."""
        if isinstance(term, ox.NamedNode):
            mapped = self.to_public(term.value)
            return term if mapped == term.value else ox.NamedNode(mapped)
        if isinstance(term, ox.Literal) and term.language is None:
            datatype = self.to_public(term.datatype.value)
            if datatype != term.datatype.value:
                return ox.Literal(term.value, datatype=ox.NamedNode(datatype))
        return term

    def triples(self, ox: Any, triples: Iterable[Any]) -> list[Any]:
        """Result triples with our IRIs made public."""
        if self.identity:
            return list(triples)
        return [
            ox.Triple(self.term(ox, t.subject), self.term(ox, t.predicate), self.term(ox, t.object))
            for t in triples
        ]
