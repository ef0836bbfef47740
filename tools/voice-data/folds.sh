#!/usr/bin/env bash
# Trains one candidate detector on every leave-one-page-out fold of a corpus v2 build, one fold
# after another, each into OUT/fold-K (log in OUT/fold-K.log). Resumable: a fold whose
# dev-scores-last.tsv exists is done and skipped; an interrupted fold starts again.
#
#   tools/voice-data/folds.sh CORPUS OUT [FOLDS] -- TRAINER-ARGS...
#
# With AQIQAT_KEEP=DIR each finished fold's outputs (the last epoch's network and card, the
# epoch log, the held-out scores with paths relative to CORPUS, gzipped) are copied to
# DIR/fold-K, and a fold found there is restored instead of trained: DIR lives in the
# repository (runs/voice-v2/), so a new machine resumes the folds without the hours they took.
#
# FOLDS defaults to every fold in CORPUS/folds.json. TRAINER-ARGS go to `aqiqat-train voice`
# (or to the subcommand named by $AQIQAT_TRAINER, e.g. `whisper-head`), the same for every
# fold, so the folds compare a recipe, not per-fold choices. Figures:
# tools/voice-data/folds_summary.py.
set -euo pipefail
# shellcheck source=keep.sh
source "$(dirname "$0")/keep.sh"
corpus=$1 out=$2
shift 2
folds=""
if [[ ${1:-} != "--" ]]; then folds=$1; shift; fi
[[ ${1:-} == "--" ]] && shift
if [[ -z $folds ]]; then
    folds=$(python3 -c 'import json,sys; print(" ".join(str(f["fold"]) for f in json.load(open(sys.argv[1]))))' "$corpus/folds.json")
fi
train=${AQIQAT_TRAIN:-$(dirname "$0")/../../target/release/aqiqat-train}
mkdir -p "$out"
keep=${AQIQAT_KEEP:-}
prefix=$(cd "$corpus" && pwd)/
for k in $folds; do
    if [[ ! -f $out/fold-$k/dev-scores-last.tsv && -n $keep && -f $keep/fold-$k/dev-scores-last.tsv.gz ]]; then
        refuse_other_corpus "$corpus" "$keep/fold-$k" "fold $k"
        copy_network "$keep/fold-$k/last" "$out/fold-$k/last"
        cp "$keep/fold-$k/epochs.tsv" "$out/fold-$k/"
        restore_table "$keep/fold-$k/dev-scores-last.tsv.gz" "$out/fold-$k/dev-scores-last.tsv" "$prefix"
        echo "fold $k: restored from $keep"
    fi
    if [[ -f $out/fold-$k/dev-scores-last.tsv ]]; then
        echo "fold $k: done"
    else
        echo "fold $k: training ($(date -u +%H:%M:%S))"
        "$train" "${AQIQAT_TRAINER:-voice}" --data "$corpus" --fold "$k" --out "$out/fold-$k" "$@" >"$out/fold-$k.log" 2>&1
        tail -n 1 "$out/fold-$k.log"
    fi
    if [[ -n $keep && ! -f $keep/fold-$k/dev-scores-last.tsv.gz ]]; then
        copy_network "$out/fold-$k/last" "$keep/fold-$k/last"
        cp "$out/fold-$k/epochs.tsv" "$keep/fold-$k/"
        keep_corpus_hashes "$corpus" "$keep/fold-$k"
        keep_table "$out/fold-$k/dev-scores-last.tsv" "$keep/fold-$k/dev-scores-last.tsv.gz" "$prefix"
        echo "fold $k: kept in $keep"
    fi
done
