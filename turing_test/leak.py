"""Does a stimulus file give its answer away? What a client sees of a file, as numbers, and how
well the best of them separates real from colorized stimuli (no gradio, no database).

`file_features(data)` reads what any script can read without looking at the pixels: the byte
size, and for each JPEG marker segment or PNG chunk in order its length (a JPEG's Huffman
tables, for instance, are as long as the codes the encoder needed). `leak_auc(real, colorized)`
is the area under the ROC curve of the best single feature (at least 0.5: a feature that runs the
other way counts as well). 0.5 is chance; the survey's encoder must stay under 0.6.
"""
from __future__ import annotations

import struct


def _jpeg_segments(data: bytes) -> list[tuple[str, int]]:
    out, i = [], 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        n = struct.unpack(">H", data[i + 2:i + 4])[0]
        out.append((f"jpeg_{marker:02x}", n))
        if marker == 0xDA:  # the scan: the rest is entropy-coded data
            break
        i += 2 + n
    return out


def _png_chunks(data: bytes) -> list[tuple[str, int]]:
    out, i = [], 8
    while i + 8 <= len(data):
        n = struct.unpack(">I", data[i:i + 4])[0]
        out.append(("png_" + data[i + 4:i + 8].decode("latin-1"), n))
        i += 12 + n
    return out


def file_features(data: bytes) -> dict[str, float]:
    """{feature: value}: "size", and "<kind>_<marker or chunk>_<k>" = the length of the k-th
    segment of that kind (0-based), as a client can read them without decoding."""
    feats = {"size": float(len(data))}
    if data[:2] == b"\xff\xd8":
        segs = _jpeg_segments(data)
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        segs = _png_chunks(data)
    else:
        segs = []
    seen: dict[str, int] = {}
    for name, n in segs:
        k = seen.get(name, 0)
        seen[name] = k + 1
        feats[f"{name}_{k}"] = float(n)
    return feats


def auc(pos: list[float], neg: list[float]) -> float:
    """Area under the ROC curve of a score (pos should score higher): the Mann-Whitney
    probability that a positive outscores a negative, ties counting a half."""
    if not pos or not neg:
        return float("nan")
    wins = 0.0
    for p in pos:
        for q in neg:
            wins += 1.0 if p > q else 0.5 if p == q else 0.0
    return wins / (len(pos) * len(neg))


def leak_auc(real: list[bytes], colorized: list[bytes]) -> tuple[str, float]:
    """(the most telling feature, its AUC folded to >= 0.5) over every feature that the files
    have; ("size", 0.5) when nothing separates them."""
    fr = [file_features(d) for d in real]
    fc = [file_features(d) for d in colorized]
    names = sorted(set().union(*fr, *fc))
    best = ("size", 0.5)
    for name in names:
        a = auc([f.get(name, -1.0) for f in fr], [f.get(name, -1.0) for f in fc])
        a = max(a, 1.0 - a)
        if a > best[1]:
            best = (name, a)
    return best
