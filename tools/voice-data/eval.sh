#!/usr/bin/env bash
# The model card's held-out figures for one voice detector, every set in one table (issue 16):
#
#   tools/voice-data/eval.sh MODEL EVAL OUT
#
# MODEL is what `aqiqat scan --model` takes (a fused card such as
# runs/voice-v2-dense/fused/voice-v2.json, or crates/voice/weights for v1); EVAL the folder
# `evalsets.py --corpus CORPUS --test-channels` wrote; OUT a folder for each set's
# `aqiqat eval --json` answer (kept, so that a stopped run goes on where it was) and the table,
# OUT/figures.md: EER and AUC per set, the clips scored (genuine/synthetic) and, for each
# channel, its EER over the clean test split's (the issue's bar: at most 1.5), and the shares
# of synthetic clips called `human` and genuine clips called `synthetic` by score.
set -euo pipefail
[[ $# -eq 3 ]] || {
    echo "usage: eval.sh MODEL EVAL OUT" >&2
    exit 2
}
here=$(cd "$(dirname "$0")" && pwd)
aqiqat=${AQIQAT:-$here/../../target/release/aqiqat}
model=$1 eval=$2 out=$3
mkdir -p "$out"
# The channels are evalsets.py's own, so that a channel it gains is reported here too.
mapfile -t channels < <(cd "$here" && python3 -c 'import evalsets; print("\n".join(evalsets.CHANNELS))')
[[ ${#channels[@]} -gt 0 ]] || {
    echo "eval.sh: evalsets.py names no channels" >&2
    exit 2
}
sets=(smoke public test "${channels[@]/#/test_}")
# Sets registered for evaluation only (evalsets.py --eval-sources), where EVAL holds them.
mapfile -t registered < <(cd "$here" && python3 -c 'import registry; print("\n".join(s.id for s in registry.load("eval-sources")))')
for set in "${registered[@]}"; do
    if [[ -f $eval/$set.tsv ]]; then
        sets+=("$set")
    else
        echo "eval.sh: no $eval/$set.tsv (evalsets.py --eval-sources writes it): left out" >&2
    fi
done
for set in "${sets[@]}"; do
    [[ -f $eval/$set.tsv ]] || {
        echo "eval.sh: no $eval/$set.tsv (evalsets.py --corpus CORPUS --test-channels writes it)" >&2
        exit 2
    }
done
for set in "${sets[@]}"; do
    [[ -s $out/$set.json ]] && continue
    echo "$set ($(date -u +%H:%M:%S))"
    "$aqiqat" eval "$eval/$set.tsv" --json --model "$model" >"$out/$set.json.part"
    mv "$out/$set.json.part" "$out/$set.json"
done
python3 - "$out" "${sets[@]}" >"$out/figures.md" <<'EOF'
import json, sys
out, sets = sys.argv[1], sys.argv[2:]
reports = {s: json.load(open(f"{out}/{s}.json")) for s in sets}
clean = reports["test"]["eer"]
def share(verdicts, which):
    # Reports written before `aqiqat eval` counted verdicts per label have none.
    if not verdicts:
        return "–"
    return f"{100 * verdicts[which] / max(1, sum(verdicts.values())):.1f}"
print("| set | EER % | AUC | clips (genuine/synthetic) | unscored | EER / clean test "
      "| synthetic called human % | genuine called synthetic % |")
print("|---|---:|---:|---|---:|---:|---:|---:|")
for s, r in reports.items():
    ratio = f"{r['eer'] / clean:.2f}" if s.startswith("test_") and clean > 0 else ""
    print(f"| {s} | {100 * r['eer']:.2f} | {r['auc']:.3f} | {r['n_bonafide']}/{r['n_spoof']} "
          f"| {len(r['unscored'])} | {ratio} | {share(r.get('spoof_verdicts'), 'human')} "
          f"| {share(r.get('bonafide_verdicts'), 'synthetic')} |")
EOF
cat "$out/figures.md"
