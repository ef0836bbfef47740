#!/usr/bin/env python3
"""Per-label counts of everything a detector could learn instead of the voice.

    python3 tools/voice-data/balance.py OUT/manifest.tsv [--split train]

Prints, for language, channel, original sample rate, loudness and duration, how many bonafide
and spoof clips each value has. A language or a channel found under one label only is a
shortcut the model will take: the script then exits 1 (corpus.py runs the same check).
"""

import argparse
import csv
import sys

LABELS = ("bonafide", "spoof")
# Dimensions whose one-label values fail the corpus: they cannot be fixed by training.
STRICT = ("language", "channel")


def rate_bucket(rate):
    rate = int(float(rate or 0))
    if rate <= 8000:
        return "<=8k"
    if rate <= 16000:
        return "11-16k"
    if rate <= 24000:
        return "22-24k"
    return "32-48k"


def loudness_bucket(db):
    db = float(db)
    low = int(db // 4 * 4)
    return f"{low}..{low + 4} dBFS"


def duration_bucket(seconds):
    s = float(seconds)
    for edge, name in ((2, "<2 s"), (4, "2-4 s"), (8, "4-8 s"), (16, "8-16 s")):
        if s < edge:
            return name
    return ">=16 s"


DIMENSIONS = {
    "language": lambda r: r["language"],
    "channel": lambda r: r["channel"],
    "sample rate": lambda r: rate_bucket(r["orig_rate"]),
    "loudness": lambda r: loudness_bucket(r["loudness"]),
    "duration": lambda r: duration_bucket(r["duration"]),
}


def table(rows):
    """{dimension: {value: {label: count}}}"""
    out = {}
    for dim, key in DIMENSIONS.items():
        cells = out.setdefault(dim, {})
        for r in rows:
            cell = cells.setdefault(key(r), dict.fromkeys(LABELS, 0))
            cell[r["label"]] += 1
    return out


def render(t):
    lines = []
    for dim, cells in t.items():
        lines.append(f"{dim:<12} {'bonafide':>9} {'spoof':>9}")
        for value in sorted(cells):
            c = cells[value]
            flag = "  <- one label only" if min(c.values()) == 0 else ""
            lines.append(f"  {value:<10} {c['bonafide']:>9} {c['spoof']:>9}{flag}")
    return "\n".join(lines)


def one_label_only(rows, dimensions=STRICT):
    """'language kk: bonafide only', … for every strict value that one label lacks."""
    t = table(rows)
    problems = []
    for dim in dimensions:
        key = {"language": "language", "channel": "channel"}.get(dim, dim)
        for value, c in sorted(t[key].items()):
            present = [label for label in LABELS if c[label]]
            if len(present) == 1:
                problems.append(f"{dim} {value}: {present[0]} only")
    return problems


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest")
    p.add_argument("--split", help="only this split (train, dev, test)")
    args = p.parse_args()
    with open(args.manifest, newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t")
                if args.split is None or r["split"] == args.split]
    print(render(table(rows)))
    problems = one_label_only(rows)
    if problems:
        print("unbalanced: " + "; ".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
