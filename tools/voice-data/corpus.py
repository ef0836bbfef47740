#!/usr/bin/env python3
"""Builds aqiqat's voice corpus v2 from the source registry alone (tools/voice-data/sources/).

    python3 tools/voice-data/corpus.py --out ../voice-corpus --mirror /work/.mirror

Each git source is read at its pinned commit from a bare mirror (`fetch` puts them in
MIRROR/<owner>+<name>/repo); each Debian source is `apt-get download`ed at its pinned version
and checked against its sha256. Nothing else is read. Then every kept file is:
- decoded (ffmpeg) to 16 kHz mono, its original rate, codec and channels recorded;
- trimmed to its speech (an energy gate; 0.1-0.3 s of margin, seeded), dropped if under 1 s;
- cut into 4-12 s pieces when longer than 16 s (at most 8 pieces a file);
- brought to a seeded loudness (RMS -32 to -18 dBFS over the speech, the same draw for both
  labels), peaks kept under 0.98;
- written as OUT/audio/<page>/<name>.flac.
Both labels go through the same steps, so format, rate, loudness and leading silence say
nothing about the label.

Splits (corpus-wide, seeded): a spoof clip follows its *system* (every clip of a system, on
every page, is in one split), a bonafide clip its *speaker*; a source may pin itself to one
split. Caps: no system above 5 % of the spoof clips; a language with under 200 genuine clips
gets no more spoof clips in training than genuine ones. Folds: the training split's pages are
dealt into --folds folds (leave-one-page-out); folds.json lists, per fold, the pages held out
and the systems and speakers they contain, which a fold's training set must leave out too.

Output: OUT/manifest.tsv with
  path label system generator family page speaker language channel style split fold
  orig_rate orig_codec duration loudness source_path
OUT/folds.json, OUT/sources.json (per source: commit, counts), and the balance table
(balance.py) printed at the end; the build fails if a language or a channel occurs under one
label only.
"""

import argparse
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import augment
import balance
import generate
import registry

HERE = Path(__file__).resolve().parent
RATE = 16000
# Cut points of one seeded hash, in this order. The test split is the top 15 % and never moves:
# a key (speaker or system) that was test in any build is test in every build, so test figures
# compare across corpora and no corpus trains on an earlier one's test clips. Corpora v1-v5
# gave dev 15 %; since corpus v6 dev keeps 5 % and train 80 %: the folds, not dev, choose
# models (issue 16), and dev had held a seventh of all clips (68 spoof systems, XTTS v2 and
# CosyVoice among them) that no shipped network ever trained on.
SHARES = (("train", 0.80), ("dev", 0.05), ("test", 0.15))
SYSTEM_SHARE_CAP = 0.05
SCARCE_GENUINE = 200
COLUMNS = ["path", "label", "system", "generator", "family", "page", "speaker", "language",
           "channel", "style", "split", "fold", "orig_rate", "orig_codec", "duration", "loudness",
           "source_path"]


def unit(key, seed):
    """A number in [0, 1) from a key: the same key always lands in the same place."""
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest(), 16) / 2**256


def stable_split(key, seed):
    h, acc = unit(key, seed), 0.0
    for name, share in SHARES:
        acc += share
        if h < acc:
            return name
    return SHARES[-1][0]


# ---- reading sources -------------------------------------------------------------------------

