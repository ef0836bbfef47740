#!/usr/bin/env python3
"""Takes the image corpus's raw files out of the fetched repositories (issue 21).

Reads sources.tsv, opens each repository's bare mirror (as the `fetch` tool leaves it:
MIRRORS/owner+name/repo), reads only the pinned commit, and writes every selected file,
byte for byte, to OUT/raw/ID-BLOB.EXT (EXT from the file's first bytes, not its name: some
repositories hold WebP under .png) with one line per file in OUT/raw.tsv. Files whose bytes
are the same are taken once (the first row naming them wins). The pixels are normalised
later, by `aqiqat-train image-corpus`.

    python3 tools/image-data/extract.py --mirrors /work/.mirror --out /work/corpus-image

Standard library only; git on PATH.
"""

import argparse
import csv
import fnmatch
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
COLUMNS = ["id", "repo", "commit", "select", "label", "generator", "family", "content",
           "licence", "evidence"]
CONTENT = {"faces", "people", "scenes", "objects", "art", "documents"}


def read_sources(path):
    """The registry's rows, checked."""
    rows = []
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if not line.startswith("#") and line.strip()]
    reader = csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    if reader.fieldnames != COLUMNS:
        raise ValueError(f"{path}: columns {reader.fieldnames}, expected {COLUMNS}")
    seen = set()
    for row in reader:
        if row["id"] in seen:
            raise ValueError(f"{path}: id {row['id']} twice")
        seen.add(row["id"])
        if row["label"] not in ("ai", "real"):
            raise ValueError(f"{row['id']}: label {row['label']!r}")
        if not re.fullmatch(r"[0-9a-f]{40}", row["commit"]):
            raise ValueError(f"{row['id']}: commit {row['commit']!r} is not pinned")
        kind = row["select"].split(":", 1)[0]
        if kind not in ("glob", "list", "history"):
            raise ValueError(f"{row['id']}: select {row['select']!r}")
        content_tag(row["content"], "x")  # the rules parse
        rows.append(row)
    return rows


def content_tag(rule, path):
    """The content tag of `path`: a fixed tag, or the first keyword rule its name matches."""
    if rule in CONTENT:
        return rule
    fallback = None
    for part in rule.split(";"):
        tag, _, words = part.partition("=")
        if tag not in CONTENT and tag != "else":
            raise ValueError(f"content rule {rule!r}: {tag!r} is not a tag")
        if tag == "else":
            if words not in CONTENT:
                raise ValueError(f"content rule {rule!r}: else={words!r}")
            fallback = words
        elif any(w and w in path.lower() for w in words.split("|")):
            return tag
    if fallback is None:
        raise ValueError(f"content rule {rule!r} has no else=")
    return fallback


def matches(spec, path):
    """Whether `path` matches a glob spec: PATTERN|!EXCLUDED|!EXCLUDED…"""
    first, *rest = spec.split("|")
    return fnmatch.fnmatchcase(path, first) and not any(
        fnmatch.fnmatchcase(path, r[1:]) for r in rest if r.startswith("!"))


