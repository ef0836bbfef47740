#!/usr/bin/env python3
"""Leave-one-page-out figures for the candidates `folds.sh` trained, side by side.

    python3 tools/voice-data/folds_summary.py CORPUS RUNS/CANDIDATE... [--fuse A,B[,C]] [--json OUT]

Each CANDIDATE folder holds fold-K/ runs of `aqiqat-train voice --fold K`. Per fold it reads
`dev-scores-last.tsv`, the scores of the fold's clips by the model as it stood after the last
epoch: the epoch count is fixed in advance for every fold, so no fold's figure is chosen on
that fold (each fold's best epoch is printed too, marked as the optimistic figure it is).

For every candidate it prints, as Markdown:
- EER per fold, mean and worst;
- open-world shares per fold: the bands (`human` below, `synthetic` from) set on the *other*
  folds' scores by the rule of `ScoreBands::from_held_out` (at most 5 % of their synthetic
  clips below `human`, at most 1 % of their genuine clips at or above `synthetic`), then the
  fold's synthetic clips caught / called human / inconclusive and its genuine clips called
  synthetic;
- EER per channel, language and family (each fold's spoofs of that kind against the fold's
  genuine clips of the same channel or language, or all its genuine clips for a family), mean
  and worst over the folds that have them.

`--fuse A,B[,C]` adds a score-level fusion of two or three candidates (a weighted sum of their
standardised scores, the weights chosen in steps of 0.1 on the other folds by their pooled EER,
as `aqiqat-train fuse` chooses them), evaluated the same way. A candidate named `A+A2` is one
recipe trained with several seeds: its score is the mean of theirs, as `aqiqat-train fuse
--runs A+A2` averages them.
"""

import argparse
import csv
import json
import math
import os
import statistics
import sys

MAX_SPOOF_CALLED_HUMAN = 0.05
MAX_BONAFIDE_CALLED_SYNTHETIC = 0.01


def eer(bonafide, spoof):
    """Equal error rate, higher score = more synthetic; None without both labels."""
    if not bonafide or not spoof:
        return None
    scored = sorted([(s, 0) for s in bonafide] + [(s, 1) for s in spoof])
    nb, ns = len(bonafide), len(spoof)
    # Threshold just above position i: spoofs at or below are missed, genuine above alarm.
    missed, alarmed = 0, nb
    best = None
    i = 0
    while i <= len(scored):
        miss_rate, alarm_rate = missed / ns, alarmed / nb
        gap = abs(miss_rate - alarm_rate)
        if best is None or gap < best[0]:
            best = (gap, (miss_rate + alarm_rate) / 2)
        if i == len(scored):
            break
        # Move every clip tied at this score across the threshold together.
        value = scored[i][0]
        while i < len(scored) and scored[i][0] == value:
            if scored[i][1]:
                missed += 1
            else:
                alarmed -= 1
            i += 1
    return best[1]


def bands(bonafide, spoof):
    """(human, synthetic) cuts: the rule of ScoreBands::from_held_out."""
    spoof = sorted(spoof)
    below = math.floor(MAX_SPOOF_CALLED_HUMAN * len(spoof))
    human = spoof[0] if below == 0 else (spoof[below - 1] + spoof[below]) / 2
    bonafide = sorted(bonafide, reverse=True)
    above = math.floor(MAX_BONAFIDE_CALLED_SYNTHETIC * len(bonafide))
    synthetic = (
        math.nextafter(bonafide[0], math.inf)
        if above == 0
        else (bonafide[above - 1] + bonafide[above]) / 2
    )
    if human > synthetic:
        middle = (human + synthetic) / 2
        return middle, middle
    return human, synthetic


def shares(scores, human, synthetic):
    n = len(scores)
    if n == 0:
        return None, None, None
    caught = sum(s >= synthetic for s in scores) / n
    called_human = sum(s < human for s in scores) / n
    return caught, called_human, 1 - caught - called_human


def read_manifest(corpus):
    rows = {}
    for name in ("manifest.tsv", "manifest_aug.tsv"):
        path = os.path.join(corpus, name)
        if os.path.exists(path):
            with open(path, newline="") as f:
                for row in csv.DictReader(f, delimiter="\t"):
                    row["variant"] = name == "manifest_aug.tsv"
                    rows[row["path"]] = row
    return rows


