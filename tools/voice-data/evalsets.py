#!/usr/bin/env python3
"""Builds the evaluation manifests aqiqat's model card reports on, outside the repository.

    python3 tools/voice-data/evalsets.py --out ../voice-eval \
        --resemblyzer /work/.mirror/resemble-ai+Resemblyzer/repo \
        --smoke ../shared/data/voice/smoke.tsv

Writes, under --out:
  public.tsv        Resemblyzer's public test folders, never trained or tuned on:
                    librispeech_test-other (bonafide, 10 unseen speakers), donald_trump/real
                    (bonafide) and donald_trump/fake (spoof, real-world deepfakes).
  smoke.tsv         a copy of the shared smoke manifest pointing at its files.
  <set>_<channel>.tsv  the same sets after a channel round trip, both labels alike:
                    mulaw8k / alaw8k (8 kHz G.711 µ-law / A-law), amr-nb-12.2k / amr-nb-4.75k
                    (AMR narrowband, the mobile call codec at its highest and lowest mode,
                    through the reference library as the corpus builder does; an 8 kHz WAV),
                    mp3-32k (MP3 32 kbit/s), opus-16k (Opus 16 kbit/s).
  heldout_<family>.tsv  with --corpus (prepare.py's output): every clean spoof of one generator
                    family, from all splits, against the test split's clean bonafide clips. A run
                    trained with `aqiqat-train voice --exclude-family <family>` has heard none
                    of those spoofs: the leave-one-generator-out figures.
  test.tsv          with --corpus: the corpus's test split, clean, both labels (speakers and
                    voices no training or tuning run has heard, generators it has), with its
                    family and language columns; with --test-channels also test_<channel>.tsv.
  <id>.tsv          with --eval-sources DIR: one set per registry entry in DIR
                    (tools/voice-data/eval-sources/: sources whose terms allow evaluation only,
                    e.g. ttsdb-examples, the open cloning TTS people run at home), every file
                    its rules classify, extracted whole from the pinned commit of the mirror
                    (--mirror, as corpus.py reads it), with family and language columns.
Columns: path label generator source [family language] [channel]. Needs git and Debian's
ffmpeg (and, for AMR, libopencore-amrnb0 and numpy/scipy, as the corpus builder does).

"""

import argparse
import csv
import io
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent

# ffmpeg arguments and file type, or (for AMR, which Debian's ffmpeg cannot encode) the AMR-NB
# mode number of augment.AMR_NB_KBPS.
CHANNELS = {
    "mulaw8k": (["-ar", "8000", "-ac", "1", "-c:a", "pcm_mulaw"], "wav"),
    "alaw8k": (["-ar", "8000", "-ac", "1", "-c:a", "pcm_alaw"], "wav"),
    "amr-nb-12.2k": (7, "wav"),
    "amr-nb-4.75k": (0, "wav"),
    "mp3-32k": (["-ac", "1", "-c:a", "libmp3lame", "-b:a", "32k"], "mp3"),
    "opus-16k": (["-ac", "1", "-c:a", "libopus", "-b:a", "16k"], "opus"),
}


def amr_nb(src, dst, mode):
    """An AMR-NB call leg: the clip at 8 kHz through the reference encoder and decoder at
    `mode`, written as the 8 kHz 16-bit WAV a telephony system would hand over."""
    import numpy as np
    import soundfile
    from scipy.signal import resample_poly
    from augment import AMR_NB, RATE, _amr
    pcm = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(src), "-ac", "1",
                          "-ar", str(RATE), "-f", "f32le", "-"],
                         check=True, capture_output=True).stdout
    x = np.frombuffer(pcm, dtype=np.float32).astype(np.float64)
    y = resample_poly(_amr(x, 8000, 160, mode, *AMR_NB), 8000, RATE)
    soundfile.write(dst, np.clip(y, -1.0, 1.0), 8000, subtype="PCM_16")


