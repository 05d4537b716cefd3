"""Inline SVG maps with no tile server: places as markers over Natural Earth outlines.

Why SVG on the server: the pages must work offline and leave no request to a third
party. The projection is equirectangular scaled by cos(mid-latitude), which keeps the
shapes of a European-sized window honest enough for a locator map.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from markupsafe import Markup, escape

OUTLINES = Path(__file__).resolve().parent / "static" / "site" / "countries-110m.json"


@dataclass
class Point:
    lat: float
    lon: float
    label: str
    href: str
    iri: str
    css: str = ""  # e.g. "status-active"
    hub: bool = False


class Located(Protocol):
    """A partner row as the pages hold it: where it is, its place's link, its status."""

    lat: float | None
    lon: float | None
    place: Any
    status_key: str


def partner_markers(rows: Iterable[Located]) -> list[Point]:
    """One marker per partner that has coordinates, coloured by the partnership's status
    (the landing page's map and a place page's map draw the same markers)."""
    return [
        Point(
            lat=row.lat,
            lon=row.lon,
            label=row.place.text,
            href=row.place.href,
            iri=row.place.iri,
            css=f"status-{row.status_key}",
        )
        for row in rows
        if row.lat is not None and row.lon is not None
    ]


@cache
def _countries() -> list[tuple[tuple[float, float, float, float], list[list[tuple[float, float]]]]]:
    """Country rings with their bounding boxes (lon_min, lat_min, lon_max, lat_max)."""
    try:
        data = json.loads(OUTLINES.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # a map without a background beats no page
    out = []
    for country in data.get("countries", []):
        rings = [[(float(x), float(y)) for x, y in ring] for ring in country["rings"]]
        if not rings:
            continue
        xs = [x for ring in rings for x, _ in ring]
        ys = [y for ring in rings for _, y in ring]
        out.append(((min(xs), min(ys), max(xs), max(ys)), rings))
    return out


def render(
    points: list[Point],
    lines_from: Point | None = None,
    width: int = 800,
    height: int = 560,
    label_points: bool = True,
    title: str = "",
) -> Markup:
    """An `<svg>` showing `points` (and lines from `lines_from` to each), fitted to the view."""
    located = [p for p in points if math.isfinite(p.lat) and math.isfinite(p.lon)]
    if lines_from is not None:
        located = [lines_from, *[p for p in located if p is not lines_from]]
    if not located:
        return Markup("")
    lats, lons = [p.lat for p in located], [p.lon for p in located]
    lat0, lat1, lon0, lon1 = min(lats), max(lats), min(lons), max(lons)
    # Pad the window and keep a minimum span so a single city still shows its surroundings.
    pad_lat, pad_lon = max((lat1 - lat0) * 0.12, 3.0), max((lon1 - lon0) * 0.12, 4.0)
    lat0, lat1, lon0, lon1 = lat0 - pad_lat, lat1 + pad_lat, lon0 - pad_lon, lon1 + pad_lon
    kx = math.cos(math.radians(max(min((lat0 + lat1) / 2, 80), -80)))
    span_x, span_y = (lon1 - lon0) * kx, lat1 - lat0
    # Fit the window's aspect to the SVG's by growing the shorter side.
    if span_x / span_y > width / height:
        grow = (span_x * height / width - span_y) / 2
        lat0, lat1, span_y = lat0 - grow, lat1 + grow, span_x * height / width
    else:
        grow = (span_y * width / height - span_x) / 2 / kx
        lon0, lon1, span_x = lon0 - grow, lon1 + grow, span_y * width / height
    scale = width / span_x

    def xy(lat: float, lon: float) -> tuple[float, float]:
        return (lon - lon0) * kx * scale, (lat1 - lat) * scale

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="map" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect class="sea" x="0" y="0" width="{width}" height="{height}"/>',
        '<g class="land">',
    ]
    for (bx0, by0, bx1, by1), rings in _countries():
        if bx1 < lon0 or bx0 > lon1 or by1 < lat0 or by0 > lat1:
            continue
        d = []
        for ring in rings:
            coords = [xy(lat, lon) for lon, lat in ring]
            d.append("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in coords) + "Z")
        parts.append(f'<path d="{"".join(d)}"/>')
    parts.append("</g>")
    if lines_from is not None:
        hx, hy = xy(lines_from.lat, lines_from.lon)
        parts.append('<g class="links">')
        for p in located[1:]:
            x, y = xy(p.lat, p.lon)
            parts.append(
                f'<line class="link {escape(p.css)}" x1="{hx:.1f}" y1="{hy:.1f}" x2="{x:.1f}" y2="{y:.1f}"/>'
            )
        parts.append("</g>")
    parts.append('<g class="markers">')
    placed: list[tuple[float, float, float, float]] = [
        (x - 6, y - 6, x + 6, y + 6) for x, y in (xy(p.lat, p.lon) for p in located)
    ]
    for p in located:
        x, y = xy(p.lat, p.lon)
        css = "marker hub" if p.hub else f"marker {p.css}".strip()
        radius = 7 if p.hub else 5.5
        label = ""
        if label_points:
            tx, ty, anchor, box = _place_label(x, y, p.label, placed, width, height)
            placed.append(box)
            label = f'<text x="{tx:.1f}" y="{ty:.1f}" text-anchor="{anchor}">{escape(p.label)}</text>'
        parts.append(
            f'<a href="{escape(p.href)}" class="{css}" data-iri="{escape(p.iri)}">'
            f"<title>{escape(p.label)}</title>"
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}"/>{label}</a>'
        )
    parts.append("</g></svg>")
    return Markup("".join(parts))


def _place_label(
    x: float, y: float, text: str, placed: list[tuple[float, float, float, float]], width: int, height: int
) -> tuple[float, float, str, tuple[float, float, float, float]]:
    """Greedy label placement: right, left, above, below; the first spot overlapping nothing
    placed so far and inside the map wins, else the least crowded one."""
    w, h = 7.4 * len(text) + 2, 15.0
    candidates = [  # (text x, baseline y, anchor, box)
        (x + 10, y + 5, "start", (x + 9, y - 8, x + 9 + w, y - 8 + h)),
        (x - 10, y + 5, "end", (x - 9 - w, y - 8, x - 9, y - 8 + h)),
        (x, y - 11, "middle", (x - w / 2, y - 24, x + w / 2, y - 24 + h)),
        (x, y + 22, "middle", (x - w / 2, y + 9, x + w / 2, y + 9 + h)),
    ]

    def overlap(box: tuple[float, float, float, float]) -> float:
        total = 0.0
        for ox0, oy0, ox1, oy1 in placed:
            dx = min(box[2], ox1) - max(box[0], ox0)
            dy = min(box[3], oy1) - max(box[1], oy0)
            if dx > 0 and dy > 0:
                total += dx * dy
        outside = box[0] < 0 or box[1] < 0 or box[2] > width or box[3] > height
        return total + (1e6 if outside else 0)

    best = min(candidates, key=lambda c: overlap(c[3]))
    for candidate in candidates:
        if overlap(candidate[3]) == 0:
            best = candidate
            break
    return best