def read_candidate(folder, corpus, manifest):
    """{fold: [(relative path, spoof?, score)]} and {fold: (last EER, best EER, best epoch)}."""
    folds, epochs = {}, {}
    prefix = os.path.abspath(corpus).rstrip("/") + "/"
    for name in sorted(os.listdir(folder)):
        if not name.startswith("fold-") or not os.path.isdir(os.path.join(folder, name)):
            continue
        k = int(name[len("fold-") :])
        scores_path = os.path.join(folder, name, "dev-scores-last.tsv")
        if not os.path.exists(scores_path):
            continue
        clips = []
        with open(scores_path, newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                path = os.path.abspath(row["path"])
                rel = path[len(prefix) :] if path.startswith(prefix) else row["path"]
                if rel not in manifest:
                    sys.exit(f"{scores_path}: {rel} is not in {corpus}'s manifests")
                clips.append((rel, row["label"] == "spoof", float(row["score"])))
        folds[k] = clips
        with open(os.path.join(folder, name, "epochs.tsv"), newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        # A run with --score-last-only scored its last epoch alone (the others read NaN):
        # it chose no best epoch, so none is printed.
        scored = [r for r in rows if not math.isnan(float(r["dev_eer"]))]
        if len(scored) > 1:
            best = min(scored, key=lambda r: float(r["dev_eer"]))
            epochs[k] = (float(rows[-1]["dev_eer"]), float(best["dev_eer"]), int(best["epoch"]))
    return folds, epochs


def percent(x):
    return "–" if x is None else f"{100 * x:.1f}"


def mean_worst(values):
    values = [v for v in values if v is not None]
    if not values:
        return "–", "–"
    return percent(statistics.mean(values)), percent(max(values))


def open_world(folds):
    """Per fold: bands from the other folds, then the fold's shares."""
    out = {}
    for k, clips in folds.items():
        others = [c for j, cs in folds.items() if j != k for c in cs]
        other_bona = [s for _, sp, s in others if not sp]
        other_spoof = [s for _, sp, s in others if sp]
        if not other_bona or not other_spoof:
            # A single fold (a candidate still running): no other folds to set bands on.
            out[k] = ((None, None, None), (None, None, None))
            continue
        human, synthetic = bands(other_bona, other_spoof)
        spoof = [s for _, sp, s in clips if sp]
        bona = [s for _, sp, s in clips if not sp]
        out[k] = (shares(spoof, human, synthetic), shares(bona, human, synthetic))
    return out


def breakdown(folds, manifest, column):
    """{value: [EER per fold]} for one manifest column."""
    table = {}
    for clips in folds.values():
        values = sorted({manifest[p].get(column, "") for p, _, _ in clips})
        all_bona = [s for p, sp, s in clips if not sp]
        for v in values:
            spoof = [s for p, sp, s in clips if sp and manifest[p].get(column, "") == v]
            if column == "family":
                bona = all_bona
            else:
                bona = [s for p, sp, s in clips if not sp and manifest[p].get(column, "") == v]
            if spoof and bona and v:
                table.setdefault(v, []).append(eer(bona, spoof))
    return table


def fuse(candidates, weights):
    """Per fold, clips every candidate scored: the sum of weight · z(candidate's score), each
    candidate standardised over its clips pooled across the folds."""
    fused = {}
    for k in set.intersection(*(set(c) for c in candidates)):
        others = [{p: s for p, _, s in c[k]} for c in candidates[1:]]
        fused[k] = [
            (p, sp, (s, *(o[p] for o in others)))
            for p, sp, s in candidates[0][k]
            if all(p in o for o in others)
        ]
    stats = []
    for i in range(len(candidates)):
        pooled = [scores[i] for cs in fused.values() for _, _, scores in cs]
        stats.append((statistics.mean(pooled), statistics.pstdev(pooled) or 1.0))
    return {
        k: [
            (p, sp, sum(w * (x - m) / sd for w, x, (m, sd) in zip(weights, scores, stats)))
            for p, sp, scores in cs
        ]
        for k, cs in fused.items()
    }


def seeds_mean(*seeds):
    """One candidate from several seeds' folds: per fold, the clips every seed scored, with
    the mean of their scores."""
    out = {}
    for k in set.intersection(*(set(c) for c in seeds)):
        others = [{p: s for p, _, s in c[k]} for c in seeds[1:]]
        out[k] = [
            (p, sp, (s + sum(o[p] for o in others)) / len(seeds))
            for p, sp, s in seeds[0][k]
            if all(p in o for o in others)
        ]
    return out


def weight_grid(n, steps=10):
    """Every weighting of n candidates in steps of 1/steps that sums to one."""
    if n == 1:
        return [(1.0,)]
    return [
        (i / steps, *(w * (steps - i) / steps for w in rest))
        for i in range(steps + 1)
        for rest in (weight_grid(n - 1, steps - i) if i < steps else [(0.0,) * (n - 1)])
    ]


def fused_folds(*candidates):
    """Fusion with its weights learnt on the other folds, per fold; and the weights (one per
    candidate, in their order)."""
    grid = weight_grid(len(candidates))
    out, weights = {}, {}
    fusions = {w: fuse(candidates, w) for w in grid}
    for k in set.intersection(*(set(c) for c in candidates)):

        def pooled_eer(w):
            others = [c for j, cs in fusions[w].items() if j != k for c in cs]
            return eer([s for _, sp, s in others if not sp], [s for _, sp, s in others if sp])

        # Where several weightings tie (the EER counts clips), the centre of those that tie,
        # as `aqiqat-train fuse` does: the first of equals would depend on the names' order.
        eers = {w: pooled_eer(w) for w in grid}
        lowest = min(eers.values())
        tied = [w for w in grid if eers[w] == lowest]
        w = tuple(sum(t[i] for t in tied) / len(tied) for i in range(len(candidates)))
        weights[k] = tuple(round(x, 3) for x in w)
        out[k] = (fusions[w] if w in fusions else fuse(candidates, w))[k]
    return out, weights


def summarise(name, folds, epochs, manifest, lines, figures):
    ks = sorted(folds)
    fold_eers = {k: eer([s for _, sp, s in folds[k] if not sp], [s for _, sp, s in folds[k] if sp]) for k in ks}
    world = open_world(folds)
    lines.append(f"### {name}\n")
    lines.append("| fold | genuine | synthetic | EER | best epoch's EER (optimistic) | synthetic caught | synthetic called human | synthetic inconclusive | genuine called synthetic | genuine called human |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for k in ks:
        (sc, sh, si), (bc, bh, _) = world[k]  # None where the fold lacks that label
        n_s = sum(sp for _, sp, _ in folds[k])
        best = f"{percent(epochs[k][1])} (epoch {epochs[k][2]})" if k in epochs else "–"
        lines.append(
            f"| {k} | {len(folds[k]) - n_s} | {n_s} | {percent(fold_eers[k])} | {best} | "
            f"{percent(sc)} | {percent(sh)} | {percent(si)} | {percent(bc)} | {percent(bh)} |"
        )
    mean, worst = mean_worst(fold_eers.values())
    called_human = [world[k][0][1] for k in ks if world[k][0][1] is not None]
    wrongly_synthetic = [world[k][1][0] for k in ks if world[k][1][0] is not None]
    human_mean, human_worst = mean_worst(called_human)
    synthetic_mean, synthetic_worst = mean_worst(wrongly_synthetic)
    lines.append(
        f"\nEER mean {mean} %, worst {worst} %; synthetic called human mean {human_mean} %, "
        f"worst {human_worst} %; genuine called synthetic mean {synthetic_mean} %, worst "
        f"{synthetic_worst} %.\n"
    )
    figures[name] = {
        "folds": {str(k): fold_eers[k] for k in ks},
        "eer_mean": statistics.mean([v for v in fold_eers.values() if v is not None]),
        "eer_worst": max(v for v in fold_eers.values() if v is not None),
        "spoof_called_human": {str(k): world[k][0][1] for k in ks},
        "bonafide_called_synthetic": {str(k): world[k][1][0] for k in ks},
    }
    for column in ("channel", "language", "family"):
        table = breakdown(folds, manifest, column)
        lines.append(f"| {column} | folds | EER mean | EER worst |")
        lines.append("|---|---|---|---|")
        for value in sorted(table):
            m, w = mean_worst(table[value])
            lines.append(f"| {value} | {len(table[value])} | {m} | {w} |")
        lines.append("")
        figures[name][column] = {v: table[v] for v in table}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus")
    ap.add_argument("candidates", nargs="+")
    ap.add_argument(
        "--fuse",
        help="two or three candidate folder names, comma-separated; A+A2 averages two seeds' scores into one candidate",
    )
    ap.add_argument("--json", help="write the figures here too")
    ap.add_argument("--channel", help="only clips of this manifest channel (e.g. phone)")
    ap.add_argument(
        "--originals",
        action="store_true",
        help="only the clips of manifest.tsv, not their channel variants (to compare candidates scored with and without them)",
    )
    args = ap.parse_args()
    manifest = read_manifest(args.corpus)
    loaded = {}
    for folder in args.candidates:
        folds, epochs = read_candidate(folder, args.corpus, manifest)
        if args.channel:
            folds = {k: [c for c in cs if manifest[c[0]].get("channel") == args.channel] for k, cs in folds.items()}
        if args.originals:
            folds = {k: [c for c in cs if not manifest[c[0]]["variant"]] for k, cs in folds.items()}
        loaded[os.path.basename(folder.rstrip("/"))] = (folds, epochs)
    lines, figures = [], {}
    for name, (folds, epochs) in loaded.items():
        summarise(name, folds, epochs, manifest, lines, figures)
    if args.fuse:
        names = args.fuse.split(",")
        if not 2 <= len(names) <= 3:
            sys.exit("--fuse takes two or three candidate names")
        fused, weights = fused_folds(*(seeds_mean(*(loaded[s][0] for s in n.split("+"))) for n in names))
        name = f"fusion of {', '.join(names[:-1])} and {names[-1]}"
        summarise(name, fused, {}, manifest, lines, figures)
        lines.append(f"Weights of {', '.join(names)} per fold (learnt on the other folds): {weights}\n")
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