def extract(git_dir, folder, dest):
    archive = subprocess.run(
        ["git", "--git-dir", str(git_dir), "archive", "HEAD", folder],
        check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")


def write(path, rows, columns):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, columns, delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def public_rows(out, resemblyzer):
    extract(resemblyzer, "audio_data/librispeech_test-other", out / "public")
    extract(resemblyzer, "audio_data/donald_trump", out / "public")
    rows = []
    base = out / "public" / "audio_data"
    for p in sorted((base / "librispeech_test-other").rglob("*.flac")):
        rows.append({"path": str(p.relative_to(out)), "label": "bonafide", "generator": "human",
                     "source": "librispeech-test-other"})
    for kind, label, generator in [("real", "bonafide", "human"), ("fake", "spoof", "unknown-deepfake")]:
        for p in sorted((base / "donald_trump" / kind).glob("*.mp3")):
            rows.append({"path": str(p.relative_to(out)), "label": label, "generator": generator,
                         "source": f"donald-trump-{kind}"})
    return rows


def smoke_rows(out, smoke):
    rows = []
    with open(smoke) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            target = (smoke.parent / r["path"]).resolve()
            rows.append({"path": str(target), "label": r["label"], "generator": r["generator"],
                         "source": r["source"].split(":")[0]})
    return rows


def eval_sources(registry_dir):
    """The entries of an evaluation-only registry (tools/voice-data/eval-sources/), read as the
    corpus registry is, reserved repositories refused: checked before any set is written, so
    that a faulty entry costs no time."""
    import registry
    reserved = registry.reserved_repositories(registry.SHARED_VOICE / "README.md")
    sources = registry.load(registry_dir, reserved)
    for source in sources:
        # Registry ids hold no '_', so only these three of evalsets.py's own names could clash.
        if source.id in ("smoke", "public", "test"):
            raise registry.RegistryError(f"{source.id}: the name of one of evalsets.py's own sets")
        if source.origin != "git":
            raise registry.RegistryError(f"{source.id}: an evaluation source must be a repository")
    return sources


def registered_rows(out, sources, mirror):
    """Every file an evaluation-only registry entry classifies, extracted whole from its pinned
    commit under OUT/registered/<id>/: one set per entry, never trained on."""
    from corpus import GitSource
    sets = {}
    for source in sources:
        reader = GitSource(source, mirror)
        wanted = {rel: row for rel in reader.paths() if (row := source.classify(rel))}
        rows = []
        for rel, data in reader.read(sorted(wanted)):
            if data is None:
                raise SystemExit(f"{source.id}: {rel} is not in the snapshot of {source.repo}")
            dst = out / "registered" / source.id / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(data)
            row = wanted[rel]
            rows.append({"path": str(dst.relative_to(out)), "label": row["label"],
                         "generator": row["system"], "source": source.id,
                         "family": row["family"], "language": row["language"]})
        sets[source.id] = rows
    return sets


def source_of(row):
    """Where a corpus clip came from: corpus v1's `source` column, or corpus v2's page."""
    return row.get("source") or row["page"]


def test_rows(corpus):
    with open(corpus / "manifest.tsv") as f:
        return [{"path": str((corpus / r["path"]).resolve()), "label": r["label"],
                 "generator": r["generator"], "source": source_of(r),
                 "family": r["family"], "language": r["language"]}
                for r in csv.DictReader(f, delimiter="\t") if r["split"] == "test"]


def heldout_rows(corpus):
    """Per spoof family: its clean clips (any split) plus the test split's clean bonafide."""
    with open(corpus / "manifest.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    bonafide = [r for r in rows if r["label"] == "bonafide" and r["split"] == "test"]
    families = sorted({r["family"] for r in rows if r["label"] == "spoof"})
    sets = {}
    for family in families:
        spoofs = [r for r in rows if r["label"] == "spoof" and r["family"] == family]
        sets[family] = [{"path": str((corpus / r["path"]).resolve()), "label": r["label"],
                         "generator": r["generator"], "source": source_of(r)}
                        for r in bonafide + spoofs]
    return sets


def degrade(out, name, rows, channel):
    args, ext = CHANNELS[channel]
    folder = out / "channel" / name / channel
    folder.mkdir(parents=True, exist_ok=True)

    def one(i_row):
        i, row = i_row
        src = Path(row["path"]) if Path(row["path"]).is_absolute() else out / row["path"]
        dst = folder / f"{i:04d}.{ext}"
        if not dst.exists():
            part = dst.with_name(f"part-{dst.name}")
            if isinstance(args, int):
                amr_nb(src, part, args)
            else:
                subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *args,
                                str(part)], check=True)
            part.rename(dst)  # a stopped run leaves no half-written clip under the final name
        return {**row, "path": str(dst.relative_to(out)), "channel": channel}

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, enumerate(rows)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--resemblyzer", type=Path, required=True, help="git dir of resemble-ai/Resemblyzer")
    p.add_argument("--smoke", type=Path, required=True, help="the shared smoke.tsv")
    p.add_argument("--corpus", type=Path, help="prepare.py's output, for the held-out family sets")
    p.add_argument("--eval-sources", type=Path,
                   help="a folder of registry TOMLs for evaluation only (tools/voice-data/"
                        "eval-sources): one set per entry, named by its id, read from --mirror")
    p.add_argument("--mirror", type=Path, default=Path("/work/.mirror"),
                   help="the fetched repositories, as corpus.py reads them")
    p.add_argument("--test-channels", action="store_true",
                   help="with --corpus: the test split after every channel too")
    a = p.parse_args()
    registered = eval_sources(a.eval_sources) if a.eval_sources else []
    a.out.mkdir(parents=True, exist_ok=True)
    columns = ["path", "label", "generator", "source"]
    sets = {"public": public_rows(a.out, a.resemblyzer), "smoke": smoke_rows(a.out, a.smoke.resolve())}
    for name, rows in sets.items():
        write(a.out / f"{name}.tsv", rows, columns)
        for channel in CHANNELS:
            write(a.out / f"{name}_{channel}.tsv", degrade(a.out, name, rows, channel), columns + ["channel"])
        print(f"{name}: {len(rows)} clips, {len(CHANNELS)} channel variants")
    if registered:
        for name, rows in registered_rows(a.out, registered, a.mirror).items():
            write(a.out / f"{name}.tsv", rows, columns + ["family", "language"])
            print(f"{name}: {len(rows)} clips")
    if a.corpus:
        rows = test_rows(a.corpus.resolve())
        test_columns = columns + ["family", "language"]
        write(a.out / "test.tsv", rows, test_columns)
        print(f"test: {len(rows)} clips")
        if a.test_channels:
            for channel in CHANNELS:
                write(a.out / f"test_{channel}.tsv", degrade(a.out, "test", rows, channel),
                      test_columns + ["channel"])
            print(f"test: {len(CHANNELS)} channel variants")
        for family, rows in heldout_rows(a.corpus.resolve()).items():
            write(a.out / f"heldout_{family}.tsv", rows, columns)
            print(f"heldout_{family}: {len(rows)} clips")


if __name__ == "__main__":
    import registry
    registry.run(main, __file__)