def sniff(head):
    """The file's real format, from its first bytes."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


class Mirror:
    def __init__(self, git_dir):
        self.git_dir = git_dir

    def git(self, *args, binary=False):
        out = subprocess.run(["git", "--git-dir", self.git_dir, *args], check=True,
                             capture_output=True)
        return out.stdout if binary else out.stdout.decode("utf-8", "surrogateescape")

    def tree(self, commit):
        """(path, blob) of every file at `commit`."""
        out = self.git("ls-tree", "-r", "-z", "--full-tree", commit)
        files = []
        for entry in out.split("\0"):
            if not entry:
                continue
            meta, path = entry.split("\t", 1)
            mode, kind, blob = meta.split()
            if kind == "blob":
                files.append((path, blob))
        return files

    def first_paths(self, commit):
        """blob → the path it was first added under, in the history up to `commit`."""
        out = self.git("log", "--reverse", "--format=", "--raw", "--no-abbrev", "-z",
                       "--diff-filter=A", "--no-renames", commit)
        first = {}
        fields = out.split("\0")
        i = 0
        while i < len(fields):
            meta = fields[i].strip()
            if meta.startswith(":") and i + 1 < len(fields):
                blob = meta.split()[3]
                first.setdefault(blob, fields[i + 1])
                i += 2
            else:
                i += 1
        return first

    def blob(self, blob):
        return self.git("cat-file", "blob", blob, binary=True)


def read_list(name):
    with open(os.path.join(HERE, "lists", name), encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def select(row, mirror):
    """(path, blob, overrides) of the files a registry row names."""
    kind, _, spec = row["select"].partition(":")
    tree = mirror.tree(row["commit"])
    if kind == "glob":
        return [(p, b, {}) for p, b in tree if matches(spec, p)]
    if kind == "list":
        by_path = dict(tree)
        chosen = []
        for entry in read_list(spec):
            path = entry["path"]
            if path not in by_path:
                raise ValueError(f"{row['id']}: {path} is not in {row['repo']}@{row['commit']}")
            extra = {k: v for k, v in entry.items() if k in ("generator", "family") and v}
            chosen.append((path, by_path[path], extra))
        return chosen
    pattern, _, origin = spec.partition("|")
    first = mirror.first_paths(row["commit"])
    wanted = re.compile(origin)
    return [(p, b, {}) for p, b in tree
            if fnmatch.fnmatchcase(p, pattern) and wanted.search(first.get(b, ""))]


def extract(sources, mirrors, out, only=None):
    raw = os.path.join(out, "raw")
    os.makedirs(raw, exist_ok=True)
    taken = {}
    lines = []
    for row in sources:
        if only and row["id"] not in only:
            continue
        git_dir = os.path.join(mirrors, row["repo"].replace("/", "+"), "repo")
        # fetch leaves most snapshots bare, some as a work-tree-less `repo/.git`.
        if os.path.isdir(os.path.join(git_dir, ".git")):
            git_dir = os.path.join(git_dir, ".git")
        if not os.path.isdir(git_dir):
            raise FileNotFoundError(f"{row['repo']}: no mirror at {git_dir} (bring it with fetch)")
        mirror = Mirror(git_dir)
        kept = skipped = 0
        for path, blob, extra in select(row, mirror):
            if blob in taken:
                skipped += 1
                continue
            data = mirror.blob(blob)
            fmt = sniff(data[:16])
            if fmt is None:
                print(f"  {row['id']}: {path}: not an image ({len(data)} bytes; an LFS pointer?)",
                      file=sys.stderr)
                continue
            name = f"{row['id']}-{blob[:16]}.{fmt}"
            with open(os.path.join(raw, name), "wb") as f:
                f.write(data)
            taken[blob] = name
            lines.append({
                "file": name, "source": row["id"], "label": row["label"],
                "generator": extra.get("generator", row["generator"]),
                "family": extra.get("family", row["family"]),
                "content": content_tag(row["content"], path), "format": fmt,
                "bytes": len(data), "repo": row["repo"], "commit": row["commit"],
                "path": path, "blob": blob})
            kept += 1
        print(f"{row['id']}: {kept} files ({skipped} already taken)", file=sys.stderr)
    fields = ["file", "source", "label", "generator", "family", "content", "format", "bytes",
              "repo", "commit", "path", "blob"]
    with open(os.path.join(out, "raw.tsv"), "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, delimiter="\t", quoting=csv.QUOTE_NONE,
                           lineterminator="\n")
        w.writeheader()
        w.writerows(lines)
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mirrors", required=True, help="where fetch left the repositories")
    p.add_argument("--out", required=True, help="the corpus folder (outside git)")
    p.add_argument("--sources", default=os.path.join(HERE, "sources.tsv"))
    p.add_argument("--only", nargs="*", help="registry ids to take (default: all)")
    args = p.parse_args()
    lines = extract(read_sources(args.sources), args.mirrors, args.out, args.only)
    counts = {}
    for line in lines:
        counts[line["label"]] = counts.get(line["label"], 0) + 1
    print(f"{len(lines)} files: {counts}", file=sys.stderr)


if __name__ == "__main__":
    main()
