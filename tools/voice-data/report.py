#!/usr/bin/env python3
"""The counts docs/corpus-voice.md reports, as Markdown, from a built corpus.

    python3 tools/voice-data/report.py ../voice-corpus > /tmp/counts.md
"""

import csv
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path


def read(path):
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def table(title, counter, keys, labels=("bonafide", "spoof")):
    lines = [f"| {title} | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(str(counter.get((k, label), 0)) for label in labels) + " |")
    return "\n".join(lines)


def main():
    root = Path(sys.argv[1])
    rows = read(root / "manifest.tsv")
    variants = read(root / "manifest_aug.tsv")
    folds = json.loads((root / "folds.json").read_text()) if (root / "folds.json").exists() else []
    out = []
    by = lambda key, rs: Counter((r[key], r["label"]) for r in rs)
    labels = Counter(r["label"] for r in rows)
    speakers = {r["speaker"] for r in rows if r["label"] == "bonafide"}
    systems = {r["system"] for r in rows if r["label"] == "spoof"}
    pages = {r["page"] for r in rows}
    out.append(f"Clips: {labels['bonafide']} bonafide from {len(speakers)} speakers, "
               f"{labels['spoof']} spoof from {len(systems)} systems, on {len(pages)} pages; "
               f"{len(variants)} channel variants of the training and development clips.\n")
    hours = sum(float(r["duration"]) for r in rows) / 3600
    out.append(f"Audio: {hours:.1f} h (after trimming), 16 kHz mono FLAC.\n")
    for key, title in (("split", "split"), ("language", "language"), ("channel", "channel (originals)"),
                       ("style", "speaking style")):
        c = by(key, rows)
        keys = sorted({k for k, _ in c}, key=lambda k: -(c.get((k, "bonafide"), 0) + c.get((k, "spoof"), 0)))
        out.append(table(title, c, keys) + "\n")
    c = by("channel", rows + variants)
    keys = sorted({k for k, _ in c})
    out.append(table("channel (originals and variants)", c, keys) + "\n")
    c = by("family", rows)
    keys = sorted({k for k, _ in c}, key=lambda k: -(c.get((k, "bonafide"), 0) + c.get((k, "spoof"), 0)))
    out.append(table("family", c, keys) + "\n")
    lang_channel = Counter((f"{r['language']} / {r['channel']}", r["label"]) for r in rows + variants)
    keys = sorted({k for k, _ in lang_channel})
    out.append(table("language / channel (originals and variants)", lang_channel, keys) + "\n")
    per_system = defaultdict(lambda: [0, set(), set()])
    for r in rows:
        if r["label"] == "spoof":
            s = per_system[r["system"]]
            s[0] += 1
            s[1].add(r["page"])
            s[2].add(r["family"])
    out.append("| system | clips | family | pages | split |\n|---|---:|---|---|---|")
    split_of = {r["system"]: r["split"] for r in rows if r["label"] == "spoof"}
    for name in sorted(per_system):
        n, pgs, fams = per_system[name]
        out.append(f"| {name} | {n} | {', '.join(sorted(fams))} | {', '.join(sorted(pgs))} | {split_of[name]} |")
    out.append("")
    if folds:
        out.append("| fold | pages | held-out bonafide | held-out spoof | systems left out of its training |\n"
                   "|---:|---:|---:|---:|---:|")
        for f in folds:
            out.append(f"| {f['fold']} | {len(f['pages'])} | {f['bonafide']} | {f['spoof']} | {len(f['systems'])} |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
