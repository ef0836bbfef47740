"""Does the waveform's phase tell a vocoder's rebuild from its original, where the magnitude
does not? A probe, not a detector: per clip, summary statistics of (a) a log linear filterbank
(what every v2 member reads) and (b) two phase features of the same STFT (group delay and
the instantaneous-frequency deviation, per band), then a logistic regression per vocoder,
trained on half of the copy-synthesis pairs of corpus v2's `gen-resynth` page and their
genuine originals and scored on the other half (split by speaker).

    python3 tools/voice-data/phase_probe.py /work/corpus-v2 [--pairs 300]

Prints the held-out EER per vocoder and feature set. With `--splits N`, also the same linear
probe trained on N clips of each label of the corpus's train split (variants left out) and
read on the test split, and on every labelled manifest given with `--report` (read only:
nothing is chosen on them). Needs numpy, scipy and soundfile
(tools/voice-data/requirements.txt).
"""
import argparse
import csv
import zlib
from pathlib import Path

import numpy as np
import soundfile

N_FFT, HOP, BANDS = 512, 160, 32


def stft(x):
    window = np.hanning(N_FFT)
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP]
    ramp = np.arange(N_FFT)
    return np.fft.rfft(frames * window, axis=1), np.fft.rfft(frames * window * ramp, axis=1)


def features(x):
    spec, ramped = stft(x)
    power = np.abs(spec) ** 2 + 1e-10
    # Frames with speech: the loudest 60 %.
    energy = power.sum(axis=1)
    keep = energy >= np.quantile(energy, 0.4)
    spec, ramped, power = spec[keep], ramped[keep], power[keep]
    edges = np.linspace(0, power.shape[1], BANDS + 1).astype(int)
    bands = [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]

    log_band = np.stack([np.log(power[:, b].sum(axis=1)) for b in bands], axis=1)
    magnitude = np.concatenate([log_band.mean(0), log_band.std(0),
                                np.diff(log_band, axis=0).std(0)])

    # Group delay (the ramp trick), clipped: its spread within a band is the phase's roughness.
    delay = (spec.real * ramped.real + spec.imag * ramped.imag) / power
    delay = np.clip(delay, -N_FFT, N_FFT) / N_FFT
    # Instantaneous-frequency deviation: the phase advance between frames minus a bin's own.
    expected = 2 * np.pi * HOP * np.arange(power.shape[1]) / N_FFT
    advance = np.angle(spec[1:] * np.conj(spec[:-1])) - expected
    deviation = np.abs(np.angle(np.exp(1j * advance)))
    weight = power[1:] / power[1:].sum(axis=1, keepdims=True)
    phase = np.concatenate([
        [delay[:, b].std() for b in bands],
        [np.abs(np.diff(delay[:, b], axis=1)).mean() for b in bands],
        [(deviation[:, b] * weight[:, b]).sum() / max(weight[:, b].sum(), 1e-10) for b in bands],
    ])
    return magnitude, phase


def logistic(train_x, train_y, test_x, steps=3000, rate=0.5, l2=1e-2):
    mean, sd = train_x.mean(0), train_x.std(0) + 1e-9
    a, b = (train_x - mean) / sd, (test_x - mean) / sd
    w, c = np.zeros(a.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(a @ w + c)))
        w -= rate * (a.T @ (p - train_y) / len(a) + l2 * w)
        c -= rate * (p - train_y).mean()
    return b @ w + c


def eer(genuine, fake):
    thresholds = np.sort(np.concatenate([genuine, fake]))
    best = 1.0
    for t in thresholds:
        miss, false_alarm = (fake < t).mean(), (genuine >= t).mean()
        best = min(best, max(miss, false_alarm))
    return best


def clip_features(path):
    x, rate = soundfile.read(path, dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    if rate != 16000:
        from scipy.signal import resample_poly
        x = resample_poly(x, 16000, rate)
    return features(x)


def split_probe(args, rows):
    """A linear probe over the whole corpus: train split in, test split and reports out."""
    def pick(split, n):
        chosen = []
        for label in ("bonafide", "spoof"):
            pool = [r for r in rows if r["split"] == split and r["label"] == label]
            pool.sort(key=lambda r: zlib.crc32(r["path"].encode()))
            chosen += [(args.corpus / r["path"], label == "spoof") for r in pool[:n]]
        return chosen

    def table(clips):
        mags, phases, labels = [], [], []
        for path, spoof in clips:
            try:
                m, p = clip_features(path)
            except (RuntimeError, ValueError):
                continue
            mags.append(m), phases.append(p), labels.append(float(spoof))
        mags, phases = np.array(mags), np.array(phases)
        return {"magnitude": mags, "phase": phases,
                "both": np.concatenate([mags, phases], axis=1)}, np.array(labels)

    train, y = table(pick("train", args.splits))
    sets = [("test split", pick("test", args.splits))]
    for manifest in args.report:
        entries = list(csv.DictReader(open(manifest), delimiter="\t"))
        sets.append((manifest.name, [(manifest.parent / e["path"], e["label"] == "spoof")
                                     for e in entries]))
    for name, clips in sets:
        x, labels = table(clips)
        line = [f"{name:22s} {int((labels == 0).sum()):5d}/{int(labels.sum()):5d}"]
        for kind in ("magnitude", "phase", "both"):
            scores = logistic(train[kind], y, x[kind])
            line.append(f"{kind} {100 * eer(scores[labels == 0], scores[labels == 1]):5.1f} %")
        print("  ".join(line), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--splits", type=int, default=0)
    ap.add_argument("--report", type=Path, action="append", default=[])
    args = ap.parse_args()
    rows = list(csv.DictReader(open(args.corpus / "manifest.tsv"), delimiter="\t"))
    if args.splits:
        split_probe(args, rows)
        return
    by_system = {}
    for r in rows:
        if r["page"] == "gen-resynth":
            parent = r["source_path"].split(":", 2)[2]
            by_system.setdefault(r["system"], []).append((parent, r["path"], r["speaker"]))
    for system, pairs in sorted(by_system.items()):
        pairs = sorted(pairs, key=lambda p: zlib.crc32(p[1].encode()))[: args.pairs]
        feats = {"magnitude": ([], []), "phase": ([], []), "both": ([], [])}
        labels, held_out = [], []
        for parent, fake, speaker in pairs:
            for path, label in ((parent, 0), (fake, 1)):
                m, p = clip_features(args.corpus / path)
                for name, vec in (("magnitude", m), ("phase", p), ("both", np.concatenate([m, p]))):
                    feats[name][0].append(vec)
                labels.append(label)
                held_out.append(zlib.crc32(speaker.encode()) % 2 == 1)
        y, test = np.array(labels, float), np.array(held_out)
        line = [f"{system:22s} {len(pairs):4d} pairs"]
        for name, (vecs, _) in feats.items():
            x = np.array(vecs)
            scores = logistic(x[~test], y[~test], x[test])
            line.append(f"{name} {100 * eer(scores[y[test] == 0], scores[y[test] == 1]):5.1f} %")
        print("  ".join(line), flush=True)


if __name__ == "__main__":
    main()
