"""Draw the site's icon: `favicon.svg` and `favicon.ico` (16 and 32 px PNGs) from one geometry.

Two twinned towns: two overlapping discs on the site's header blue. Pure Python (the
discs are rasterised with 8x8 supersampling, written as PNG with zlib, wrapped in an ICO
container), so the icon is rebuilt the same anywhere: `python tools/make_favicon.py`,
`--check` to compare with the committed files.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "twinning_kg" / "web" / "static" / "site"
BACKGROUND = (0x12, 0x32, 0x4F)
# (centre x, centre y, radius, colour, opacity) in a 32-unit square
DISCS = ((12.0, 16.5, 8.5, (0xFF, 0xFF, 0xFF), 1.0), (20.5, 15.5, 8.5, (0x8F, 0xB3, 0xD3), 0.85))
CORNER = 6.0


def svg() -> str:
    discs = "".join(
        f'<circle cx="{x:g}" cy="{y:g}" r="{r:g}" fill="#{c[0]:02x}{c[1]:02x}{c[2]:02x}"'
        + (f' fill-opacity="{a:g}"' if a < 1 else "")
        + "/>"
        for x, y, r, c, a in DISCS
    )
    bg = "#{:02x}{:02x}{:02x}".format(*BACKGROUND)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
        f'<rect width="32" height="32" rx="{CORNER:g}" fill="{bg}"/>{discs}</svg>\n'
    )


def _inside_rounded(x: float, y: float) -> bool:
    cx = min(max(x, CORNER), 32 - CORNER)
    cy = min(max(y, CORNER), 32 - CORNER)
    return (x - cx) ** 2 + (y - cy) ** 2 <= CORNER**2


def pixels(size: int, samples: int = 8) -> bytes:
    """RGBA rows of the icon at `size` px, each row prefixed with PNG filter type 0."""
    scale = 32 / size
    rows = bytearray()
    for py in range(size):
        rows.append(0)
        for px in range(size):
            acc = [0.0, 0.0, 0.0, 0.0]
            for sy in range(samples):
                for sx in range(samples):
                    x = (px + (sx + 0.5) / samples) * scale
                    y = (py + (sy + 0.5) / samples) * scale
                    if not _inside_rounded(x, y):
                        continue
                    colour = list(BACKGROUND)
                    for cx, cy, r, c, a in DISCS:
                        if (x - cx) ** 2 + (y - cy) ** 2 <= r * r:
                            colour = [colour[i] * (1 - a) + c[i] * a for i in range(3)]
                    for i in range(3):
                        acc[i] += colour[i]
                    acc[3] += 255
            n = samples * samples
            alpha = acc[3] / n
            if alpha:
                rows += bytes(round(acc[i] / (acc[3] / 255)) for i in range(3))
            else:
                rows += bytes(3)
            rows.append(round(alpha))
    return bytes(rows)


def png(size: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels(size), 9))
        + chunk(b"IEND", b"")
    )


def ico(sizes: tuple[int, ...] = (16, 32)) -> bytes:
    """An ICO file holding one PNG per size (Windows Vista's PNG-in-ICO, which browsers read)."""
    images = [png(size) for size in sizes]
    out = struct.pack("<HHH", 0, 1, len(images))
    offset = 6 + 16 * len(images)
    for size, image in zip(sizes, images, strict=True):
        out += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(image), offset)
        offset += len(image)
    return out + b"".join(images)


def main(argv: list[str]) -> int:
    wanted = {"favicon.svg": svg().encode(), "favicon.ico": ico()}
    if "--check" in argv:
        stale = [name for name, data in wanted.items() if (OUT / name).read_bytes() != data]
        if stale:
            print(f"out of date: {', '.join(stale)} (run python tools/make_favicon.py)", file=sys.stderr)
            return 1
        return 0
    for name, data in wanted.items():
        (OUT / name).write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
