#!/usr/bin/env bash
# The session-36 diagnostic kept here: the dense candidate's three networks retrained on corpus v2
# plus the seven demo pages of tools/voice-data/candidate-sources/ written in session 36, with
# the dense card's fusion terms, calibration, bands and short-span rule (not set again: the
# fold networks were not retrained, so smoke's and the test split's EER, which need no bands,
# are what it measures).
#
#   runs/voice-v2-dense/diag-cand/make.sh CORPUS_V2 WORK
#
# 1. a partial build of the candidate pages (corpus.py --only), without UniAudio's two
#    phone-recorded rules: a partial build refuses a channel (`device`) that its own clips hold
#    under one label only (the full corpus has genuine `device` clips);
# 2. CORPUS_V2 hard-linked to WORK/corpus with the candidate rows appended to its manifests,
#    all in train, fold -1 (their own split draw is ignored: they only add training clips);
# 3. the three networks, each the kept recipe (v2.sh's `dense` pair) on the whole train split;
# 4. the fused card: runs/voice-v2-dense/fused/voice-v2.json with these members.
# About 25 minutes on 2 cores.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
v2=$(cd "$1" && pwd)
mkdir -p "$2"
work=$(cd "$2" && pwd)
train=${AQIQAT_TRAIN:-$repo/target/release/aqiqat-train}
registry=$work/registry
rm -rf "$registry" && mkdir -p "$registry"
cp "$repo"/tools/voice-data/candidate-sources/*.toml "$registry/"
python3 - "$registry/yangdongchao+UniAudio_demo.toml" <<'PY'
import sys
path = sys.argv[1]
blocks = open(path).read().split("[[source.rule]]")
open(path, "w").write("[[source.rule]]".join(b for b in blocks if 'channel = "device"' not in b))
PY
ids=uniaudio-demo,attest-demo-zstts,wavefit-demo,librittsr-demo,voicecraft-demo,voicestar-demo,simplespeech-demo,styletts-zs-demo
[[ -f $work/cand/manifest.tsv ]] ||
    python3 "$repo/tools/voice-data/corpus.py" --out "$work/cand" --registry "$registry" --only "$ids"
corpus=$work/corpus
if [[ ! -d $corpus ]]; then
    cp -al "$v2" "$corpus"
    # Hard links: new manifests are new files, never the corpus v2 ones written through.
    rm "$corpus/manifest.tsv" "$corpus/manifest_aug.tsv"
    cp -al "$work/cand/audio/." "$corpus/audio/"
    cp -al "$work/cand/aug/." "$corpus/aug/"
    python3 - "$v2" "$work/cand" "$corpus" <<'PY'
import csv, sys
v2, cand, out = sys.argv[1:]
for name in ("manifest.tsv", "manifest_aug.tsv"):
    lines = open(f"{v2}/{name}").read().rstrip("\n").split("\n")
    header = lines[0].split("\t")
    for row in csv.DictReader(open(f"{cand}/{name}"), delimiter="\t"):
        row["split"], row["fold"] = "train", "-1"
        lines.append("\t".join(row.get(h, "") for h in header))
    open(f"{out}/{name}", "w").write("\n".join(lines) + "\n")
PY
fi
recipe=(--epochs 8 --examples 4096 --score-last-only --speech-loud-level above-floor)
wide=(--rate 16000 --frame 400 --n-fft 512 --filters 60 --ceps 40 --f-max 8000 --rawboost)
"$train" voice --data "$corpus" --out "$work/lfcc-phase16" "${recipe[@]}" --phase-bands 16
"$train" voice --data "$corpus" --out "$work/lfcc-phase16-s2" "${recipe[@]}" --phase-bands 16 --seed 2
"$train" voice --data "$corpus" --out "$work/wide-band32" "${recipe[@]}" "${wide[@]}" --phase-bands 32 --band-limit 0.5
python3 - "$repo/runs/voice-v2-dense/fused" "$work" <<'PY'
import json, os, shutil, sys
src, work = sys.argv[1:]
out = f"{work}/fused"
os.makedirs(out, exist_ok=True)
card = json.load(open(f"{src}/voice-v2.json"))
for member in card["members"]:
    name = member["card"][len("voice-v2-"):-len(".json")]
    network = json.load(open(f"{work}/{name}/last/voice-tdnn-mfm.json"))
    network["weights"] = f"voice-v2-{name}.safetensors"
    shutil.copy(f"{work}/{name}/last/voice-tdnn-mfm.safetensors", f"{out}/{network['weights']}")
    json.dump(network, open(f"{out}/{member['card']}", "w"), indent=2)
    member["weights_sha256"] = network["weights_sha256"]
card["command"] = "runs/voice-v2-dense/diag-cand/make.sh (a diagnostic: bands not set again)"
json.dump(card, open(f"{out}/voice-v2.json", "w"), indent=2)
print(f"wrote {out}/voice-v2.json")
PY
