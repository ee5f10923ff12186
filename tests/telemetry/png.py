"""Pixels of a PNG (8-bit RGB or RGBA, not interlaced: what Chromium's screenshots are)."""

from __future__ import annotations

import struct
import zlib
from collections import Counter


def pixels(png: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """(width, height, RGB of every pixel, row by row)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, data, header = 8, b"", None
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, body = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        at += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            data += body
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and not interlace, header
    channels = 3 if colour == 2 else 4
    stride = width * channels
    raw = zlib.decompress(data)
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(line)
        previous = line
    found = [tuple(row[x * channels : x * channels + 3]) for row in rows for x in range(width)]
    return width, height, found  # type: ignore[return-value]


def share_of(png: bytes, colour: str, tolerance: int = 24) -> float:
    """The share of pixels within `tolerance` of `colour` (`#rrggbb`) in each channel."""
    want = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    _, _, found = pixels(png)
    counts = Counter(found)
    near = sum(n for rgb, n in counts.items() if all(abs(a - b) <= tolerance for a, b in zip(rgb, want)))
    return near / len(found)