class GitSource:
    """Files of a bare mirror at one commit, read through one `git cat-file --batch`."""

    def __init__(self, source, mirror_root):
        owner, name = source.repo.split("/")
        self.git_dir = mirror_root / f"{owner}+{name}" / "repo"
        if (self.git_dir / ".git").is_dir():
            self.git_dir = self.git_dir / ".git"
        if not self.git_dir.exists():
            raise SystemExit(f"{source.id}: no mirror of {source.repo} at {self.git_dir}; "
                             f"bring it with fetch (github:{source.repo})")
        self.commit = source.commit
        ok = subprocess.run(["git", "--git-dir", str(self.git_dir), "cat-file", "-e",
                             f"{self.commit}^{{commit}}"], capture_output=True).returncode == 0
        if not ok:
            head = subprocess.run(["git", "--git-dir", str(self.git_dir), "rev-parse", "HEAD"],
                                  capture_output=True, text=True).stdout.strip()
            raise SystemExit(f"{source.id}: the mirror of {source.repo} lacks the pinned commit "
                             f"{self.commit} (it has {head}); fetch it again or update the registry")

    def paths(self):
        out = subprocess.run(["git", "--git-dir", str(self.git_dir), "ls-tree", "-r", "-z",
                              "--name-only", self.commit], check=True, capture_output=True).stdout
        return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p]

    def read(self, paths):
        """(path, bytes or None when the snapshot left the blob out) for each path."""
        proc = subprocess.Popen(["git", "--git-dir", str(self.git_dir), "cat-file", "--batch"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            for rel in paths:
                proc.stdin.write(f"{self.commit}:{rel}\n".encode("utf-8", "surrogateescape"))
                proc.stdin.flush()
                header = proc.stdout.readline().split()
                if len(header) != 3 or header[1] != b"blob":
                    yield rel, None
                    continue
                data = proc.stdout.read(int(header[2]))
                proc.stdout.read(1)
                yield rel, data
        finally:
            proc.stdin.close()
            proc.wait()


class DebianSource:
    """The data tree of a Debian package at a pinned version, checked by its sha256."""

    def __init__(self, source, cache):
        package, version = source.repo.removeprefix("debian:").split("=", 1)
        cache.mkdir(parents=True, exist_ok=True)
        debs = sorted(cache.glob(f"{package}_*.deb"))
        deb = next((d for d in debs if sha256_file(d) == source.sha256), None)
        if deb is None:
            subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=cache, check=True,
                           stdout=subprocess.DEVNULL)
            deb = next((d for d in sorted(cache.glob(f"{package}_*.deb"))
                        if sha256_file(d) == source.sha256), None)
        if deb is None:
            raise SystemExit(f"{source.id}: no {package}={version} with sha256 {source.sha256}")
        tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True,
                             capture_output=True).stdout
        self.tar = tarfile.open(fileobj=__import__("io").BytesIO(tar))
        self.members = {m.name.removeprefix("./"): m for m in self.tar.getmembers() if m.isfile()}

    def paths(self):
        return sorted(self.members)

    def read(self, paths):
        for rel in paths:
            yield rel, self.tar.extractfile(self.members[rel]).read()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---- one clip --------------------------------------------------------------------------------

def probe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                          "stream=sample_rate,channels,codec_name", "-of", "json", str(path)],
                         capture_output=True, text=True)
    streams = json.loads(out.stdout or "{}").get("streams", [])
    if not streams:
        return None
    s = streams[0]
    return int(s.get("sample_rate", 0) or 0), s.get("codec_name", "?"), int(s.get("channels", 1))


def decode(path):
    import numpy as np
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-vn", "-ac", "1",
                          "-ar", str(RATE), "-f", "f32le", "-"], capture_output=True)
    if out.returncode != 0:
        return None
    return np.frombuffer(out.stdout, dtype=np.float32).astype(np.float64)


