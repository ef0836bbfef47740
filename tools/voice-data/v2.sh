#!/usr/bin/env bash
# Voice detector v2 from a corpus v2 build, every step in order, resumable (issue 16):
#
#   tools/voice-data/v2.sh CORPUS WORK [PAIR]
#
# PAIR names the two fusion members (default `kept`):
#   kept   `lfcc-tdnn` (v1's network and features) and `wide-rawboost` (the whole band to
#          8 kHz with RawBoost), kept in runs/voice-v2/;
#   phase  the same two with per-band phase statistics appended to each frame, 16 bands on
#          the 8 kHz member (`lfcc-phase16`) and 32 on the wideband one (`wide-phase32`), kept
#          in runs/voice-v2-phase/;
#   seeds  the phase pair with the speech finder's `above-floor` loud level, each member two
#          networks of its recipe (the recipe seed and seed 2) whose logits are averaged
#          (`fuse --runs A+A2`): the seed's luck was as large as the differences between
#          candidates (model card, session 30). Kept in runs/voice-v2-seeds/.
#   band   the seeds pair with the wideband networks trained on half their crops low-passed
#          at a random cutoff below Nyquist (`--band-limit 0.5`, `wide-band32` and its seed 2):
#          the wideband networks had learnt how full the top band is (model card, session 34).
#          The narrowband networks are the seeds pair's, restored from runs/voice-v2-seeds/;
#          the rest is kept in runs/voice-v2-band/;
#   band1  the band pair with the first seed of the wideband network only (its networks are
#          the band pair's), fused and kept in runs/voice-v2-band1/: the first whole candidate,
#          in a little over half the time;
#   dense  the band1 networks fused with short speech spans (up to 6 s) scored as 2.5 s
#          windows every 0.1 s (`fuse --short-spans`): a 4 s clip scored as one window moved
#          by up to 0.078 when 0.15 s was cut from each end (model card, session 36). Every
#          network is restored; the fusion is kept in runs/voice-v2-dense/.
#   dense3 the dense pair's networks and fusion trained afresh on corpus v3 (corpus v2 and the
#          zero-shot TTS demo pages whose genuine clips are LibriSpeech-family read speech,
#          session 37): nothing is restored from the corpus v2 runs; kept in
#          runs/voice-v2-dense3/.
#   denseN the same on corpus vN (N from 4 to 9; kept in runs/voice-v2-denseN/): dense4 on
#          corpus v4 (corpus v3, LibriSpeech test-clean's readers and twelve more vocoder,
#          codec, conversion and zero-shot pages), dense5 on corpus v5 (corpus v4 with
#          Griffin-Lim copy-synthesis in train), both session 38. A kept run of another corpus
#          build is never restored: the script stops (keep.sh, refuse_other_corpus).
#
# With AQIQAT_FINALS_FIRST=1 the final members (step 2) are trained before the folds (step 1),
# for a first look at a new corpus; the networks are the same either way.
#
# 1. every network of both fusion candidates on every leave-one-page-out fold
#    (tools/voice-data/folds.sh), 8 epochs of 4,096 crops each, seed 20261125 unless named,
#    scored after the last epoch;
# 2. each network's final member, the same recipe on the whole train split;
# 3. `aqiqat-train fuse`: the fusion weights learnt on the folds, the verdict bands set on the
#    folds' clips scanned through the fused fold networks, the card written to WORK/fused
#    (families named in the verdicts' words of tools/voice-data/families.tsv);
# 4. the folds' figures, side by side (tools/voice-data/folds_summary.py), into
#    WORK/folds-summary.md.
#
# Runs one training at a time (a wideband run holds about 14 GB of decoded audio). Each
# finished fold, final member, fold's fusion scans and the fused card are also copied to
# runs/voice-v2/ in the repository (the networks are 0.2 MB, tables gzipped): commit that
# folder, and a new machine with the corpus rebuilt restores them instead of computing them
# again. The runs are deterministic for
# a given corpus, seed and thread count: a restored fold is the fold this script would train.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=keep.sh
source "$here/keep.sh"
repo=$(cd "$here/../.." && pwd)
corpus=$(cd "$1" && pwd)
mkdir -p "$2"
work=$(cd "$2" && pwd)
train=${AQIQAT_TRAIN:-$repo/target/release/aqiqat-train}
export AQIQAT_TRAIN=$train

