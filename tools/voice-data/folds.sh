#!/usr/bin/env bash
# Trains one candidate detector on every leave-one-page-out fold of a corpus v2 build, one fold
# after another, each into OUT/fold-K (log in OUT/fold-K.log). Resumable: a fold whose
# dev-scores-last.tsv exists is done and skipped; an interrupted fold starts again.
#
#   tools/voice-data/folds.sh CORPUS OUT [FOLDS] -- TRAINER-ARGS...
#
# FOLDS defaults to every fold in CORPUS/folds.json. TRAINER-ARGS go to `aqiqat-train voice`
# (or to the subcommand named by $AQIQAT_TRAINER, e.g. `whisper-head`), the same for every
# fold, so the folds compare a recipe, not per-fold choices. Figures:
# tools/voice-data/folds_summary.py.
set -euo pipefail
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
for k in $folds; do
    if [[ -f $out/fold-$k/dev-scores-last.tsv ]]; then
        echo "fold $k: done"
        continue
    fi
    echo "fold $k: training ($(date -u +%H:%M:%S))"
    "$train" "${AQIQAT_TRAINER:-voice}" --data "$corpus" --fold "$k" --out "$out/fold-$k" "$@" >"$out/fold-$k.log" 2>&1
    tail -n 1 "$out/fold-$k.log"
done
