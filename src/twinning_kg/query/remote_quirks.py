"""Reading a remote store's answers: where a real store departs from the standards.

`RemoteEngine` asks any SPARQL 1.1 store; what it gets back is read here, so that the
answer the client sees is the one the embedded engine would give. Each rule names the
store it was found on and is tested against it (tests/test_virtuoso.py, docs/virtuoso.md):

- errors: Virtuoso answers 500 for faults of the *query* too; its message starts with
  the SQLSTATE (`Virtuoso 37000 Error SP030: …`), which says whose fault it is.
  S1T00 is its own time limit (`MaxQueryExecutionTime`): 422, like ours.
- blank nodes: Virtuoso labels them `nodeID://b10005` in SPARQL XML/JSON results, which
  no SPARQL results parser accepts as a blank node label; they are relabelled
  (the same label always maps to the same node, distinct labels stay distinct).
- geometries: Virtuoso turns every `geo:wktLiteral` into its own `virtrdf:Geometry`,
  storing coordinates as single-precision floats and printing them with 12 digits that
  were never in the data (`10.9464` comes back as `10.946399688721`; upstream issues
  openlink/virtuoso-opensource#456, #803, #808, no switch to turn it off). The datatype
  is put back and each coordinate is printed as the shortest decimal that is the same
  float32: what Virtuoso holds, without invented digits, and for data with up to seven
  significant digits the number that was loaded (`13.4000` reads back as `13.4`).
"""

from __future__ import annotations

import re
import struct
from decimal import Decimal

import pyoxigraph as ox

VIRTUOSO_GEOMETRY = "http://www.openlinksw.com/schemas/virtrdf#Geometry"
WKT_LITERAL = "http://www.opengis.net/ont/geosparql#wktLiteral"

_SQLSTATE = re.compile(r"^Virtuoso (?P<state>[0-9A-Z]{5}) Error")
# SQLSTATE classes that blame the query: syntax/access (37, 42), data (22), cardinality (21).
_QUERY_FAULTS = ("37", "42", "22", "21")
_BNODE_XML = re.compile(rb"<bnode>([^<]*)</bnode>")
_BNODE_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_\-.]*[A-Za-z0-9_\-])?$")
_GEOMETRY_XML = re.compile(
    rb'<literal datatype="' + re.escape(VIRTUOSO_GEOMETRY.encode()) + rb'">([^<]*)</literal>'
)
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def error_status(status: int, text: str) -> int | None:
    """The status for a store's error answer, or None when the store itself failed (502).

    4xx is the query's fault whatever the store. A Virtuoso 500 is read by its SQLSTATE:
    422 for its time limit, 400 for a fault in the query.
    """
    if 400 <= status < 500:
        return 400
    match = _SQLSTATE.match(text)
    if match:
        state = match.group("state")
        if state == "S1T00":
            return 422
        if state.startswith(_QUERY_FAULTS):
            return 400
    return None


def _label(raw: str) -> str:
    label = raw.removeprefix("nodeID://")
    return label if _BNODE_LABEL.match(label) else "x" + raw.encode().hex()


def _float32(token: str) -> str:
    """The shortest decimal with the same single-precision value as `token`."""
    value = struct.unpack("f", struct.pack("f", float(token)))[0]
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == value:
            return format(Decimal(text).normalize(), "f")
    return repr(value)


def wkt(text: str) -> str:
    """Virtuoso's printed geometry with float32 coordinates written without false digits."""
    return _NUMBER.sub(lambda m: _float32(m.group(0)), text)


def fix_xml_results(body: bytes) -> bytes:
    """SPARQL XML results as the standard has them (blank node labels, WKT literals).

    Works on the text: in XML, `<` cannot occur unescaped in character data or attribute
    values, so `<bnode>` and `<literal datatype="…">` match only the elements themselves.
    """
    if b"<bnode>" in body:
        body = _BNODE_XML.sub(lambda m: b"<bnode>" + _label(m.group(1).decode()).encode() + b"</bnode>", body)
    if VIRTUOSO_GEOMETRY.encode() in body:
        body = _GEOMETRY_XML.sub(
            lambda m: (
                b'<literal datatype="'
                + WKT_LITERAL.encode()
                + b'">'
                + wkt(m.group(1).decode()).encode()
                + b"</literal>"
            ),
            body,
        )
    return body


def fix_triples(triples: list[ox.Triple]) -> list[ox.Triple]:
    """Triples with Virtuoso's geometry literals read back as `geo:wktLiteral`."""
    fixed = []
    for triple in triples:
        obj = triple.object
        if isinstance(obj, ox.Literal) and obj.datatype.value == VIRTUOSO_GEOMETRY:
            triple = ox.Triple(
                triple.subject,
                triple.predicate,
                ox.Literal(wkt(obj.value), datatype=ox.NamedNode(WKT_LITERAL)),
            )
        fixed.append(triple)
    return fixed