recipe=(--epochs 8 --examples 4096 --score-last-only)
wide="--rate 16000 --frame 400 --n-fft 512 --filters 60 --ceps 40 --f-max 8000 --rawboost"
af="--speech-loud-level above-floor"
narrow_phase="--phase-bands 16 $af"
wide_band="$wide --phase-bands 32 $af --band-limit 0.5"
# Where the kept runs lie (another folder only for a test of this script).
runs=${AQIQAT_RUNS:-$repo/runs}
seeds_dir=$runs/voice-v2-seeds
declare -A extra
# A network kept by another pair (the same recipe) is restored from that pair's folder.
declare -A kept_by
# Arguments of `aqiqat-train fuse` beyond the networks.
fuse_extra=()
# groups: the two fusion candidates, each one network or several seeds joined by `+`;
# networks: every network, in the order they are trained (a partial run has whole candidates
# of the first seed first).
case ${3:-kept} in
kept)
    extra=([lfcc-tdnn]="" [wide-rawboost]="$wide")
    groups=(lfcc-tdnn wide-rawboost)
    networks=(lfcc-tdnn wide-rawboost)
    keep=${AQIQAT_KEEP:-$runs/voice-v2}
    ;;
phase)
    extra=([lfcc-phase16]="--phase-bands 16" [wide-phase32]="$wide --phase-bands 32")
    groups=(lfcc-phase16 wide-phase32)
    networks=(lfcc-phase16 wide-phase32)
    keep=${AQIQAT_KEEP:-$runs/voice-v2-phase}
    ;;
seeds)
    extra=(
        [lfcc-phase16]="$narrow_phase"
        [wide-phase32]="$wide --phase-bands 32 $af"
        [lfcc-phase16-s2]="$narrow_phase --seed 2"
        [wide-phase32-s2]="$wide --phase-bands 32 $af --seed 2"
    )
    groups=(lfcc-phase16+lfcc-phase16-s2 wide-phase32+wide-phase32-s2)
    networks=(lfcc-phase16 wide-phase32 lfcc-phase16-s2 wide-phase32-s2)
    keep=${AQIQAT_KEEP:-$runs/voice-v2-seeds}
    ;;
band)
    extra=([lfcc-phase16]="$narrow_phase" [lfcc-phase16-s2]="$narrow_phase --seed 2"
        [wide-band32]="$wide_band" [wide-band32-s2]="$wide_band --seed 2")
    kept_by=([lfcc-phase16]=$seeds_dir [lfcc-phase16-s2]=$seeds_dir)
    groups=(lfcc-phase16+lfcc-phase16-s2 wide-band32+wide-band32-s2)
    networks=(wide-band32 lfcc-phase16 lfcc-phase16-s2 wide-band32-s2)
    keep=${AQIQAT_KEEP:-$runs/voice-v2-band}
    ;;
band1 | dense | dense[3-9])
    extra=([lfcc-phase16]="$narrow_phase" [lfcc-phase16-s2]="$narrow_phase --seed 2"
        [wide-band32]="$wide_band")
    if [[ $3 == band1 || $3 == dense ]]; then
        kept_by=([lfcc-phase16]=$seeds_dir [lfcc-phase16-s2]=$seeds_dir
            [wide-band32]=$runs/voice-v2-band)
    fi
    groups=(lfcc-phase16+lfcc-phase16-s2 wide-band32)
    networks=(wide-band32 lfcc-phase16 lfcc-phase16-s2)
    keep=${AQIQAT_KEEP:-$runs/voice-v2-$3}
    if [[ $3 != band1 ]]; then
        fuse_extra=(--short-spans window=250,hop=10,up-to=600)
    fi
    ;;
*)
    echo "v2.sh: PAIR is kept, phase, seeds, band, band1, dense or denseN (N = 3 to 9), not $3" >&2
    exit 2
    ;;
