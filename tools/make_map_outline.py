"""Convert Natural Earth 110m country outlines (TopoJSON) into the site's map asset.

Why: the landing page draws Kassel and its partners as inline SVG with no tile server,
so the country background must ship with the package. We vendor a small, generated
JSON file instead of the TopoJSON and its decoder; this script is how it was made and
how to remake it.

Usage (offline once the npm package is unpacked):

    cd "$(mktemp -d)" && npm install world-atlas@2.0.2
    python tools/make_map_outline.py node_modules/world-atlas/countries-110m.json \
        src/twinning_kg/web/static/site/countries-110m.json

Longitudes are unwrapped across the antimeridian (a ring may reach past ±180); rings lying
entirely south of 60°S (Antarctica) are dropped.

Output: {"source", "licence", "countries": [{"id", "name", "rings": [[[lon, lat], ...], ...]}]}
with coordinates rounded to 0.01 degree (far below what a 110m outline resolves) and
countries sorted by id, so the same input gives the same bytes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SOURCE = "Natural Earth 1:110m Admin 0 countries v4.1.0, via the npm package world-atlas 2.0.2"
LICENCE = (
    "Natural Earth data is in the public domain (https://www.naturalearthdata.com/about/terms-of-use/); "
    "world-atlas packaging (c) Michael Bostock, ISC licence."
)


def decode_arcs(topology: dict) -> list[list[tuple[float, float]]]:
    """Delta-decode the quantized arcs into lon/lat positions (TopoJSON spec §2.1.3)."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring(arcs: list[list[tuple[float, float]]], indexes: list[int]) -> list[list[float]]:
    """Stitch arcs into one ring; a negative index ~i means arc i reversed."""
    points: list[tuple[float, float]] = []
    for index in indexes:
        arc = arcs[index] if index >= 0 else list(reversed(arcs[~index]))
        points.extend(arc[1:] if points else arc)
    out: list[list[float]] = []
    previous = None
    for lon, lat in points:
        # Unwrap across the antimeridian (Russia, Fiji): keep each ring continuous, past ±180
        # if need be, so no fill stripe runs around the world.
        if previous is not None:
            while lon - previous > 180:
                lon -= 360
            while previous - lon > 180:
                lon += 360
        previous = lon
        p = [round(lon, 2), round(lat, 2)]
        if not out or out[-1] != p:
            out.append(p)
    return out


def convert(topology: dict) -> dict:
    arcs = decode_arcs(topology)
    countries = []
    for geometry in topology["objects"]["countries"]["geometries"]:
        kind = geometry.get("type")
        if kind == "Polygon":
            polygons = [geometry["arcs"]]
        elif kind == "MultiPolygon":
            polygons = geometry["arcs"]
        else:
            continue
        rings = [ring(arcs, r) for polygon in polygons for r in polygon]
        countries.append(
            {
                "id": str(geometry.get("id", "")),
                "name": geometry.get("properties", {}).get("name", ""),
                # Antarctica's ring circles the pole and cannot be drawn flat; no twin town lies there.
                "rings": [r for r in rings if len(r) >= 3 and max(lat for _, lat in r) > -60],
            }
        )
    countries.sort(key=lambda c: (c["id"], c["name"]))
    return {"source": SOURCE, "licence": LICENCE, "countries": countries}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    topology = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    out = convert(topology)
    Path(argv[2]).write_text(
        json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    print(f"{argv[2]}: {len(out['countries'])} countries")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