def speech_bounds(x, frame=320):
    """First and last sample of the frames within 40 dB of the loudest (and above -55 dBFS)."""
    import numpy as np
    n = len(x) // frame
    if n == 0:
        return None
    energy = (x[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
    db = 10 * np.log10(energy + 1e-12)
    active = np.flatnonzero(db > max(db.max() - 40, -55))
    if len(active) == 0:
        return None
    return active[0] * frame, (active[-1] + 1) * frame


def pieces(length, key, seed):
    """Where a long clip is cut: 4-12 s pieces, at most 8."""
    if length <= 16 * RATE:
        return [(0, length)]
    out, start, i = [], 0, 0
    while start + 4 * RATE <= length and i < 8:
        size = int((4 + 8 * unit(f"{key}:piece{i}", seed)) * RATE)
        out.append((start, min(length, start + size)))
        start += size
        i += 1
    return out


def normalise(x, key, seed):
    """Seeded loudness over the speech, peaks under 0.98; returns (audio, dBFS)."""
    import numpy as np
    target = -32 + 14 * unit(f"{key}:loudness", seed)
    rms = np.sqrt((x ** 2).mean() + 1e-12)
    gain = 10 ** (target / 20) / rms
    peak = np.abs(x).max() * gain
    if peak > 0.98:
        gain *= 0.98 / peak
    y = x * gain
    return y, 20 * np.log10(np.sqrt((y ** 2).mean()) + 1e-12)


def clip_record(out_root, page, stem):
    """Where the rows made of one source file are remembered, so a rerun skips the work."""
    return out_root / "audio" / page / f"{stem}.json"


def replace_file(path, write):
    """`write(tmp)` makes the file beside `path`, which then takes its place: an interrupted
    write leaves nothing half-written under the real name, and a build into a hard-linked copy
    of an earlier build (`cp -al`, to reuse its clips) never writes through into that build."""
    tmp = path.with_name(f".part-{path.name}")
    write(tmp)
    os.replace(tmp, path)


def write_text(path, text):
    replace_file(path, lambda tmp: tmp.write_text(text))


def write_flac(path, y):
    import numpy as np
    import soundfile as sf
    replace_file(path, lambda tmp: sf.write(tmp, y.astype(np.float32), RATE, subtype="PCM_16",
                                            format="FLAC"))


def write_record(path, rows, data):
    write_text(path, json.dumps(dict(sha256=hashlib.sha256(data).hexdigest(), rows=rows)))


def remembered(path, row, page, where, data=None):
    """The rows an earlier build made of one file, or None if there are none to trust.

    What was measured from the audio (the clip paths, durations, loudness, original rate) holds
    as long as the file's bytes are the same (`data`, where known before the work is done: a
    generated file is not); what the registry says of the file (label, system, speaker...) and
    where it came from are taken from `row` and `where` as they are now, so that a build over an
    earlier build's clips equals a build from scratch after a rule has changed."""
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    if isinstance(record, dict):
        if data is not None and record["sha256"] != hashlib.sha256(data).hexdigest():
            return None
        rows = record["rows"]
    else:
        rows = record  # written before records held their file's hash
    return [dict(r, **row, page=page, generator=row["system"], source_path=where) for r in rows]


def recalled(source, rel, row, out_root, stem, origin=None, data=None):
    """What `process` would take from its record of this file, or None: for the generators,
    which look before they synthesise the file `process` is then given."""
    return remembered(clip_record(out_root, source.id, stem), row, source.id,
                      source_path(source, rel, origin), data)


def source_path(source, rel, origin=None):
    """Where a clip came from, as the manifest says it: repository, commit and path, or the
    generator and (for a copy-synthesis) the genuine clip it was made from."""
    if origin is not None:
        return f"{source.repo}:{origin['path']}"
    if source.origin == "generated":
        return f"{source.repo}:{rel}"
    return f"{source.repo}@{source.commit[:12]}:{rel}"


def process(source, rel, data, row, out_root, scratch, seed, stem=None, origin=None):
    """The manifest rows one source file becomes (none if it holds no usable speech).
    `origin`: the genuine row a copy-synthesis was made from."""
    if stem is None:
        digest = hashlib.sha256(f"{source.id}:{rel}".encode()).hexdigest()[:12]
        stem = f"{digest}-{Path(rel).stem[:40]}".replace(" ", "_")
    else:
        digest = hashlib.sha256(f"{source.id}:{stem}".encode()).hexdigest()[:12]
    page_dir = out_root / "audio" / source.id
    rows = recalled(source, rel, row, out_root, stem, origin, data)
    if rows is not None:
        return rows
    done = clip_record(out_root, source.id, stem)
    where = source_path(source, rel, origin)
    import numpy as np
    tmp = scratch / f"{source.id}-{digest}{Path(rel).suffix}"
    tmp.write_bytes(data)
    try:
        facts = probe(tmp)
        x = decode(tmp) if facts else None
    finally:
        tmp.unlink(missing_ok=True)
    rows = []
    if x is not None and len(x) > 0 and np.isfinite(x).all():
        bounds = speech_bounds(x)
        if bounds:
            margin = int((0.1 + 0.2 * unit(f"{stem}:margin", seed)) * RATE)
            x = x[max(0, bounds[0] - margin): bounds[1] + margin]
            for i, (a, b) in enumerate(pieces(len(x), stem, seed)):
                piece = x[a:b]
                if len(piece) < RATE:
                    continue
                name = f"{stem}-p{i}" if i else stem
                y, loudness = normalise(piece, name, seed)
                page_dir.mkdir(parents=True, exist_ok=True)
                path = page_dir / f"{name}.flac"
                write_flac(path, y)
                rows.append(dict(row, path=os.path.relpath(path, out_root), page=source.id,
                                 generator=row["system"], orig_rate=facts[0], orig_codec=facts[1],
                                 duration=round(len(piece) / RATE, 3), loudness=round(loudness, 1),
                                 source_path=where, source_rel=rel))
    page_dir.mkdir(parents=True, exist_ok=True)
    write_record(done, rows, data)
    return rows


def build_source(source, args, scratch, seen, conflicts):
    """`seen`: content hash -> (source id, path, label) of every file taken so far; a file
    that another page already published (baselines copied between papers' pages) is taken
    once, by the first source in registry order."""
    reader = (DebianSource(source, args.out / "cache") if source.origin == "debian"
              else GitSource(source, args.mirror))
    matched = [(rel, source.classify(rel)) for rel in reader.paths()]
    matched = [(rel, row) for rel, row in matched if row is not None]
    classified = dict(matched)
    rows, missing, duplicates = [], 0, 0
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = []
        for rel, data in reader.read(list(classified)):
            if data is None:
                missing += 1
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:
                first = seen[digest]
                if first[2] != classified[rel]["label"]:
                    print(f"{source.id}: {rel} is {first[1]} of {first[0]} with the other label; "
                          f"left out of both", file=sys.stderr)
                    conflicts.add(digest)
                duplicates += 1
                continue
            seen[digest] = (source.id, rel, classified[rel]["label"])
            futures.append(pool.submit(process, source, rel, data, dict(classified[rel]),
                                       args.out, scratch, args.seed))
        for f in futures:
            rows += f.result()
    if duplicates:
        print(f"{source.id}: {duplicates} files already taken from an earlier page", file=sys.stderr)
    return rows, len(matched), missing


# ---- splits, caps, folds ---------------------------------------------------------------------

def system_splits(source):
    """The systems a source pins to one split (`[source.options.system_splits]`), where the
    seeded draw would put one that training must hear (session 38: Griffin-Lim copy-synthesis,
    the only Griffin-Lim clips besides 85 TTS outputs, had been drawn into dev)."""
    pins = dict(source.options.get("system_splits", {}))
    for system, split in pins.items():
        if split not in registry.SPLITS:
            raise SystemExit(f"{source.id}: system_splits puts {system} in {split!r}, "
                             f"not one of {registry.SPLITS}")
    return pins


def spoof_split(system, seed, pins):
    """The split of every clip of a spoof system: its pin, or the seeded draw."""
    return pins.get(system) or stable_split(f"system:{system}", seed)


def assign_splits(rows, sources, seed):
    pinned = {s.id: s.split for s in sources if s.split}
    systems = {k: v for s in sources for k, v in system_splits(s).items()}
    for r in rows:
        if r["page"] in pinned:
            r["split"] = pinned[r["page"]]
        elif r["label"] == "spoof":
            r["split"] = spoof_split(r["system"], seed, systems)
        else:
            r["split"] = stable_split(f"speaker:{r['speaker']}", seed)


def cap_systems(rows, seed, share=SYSTEM_SHARE_CAP):
    """No system holds more than `share` of the spoof clips: the surplus, chosen by hash, goes."""
    while True:
        spoof = [r for r in rows if r["label"] == "spoof"]
        limit = max(1, int(share * len(spoof)))
        by_system = {}
        for r in spoof:
            by_system.setdefault(r["system"], []).append(r)
        over = {s: rs for s, rs in by_system.items() if len(rs) > limit}
        if not over:
            return rows
        drop = set()
        for rs in over.values():
            rs.sort(key=lambda r: unit(f"cap:{r['path']}", seed))
            drop.update(id(r) for r in rs[limit:])
        rows = [r for r in rows if id(r) not in drop]


def cap_scarce_languages(rows, seed, scarce=SCARCE_GENUINE):
    """A language with under `scarce` genuine clips gets no more spoof clips in training than it
    has genuine ones there: otherwise the model would learn the language, not the voice. A
    language left with one label only is left out altogether."""
    genuine, drop = {}, set()
    for r in rows:
        if r["label"] == "bonafide":
            genuine[r["language"]] = genuine.get(r["language"], 0) + 1
    for lang in sorted({r["language"] for r in rows}):
        if genuine.get(lang, 0) >= scarce:
            continue
        train_genuine = sum(1 for r in rows if r["language"] == lang and r["label"] == "bonafide"
                            and r["split"] == "train")
        spoof = [r for r in rows if r["language"] == lang and r["label"] == "spoof"
                 and r["split"] == "train"]
        spoof.sort(key=lambda r: unit(f"lang:{r['path']}", seed))
        drop.update(id(r) for r in spoof[train_genuine:])
    kept = [r for r in rows if id(r) not in drop]
    # A language heard under one label only teaches nothing but the language: it goes.
    labels = {}
    for r in kept:
        labels.setdefault(r["language"], set()).add(r["label"])
    one_sided = {lang for lang, have in labels.items() if len(have) == 1}
    if one_sided:
        print(f"left out, heard under one label only: {', '.join(sorted(one_sided))}", file=sys.stderr)
    return [r for r in kept if r["language"] not in one_sided]


def make_folds(rows, k, seed):
    """Deals the training split's pages into k folds (largest first), each page to the fold
    where it adds least to the sum of squared shares of the genuine and the synthetic clips:
    folds come out about equal, and one that holds a large page of one label takes pages of
    the other."""
    sizes = {}
    for r in rows:
        if r["split"] == "train":
            size = sizes.setdefault(r["page"], {"bonafide": 0, "spoof": 0})
            size[r["label"]] += 1
    totals = {label: max(1, sum(s[label] for s in sizes.values())) for label in ("bonafide", "spoof")}
    order = sorted(sizes, key=lambda p: (-sum(sizes[p].values()), unit(f"fold:{p}", seed)))
    load = [{"bonafide": 0, "spoof": 0} for _ in range(k)]
    fold_of = {}

    def after(f, page):
        # Squared shares: a page joins the fold it unbalances least, and a fold holding much of
        # one label is the cheapest home for a page of the other.
        return sum(((load[f][label] + sizes[page][label]) / totals[label]) ** 2
                   - (load[f][label] / totals[label]) ** 2 for label in totals)

    for page in order:
        f = min(range(k), key=lambda i: (after(i, page), i))
        fold_of[page] = f
        for label in totals:
            load[f][label] += sizes[page][label]
    folds = []
    for f in range(k):
        held = [r for r in rows if r["split"] == "train" and fold_of.get(r["page"]) == f]
        folds.append(dict(
            fold=f,
            pages=sorted({r["page"] for r in held}),
            systems=sorted({r["system"] for r in held if r["label"] == "spoof"}),
            speakers=sorted({r["speaker"] for r in held if r["label"] == "bonafide"}),
            bonafide=sum(r["label"] == "bonafide" for r in held),
            spoof=sum(r["label"] == "spoof" for r in held)))
    for r in rows:
        r["fold"] = fold_of.get(r["page"], -1) if r["split"] == "train" else -1
    return folds


def write_manifest(path, rows, extra=()):
    def write(tmp):
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, COLUMNS + list(extra), delimiter="\t", extrasaction="ignore",
                               lineterminator="\n")
            w.writeheader()
            for r in sorted(rows, key=lambda r: r["path"]):
                w.writerow(r)
    replace_file(path, write)


def build_environment():
    """What shaped the bytes of this build besides the registry and the seed: the packages that
    decode, synthesise and degrade the audio, and the CPU (ffmpeg's Opus decoder and libopus
    pick SIMD code at run time, so the Opus variants differ between CPUs)."""
    from importlib import metadata
    env = {"python": {}, "debian": {}, "cpu": {}}
    for package in ("numpy", "scipy", "soundfile", "pyworld", "pyroomacoustics"):
        try:
            env["python"][package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            env["python"][package] = None
    for package in ("ffmpeg", "libopus0", "espeak-ng", "festival", "libopencore-amrnb0",
                    "libopencore-amrwb0", "libvo-amrwbenc0", "libgsm1"):
        try:
            out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package],
                                 capture_output=True, text=True)
        except FileNotFoundError:  # not a Debian system
            env["debian"][package] = None
            continue
        env["debian"][package] = (out.stdout.strip() or None) if out.returncode == 0 else None
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        info = []
    for line in info:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and "model" not in env["cpu"]:
            env["cpu"]["model"] = value.strip()
        if key.strip() == "flags" and "simd" not in env["cpu"]:
            env["cpu"]["simd"] = sorted(f for f in value.split()
                                        if f.startswith(("sse", "ssse", "avx", "fma")))
    return env