esac
# `A+A2` as WORK/A+WORK/A2 (with $2 after each name: /last for the final members).
joined() {
    local group=$1 before=$2 after=$3 out="" n
    for n in ${group//+/ }; do out+="${out:++}$before$n$after"; done
    echo "$out"
}

train_folds() {
    local name
    for name in "${networks[@]}"; do
        # shellcheck disable=SC2086 # the extra arguments are words
        AQIQAT_KEEP=${kept_by[$name]:-$keep}/$name "$here/folds.sh" "$corpus" "$work/$name" -- "${recipe[@]}" ${extra[$name]}
    done
}

train_finals() {
    local name
    for name in "${networks[@]}"; do
        train_final "$name"
    done
}

train_final() {
    local name=$1 final kept
    final=$work/final/$name
    kept=${kept_by[$name]:-$keep}/final/$name
    if [[ ! -f $final/last/voice-tdnn-mfm.json && -f $kept/last/voice-tdnn-mfm.json ]]; then
        refuse_other_corpus "$corpus" "$kept" "final $name"
        copy_network "$kept/last" "$final/last"
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
        copy_network "$final/last" "$kept/last"
        keep_corpus_hashes "$corpus" "$kept"
        echo "final $name: kept in $kept"
    fi
}

if [[ ${AQIQAT_FINALS_FIRST:-} == 1 ]]; then
    train_finals
    train_folds
else
    train_folds
    train_finals
fi

# The fusion scans every fold's clips through that fold's fused networks (the longest step);
# each fold's scans are kept once written, so that a new machine scans only the rest.
prefix=$corpus/
mkdir -p "$work/fuse-work" "$keep/fuse"
for gz in "$keep/fuse/"fold-*-scans.tsv.gz; do
    [[ -f $gz ]] || continue
    scans=$work/fuse-work/$(basename "$gz" .gz)
    if [[ ! -f $scans ]]; then
        restore_table "$gz" "$scans" "$prefix"
        touch -r "$gz" "$scans" # as old as what it came from: not kept again below
    fi
done
heard=()
while IFS=$'\t' read -r key words; do
    [[ -z $key || $key == \#* ]] || heard+=(--heard "$key=$words")
done <"$here/families.tsv"
if [[ ! -f $work/fused/voice-v2.json ]]; then
    echo "fuse ($(date -u +%H:%M:%S))"
    status=0
    "$train" fuse --corpus "$corpus" \
        --runs "$(joined "${groups[0]}" "$work/" "")" --runs "$(joined "${groups[1]}" "$work/" "")" \
        --final "$(joined "${groups[0]}" "$work/final/" /last)" \
        --final "$(joined "${groups[1]}" "$work/final/" /last)" \
        "${heard[@]}" "${fuse_extra[@]}" --out "$work/fused" --work "$work/fuse-work" >"$work/fuse.log" 2>&1 || status=$?
    for scans in "$work/fuse-work/"fold-*-scans.tsv; do
        [[ -f $scans ]] || continue
        gz=$keep/fuse/$(basename "$scans").gz
        [[ -f $gz && ! $scans -nt $gz ]] || keep_table "$scans" "$gz" "$prefix"
    done
    tail -n 3 "$work/fuse.log"
    [[ $status == 0 ]] || exit "$status"
fi
if [[ ! -f $keep/fused/voice-v2.json ]]; then
    mkdir -p "$keep/fused"
    cp "$work/fused/"*.safetensors "$keep/fused/"
    cp "$work/fused/"voice-v2-*.json "$keep/fused/"
    cp "$work/fused/voice-v2.json" "$keep/fused/voice-v2.json.part"
    mv "$keep/fused/voice-v2.json.part" "$keep/fused/voice-v2.json"
    cp "$work/fuse.log" "$keep/fused/fuse.log"
    echo "fused: kept in $keep/fused"
fi

python3 "$here/folds_summary.py" "$corpus" "${networks[@]/#/$work/}" \
    --originals --fuse "${groups[0]},${groups[1]}" >"$work/folds-summary.md"
echo "done: $work/fused, $work/folds-summary.md"
