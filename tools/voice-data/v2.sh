#!/usr/bin/env bash
# Voice detector v2 from a corpus v2 build, every step in order, resumable (issue 16):
#
#   tools/voice-data/v2.sh CORPUS WORK
#
# 1. both fusion candidates on every leave-one-page-out fold (tools/voice-data/folds.sh):
#    `lfcc-tdnn` (v1's network and features) and `wide-rawboost` (the whole band to 8 kHz with
#    RawBoost), 8 epochs of 4,096 crops each, seed 20261125, scored after the last epoch;
# 2. each candidate's final member, the same recipe on the whole train split;
# 3. `aqiqat-train fuse`: the fusion weights learnt on the folds, the verdict bands set on the
#    folds' clips scanned through the fused fold networks, the card written to WORK/fused;
# 4. the folds' figures, side by side (tools/voice-data/folds_summary.py), into
#    WORK/folds-summary.md.
#
# Runs one training at a time (a wideband run holds about 14 GB of decoded audio). Each
# finished fold and final member is also copied to runs/voice-v2/ in the repository (the
# networks are 0.2 MB, the scores gzipped): commit that folder, and a new machine with the
# corpus rebuilt restores them instead of training them again. The runs are deterministic for
# a given corpus, seed and thread count: a restored fold is the fold this script would train.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
corpus=$(cd "$1" && pwd)
mkdir -p "$2"
work=$(cd "$2" && pwd)
keep=${AQIQAT_KEEP:-$repo/runs/voice-v2}
train=${AQIQAT_TRAIN:-$repo/target/release/aqiqat-train}
export AQIQAT_TRAIN=$train

recipe=(--epochs 8 --examples 4096 --score-last-only)
declare -A extra=(
    [lfcc-tdnn]=""
    [wide-rawboost]="--rate 16000 --frame 400 --n-fft 512 --filters 60 --ceps 40 --f-max 8000 --rawboost"
)
candidates=(lfcc-tdnn wide-rawboost)

for name in "${candidates[@]}"; do
    # shellcheck disable=SC2086 # the extra arguments are words
    AQIQAT_KEEP=$keep/$name "$here/folds.sh" "$corpus" "$work/$name" -- "${recipe[@]}" ${extra[$name]}
done

for name in "${candidates[@]}"; do
    final=$work/final/$name
    kept=$keep/final/$name
    if [[ ! -f $final/last/voice-tdnn-mfm.json && -f $kept/last/voice-tdnn-mfm.json ]]; then
        mkdir -p "$final/last"
        cp "$kept/last/"* "$final/last/"
        echo "final $name: restored from $kept"
    fi
    if [[ ! -f $final/last/voice-tdnn-mfm.json ]]; then
        echo "final $name: training ($(date -u +%H:%M:%S))"
        mkdir -p "$work/final"
        # shellcheck disable=SC2086
        "$train" voice --data "$corpus" --out "$final" "${recipe[@]}" ${extra[$name]} >"$final.log" 2>&1
        tail -n 1 "$final.log"
    fi
    if [[ ! -f $kept/last/voice-tdnn-mfm.json ]]; then
        mkdir -p "$kept/last"
        cp "$final/last/voice-tdnn-mfm.safetensors" "$kept/last/"
        cp "$final/last/voice-tdnn-mfm.json" "$kept/last/voice-tdnn-mfm.json.part"
        mv "$kept/last/voice-tdnn-mfm.json.part" "$kept/last/voice-tdnn-mfm.json"
        echo "final $name: kept in $kept"
    fi
done

if [[ ! -f $work/fused/voice-v2.json ]]; then
    echo "fuse ($(date -u +%H:%M:%S))"
    "$train" fuse --corpus "$corpus" \
        --runs "$work/lfcc-tdnn" --runs "$work/wide-rawboost" \
        --final "$work/final/lfcc-tdnn/last" --final "$work/final/wide-rawboost/last" \
        --out "$work/fused" --work "$work/fuse-work" >"$work/fuse.log" 2>&1
    tail -n 3 "$work/fuse.log"
fi

python3 "$here/folds_summary.py" "$corpus" "$work/lfcc-tdnn" "$work/wide-rawboost" \
    --originals --fuse lfcc-tdnn,wide-rawboost >"$work/folds-summary.md"
echo "done: $work/fused, $work/folds-summary.md"