def list_sources(sources, args):
    """Per source and rule: files matched now against the count the rule was written with."""
    totals = {"bonafide": 0, "spoof": 0}
    systems = set()
    for source in sources:
        if source.origin == "generated":
            print(f"{source.id}: generated ({source.repo})")
            continue
        try:
            reader = (DebianSource(source, args.out / "cache") if source.origin == "debian"
                      else GitSource(source, args.mirror))
        except SystemExit as missing:
            print(f"MISSING {missing}")
            continue
        counts = [0] * len(source.rules)
        for rel in reader.paths():
            row = source.classify(rel)
            if row is None:
                continue
            rule = next(i for i, r in enumerate(source.rules) if r.classify(rel) is not None)
            counts[rule] += 1
            totals[row["label"]] += 1
            if row["label"] == "spoof":
                systems.add(row["system"])
        drift = [f"rule {i + 1}: {c} (written {r.clips})" for i, (c, r) in
                 enumerate(zip(counts, source.rules)) if r.clips is not None and c != r.clips]
        print(f"{source.id}: {sum(counts)} files" + (f"; differs: {', '.join(drift)}" if drift else ""))
    print(f"total: {totals['bonafide']} bonafide, {totals['spoof']} spoof files, "
          f"{len(systems)} spoof systems")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--mirror", type=Path, default=Path("/work/.mirror"))
    p.add_argument("--registry", type=Path, default=registry.REGISTRY)
    p.add_argument("--shared", type=Path, default=registry.SHARED_VOICE)
    p.add_argument("--only", help="comma-separated source ids (a partial build, for checking; as in a full "
                   "build, a language the chosen sources hold under one label only is left out)")
    p.add_argument("--seed", type=int, default=20261130)
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    p.add_argument("--list", action="store_true",
                   help="only check the registry against the mirrors: files matched per rule")
    p.add_argument("--augment", type=int, default=2, choices=range(0, len(augment.KINDS) + 1),
                   metavar="N", help="channel variants per training/dev clip (0: none)")
    args = p.parse_args()
    args.out = args.out.resolve()
    reserved = registry.reserved_repositories(args.shared / "README.md")
    sources = registry.load(args.registry, reserved)
    if args.only:
        wanted = set(args.only.split(","))
        sources = [s for s in sources if s.id in wanted]
    if args.list:
        return list_sources(sources, args)
    scratch = args.out / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)

    rows, report = [], {}

    def note(source, got, matched, missing):
        report[source.id] = dict(repo=source.repo, commit=source.commit, licence=source.licence,
                                 matched=matched, missing_blobs=missing, clips=len(got))
        print(f"{source.id}: {matched} files matched, {missing} left out of the snapshot, "
              f"{len(got)} clips", file=sys.stderr)

    # Fetched sources first: copy-synthesis needs the genuine clips and their splits.
    seen, conflicts = {}, set()
    for source in sources:
        if source.origin != "generated":
            got, matched, missing = build_source(source, args, scratch, seen, conflicts)
            rows += got
            note(source, got, matched, missing)
    conflicted = {f"{page}:{path}" for page, path, _ in
                  (seen[d] for d in conflicts)}
    rows = [r for r in rows if f"{r['page']}:{r['source_rel']}" not in conflicted]
    assign_splits(rows, sources, args.seed)
    for source in sources:
        if source.repo in ("generated:espeak-ng", "generated:festival"):
            got, matched, missing = generate.build_tts(source, args, scratch)
        elif source.repo == "generated:resynth":
            genuine = [r for r in rows if r["label"] == "bonafide"]
            got, matched, missing = generate.build_resynth(source, args, scratch, genuine)
        elif source.origin == "generated":
            raise SystemExit(f"{source.id}: no generator for {source.repo}")
        else:
            continue
        rows += got
        note(source, got, matched, missing)
    shutil.rmtree(scratch, ignore_errors=True)

    assign_splits(rows, sources, args.seed)
    rows = cap_systems(rows, args.seed)
    rows = cap_scarce_languages(rows, args.seed)
    folds = make_folds(rows, args.folds, args.seed)
    write_manifest(args.out / "manifest.tsv", rows)
    write_text(args.out / "folds.json", json.dumps(folds, indent=1))
    write_text(args.out / "sources.json", json.dumps(report, indent=1))
    write_text(args.out / "environment.json", json.dumps(build_environment(), indent=1))
    variants = []
    if args.augment:
        scratch.mkdir(parents=True, exist_ok=True)
        variants = augment.augment(rows, args.augment, args.out, scratch, args.seed, args.jobs)
        shutil.rmtree(scratch, ignore_errors=True)
        write_manifest(args.out / "manifest_aug.tsv", variants, extra=("augment", "parent"))
    table = balance.table(rows + variants)
    print(balance.render(table))
    problems = balance.one_label_only(rows + variants)
    if problems:
        print("unbalanced: " + "; ".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    registry.run(main, __file__)
