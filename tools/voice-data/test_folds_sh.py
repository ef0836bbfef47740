"""Tests for folds.sh's and v2.sh's keeping and restoring of finished work (AQIQAT_KEEP), with a
stand-in trainer: a fold, a final member or a fold's fusion scans kept once are restored on a
new machine, not computed again, and their tables come back naming the clips of the corpus
where that machine has it."""

import gzip
import json
import os
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))

# Writes what `aqiqat-train voice --fold K --out OUT` writes, and counts its calls.
TRAINER = """#!/usr/bin/env bash
set -euo pipefail
fold=null
echo "$*" >> "$CALLS"
while [[ $# -gt 0 ]]; do
    case $1 in
        --data) data=$2; shift 2;;
        --fold) fold=$2; shift 2;;
        --out) out=$2; shift 2;;
        *) shift;;
    esac
done
mkdir -p "$out/last"
echo '{"fold": '"$fold"'}' > "$out/last/voice-tdnn-mfm.json"
printf 'weights %s' "$fold" > "$out/last/voice-tdnn-mfm.safetensors"
printf 'epoch\\tloss\\tdev_eer\\tseconds\\n0\\t0.5\\tNaN\\t1.0\\n1\\t0.4\\t0.25\\t1.0\\n' > "$out/epochs.tsv"
printf 'path\\tlabel\\tscore\\n%s/audio/p%s/a.flac\\tbonafide\\t-1.5\\n%s/audio/p%s/b.flac\\tspoof\\t2.25\\n' \\
    "$data" "$fold" "$data" "$fold" > "$out/dev-scores-last.tsv"
echo "best: epoch 1"
"""


# Also answers `fuse`: writes each fold's scans into --work (stopping at fold $LOST_AT_FOLD, as
# a machine lost while scanning it would), then the fused card into --out.
FUSE = """
if [[ $1 == fuse ]]; then
    echo "$*" >> "$CALLS"
    heard=()
    while [[ $# -gt 0 ]]; do
        case $1 in
            --corpus) data=$2; shift 2;;
            --out) out=$2; shift 2;;
            --work) work=$2; shift 2;;
            --heard) heard+=("$2"); shift 2;;
            *) shift;;
        esac
    done
    printf '%s\\n' "${heard[@]}" > "$HEARD"
    for k in 0 1; do
        if [[ -f $work/fold-$k-scans.tsv ]]; then continue; fi
        if [[ ${LOST_AT_FOLD:-} == "$k" ]]; then exit 3; fi
        printf '# weights w%s fused with refusals\\n%s/audio/p%s/a.flac\\t0.5\\t\\n' "$k" "$data" "$k" > "$work/fold-$k-scans.tsv"
        echo "scanned fold $k" >> "$CALLS"
    done
    mkdir -p "$out"
    printf w > "$out/voice-v2-lfcc-tdnn.safetensors"
    echo '{}' > "$out/voice-v2-lfcc-tdnn.json"
    echo '{"model": "voice-v2"}' > "$out/voice-v2.json"
    exit 0
fi
"""
TRAINER = TRAINER.replace('echo "$*" >> "$CALLS"\n', FUSE + 'echo "$*" >> "$CALLS"\n', 1)

MANIFEST = "path\tlabel\tsystem\tgenerator\tfamily\tpage\tspeaker\tlanguage\tchannel\tstyle\tsplit\tfold\n" + "".join(
    f"audio/p{k}/{c}.flac\t{label}\t{system}\tg\t{family}\tp{k}\ts{k}\ten\tclean\tread\ttrain\t{k}\n"
    for k in (0, 1)
    for c, label, system, family in (("a", "bonafide", "human", "human"), ("b", "spoof", "x", "vits"))
)


class KeepTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        root = self.tmp.name
        self.trainer = os.path.join(root, "trainer")
        with open(self.trainer, "w") as f:
            f.write(TRAINER)
        os.chmod(self.trainer, 0o755)
        self.calls = os.path.join(root, "calls")
        self.keep = os.path.join(root, "kept")

    def corpus(self, name):
        path = os.path.join(self.tmp.name, name)
        os.makedirs(path)
        with open(os.path.join(path, "folds.json"), "w") as f:
            json.dump([{"fold": 0}, {"fold": 1}], f)
        with open(os.path.join(path, "manifest.tsv"), "w") as f:
            f.write(MANIFEST)
        return path

    def v2(self, corpus, work, lost_at_fold="", pair=None, keep=None, finals_first=False):
        env = dict(
            os.environ,
            AQIQAT_TRAIN=self.trainer,
            AQIQAT_KEEP=keep or self.keep,
            AQIQAT_FINALS_FIRST="1" if finals_first else "",
            # Nothing kept by another pair: every network is trained (by the fake trainer).
            AQIQAT_RUNS=os.path.join(self.tmp.name, "runs"),
            CALLS=self.calls,
            HEARD=os.path.join(self.tmp.name, "heard"),
            LOST_AT_FOLD=lost_at_fold,
        )
        return subprocess.run(
            ["bash", os.path.join(HERE, "v2.sh"), corpus, work] + ([pair] if pair else []),
            env=env,
            capture_output=True,
            text=True,
        )

    def calls_matching(self, word):
        with open(self.calls) as f:
            return [line for line in f if word in line]

    def folds(self, corpus, out):
        env = dict(os.environ, AQIQAT_TRAIN=self.trainer, AQIQAT_KEEP=self.keep, CALLS=self.calls)
        done = subprocess.run(
            ["bash", os.path.join(HERE, "folds.sh"), corpus, out, "--", "--epochs", "8"],
            env=env,
            capture_output=True,
            text=True,
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout

    def calls_made(self):
        if not os.path.exists(self.calls):
            return 0
        with open(self.calls) as f:
            return len(f.readlines())

    def test_a_kept_fold_is_restored_on_another_machine_instead_of_trained(self):
        first = self.corpus("first")
        self.folds(first, os.path.join(self.tmp.name, "runs-1"))
        self.assertEqual(self.calls_made(), 2)
        with gzip.open(os.path.join(self.keep, "fold-1", "dev-scores-last.tsv.gz"), "rt") as f:
            kept = f.read()
        # Kept relative to the corpus, so that it names the clips wherever the corpus is rebuilt.
        self.assertEqual(
            kept, "path\tlabel\tscore\naudio/p1/a.flac\tbonafide\t-1.5\naudio/p1/b.flac\tspoof\t2.25\n"
        )

        # A new machine: the corpus rebuilt elsewhere, no runs; the kept folds come back whole.
        second = self.corpus("second")
        out = os.path.join(self.tmp.name, "runs-2")
        printed = self.folds(second, out)
        self.assertEqual(self.calls_made(), 2, printed)
        self.assertIn("fold 1: restored", printed)
        with open(os.path.join(out, "fold-1", "dev-scores-last.tsv")) as f:
            self.assertEqual(
                f.read(),
                f"path\tlabel\tscore\n{second}/audio/p1/a.flac\tbonafide\t-1.5\n"
                f"{second}/audio/p1/b.flac\tspoof\t2.25\n",
            )
        with open(os.path.join(out, "fold-0", "last", "voice-tdnn-mfm.safetensors")) as f:
            self.assertEqual(f.read(), "weights 0")
        self.assertTrue(os.path.exists(os.path.join(out, "fold-0", "epochs.tsv")))

    def test_a_fold_trained_but_not_kept_is_kept_without_training_again(self):
        corpus = self.corpus("c")
        out = os.path.join(self.tmp.name, "runs")
        self.folds(corpus, out)
        # As if the machine had stopped between training fold 0 and keeping it.
        os.remove(os.path.join(self.keep, "fold-0", "dev-scores-last.tsv.gz"))
        self.folds(corpus, out)
        self.assertEqual(self.calls_made(), 2)
        self.assertTrue(os.path.exists(os.path.join(self.keep, "fold-0", "dev-scores-last.tsv.gz")))

    def test_v2_keeps_finals_and_each_folds_fusion_scans_so_a_new_machine_resumes_the_fusion(self):
        first = self.corpus("first")
        # The machine is lost while the fusion scans fold 1: fold 0's scans were written.
        lost = self.v2(first, os.path.join(self.tmp.name, "work-1"), lost_at_fold="1")
        self.assertEqual(lost.returncode, 3, lost.stdout + lost.stderr)
        self.assertEqual(len(self.calls_matching("--fold")), 4)  # 2 candidates × 2 folds
        self.assertEqual(len(self.calls_matching("voice --data")) - 4, 2)  # the finals
        with open(os.path.join(self.keep, "lfcc-tdnn", "fold-0", "corpus.sha256")) as f:
            self.assertRegex(f.read(), r"^[0-9a-f]{64}  manifest.tsv\n$")
        kept_fuse = os.path.join(self.keep, "fuse")
        with gzip.open(os.path.join(kept_fuse, "fold-0-scans.tsv.gz"), "rt") as f:
            self.assertEqual(f.read(), "# weights w0 fused with refusals\naudio/p0/a.flac\t0.5\t\n")
        self.assertFalse(os.path.exists(os.path.join(kept_fuse, "fold-1-scans.tsv.gz")))
        self.assertFalse(os.path.exists(os.path.join(self.keep, "fused")))
        for name in ("lfcc-tdnn", "wide-rawboost"):
            self.assertTrue(os.path.exists(os.path.join(self.keep, "final", name, "last", "voice-tdnn-mfm.json")))
        with open(os.path.join(self.tmp.name, "heard")) as f:
            heard = f.read().splitlines()
        self.assertIn("vits=VITS", heard)
        self.assertIn("formant=formant synthesis (eSpeak NG)", heard)

        kept_fold_0 = os.path.join(kept_fuse, "fold-0-scans.tsv.gz")
        os.utime(kept_fold_0, ns=(1_000_000_000, 1_000_000_000))

        # A new machine: nothing trained again, fold 0 not scanned again, fold 1 scanned.
        second = self.corpus("second")
        work = os.path.join(self.tmp.name, "work-2")
        done = self.v2(second, work)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(len(self.calls_matching("voice --data")), 6, done.stdout)
        self.assertEqual(len(self.calls_matching("scanned fold 0")), 1)
        self.assertEqual(len(self.calls_matching("scanned fold 1")), 1)
        # What was restored is not written back.
        self.assertEqual(os.stat(kept_fold_0).st_mtime_ns, 1_000_000_000)
        with open(os.path.join(work, "fuse-work", "fold-0-scans.tsv")) as f:
            self.assertEqual(f.read(), f"# weights w0 fused with refusals\n{second}/audio/p0/a.flac\t0.5\t\n")
        with open(os.path.join(self.keep, "fused", "voice-v2.json")) as f:
            self.assertEqual(json.load(f), {"model": "voice-v2"})
        self.assertTrue(os.path.exists(os.path.join(work, "folds-summary.md")))

    def test_v2_phase_trains_and_fuses_the_phase_band_members(self):
        corpus = self.corpus("c")
        work = os.path.join(self.tmp.name, "work")
        done = self.v2(corpus, work, pair="phase")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        finals = [line for line in self.calls_matching("voice --data") if "--fold" not in line]
        self.assertEqual(len(finals), 2)
        self.assertIn("--phase-bands 16", finals[0])
        self.assertNotIn("--rate 16000", finals[0])
        self.assertIn("--rate 16000", finals[1])
        self.assertIn("--phase-bands 32", finals[1])
        (fuse,) = self.calls_matching("fuse --corpus")
        self.assertIn(f"--runs {work}/lfcc-phase16 --runs {work}/wide-phase32", fuse)
        self.assertIn(f"--final {work}/final/lfcc-phase16/last --final {work}/final/wide-phase32/last", fuse)
        self.assertNotIn("--short-spans", fuse)
        self.assertTrue(os.path.exists(os.path.join(self.keep, "final", "wide-phase32", "last", "voice-tdnn-mfm.json")))

    def test_v2_seeds_averages_two_seeds_per_member_found_by_the_floor_rule(self):
        corpus = self.corpus("c")
        work = os.path.join(self.tmp.name, "work")
        done = self.v2(corpus, work, pair="seeds")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        folds = [line for line in self.calls_matching("voice --data") if "--fold" in line]
        # Two folds of four networks, the recipe seed of both members first.
        self.assertEqual(len(folds), 8)
        self.assertEqual([f"--out {work}/wide-phase32/fold-0" in line for line in folds].index(True), 2)
        finals = [line for line in self.calls_matching("voice --data") if "--fold" not in line]
        self.assertEqual(len(finals), 4)
        for line in folds + finals:
            self.assertIn("--speech-loud-level above-floor", line)
        self.assertEqual(["--seed 2" in line for line in finals], [False, False, True, True])
        (fuse,) = self.calls_matching("fuse --corpus")
        self.assertIn(f"--runs {work}/lfcc-phase16+{work}/lfcc-phase16-s2 --runs {work}/wide-phase32+{work}/wide-phase32-s2", fuse)
        self.assertIn(
            f"--final {work}/final/lfcc-phase16/last+{work}/final/lfcc-phase16-s2/last "
            f"--final {work}/final/wide-phase32/last+{work}/final/wide-phase32-s2/last",
            fuse,
        )
        self.assertTrue(os.path.exists(os.path.join(self.keep, "wide-phase32-s2", "fold-1", "dev-scores-last.tsv.gz")))
        self.assertTrue(os.path.exists(os.path.join(self.keep, "final", "lfcc-phase16-s2", "last", "voice-tdnn-mfm.json")))

    def test_v2_dense_fuses_the_band1_networks_cutting_short_spans_densely(self):
        corpus = self.corpus("c")
        work = os.path.join(self.tmp.name, "work")
        done = self.v2(corpus, work, pair="dense")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        finals = [line for line in self.calls_matching("voice --data") if "--fold" not in line]
        self.assertEqual(len(finals), 3)
        self.assertIn("--band-limit 0.5", finals[0])
        (fuse,) = self.calls_matching("fuse --corpus")
        self.assertIn(f"--runs {work}/lfcc-phase16+{work}/lfcc-phase16-s2 --runs {work}/wide-band32", fuse)
        self.assertIn("--short-spans window=250,hop=10,up-to=600", fuse)

    def test_v2_dense3_trains_the_dense_networks_afresh_on_a_new_corpus(self):
        # band1 run on corpus v2 leaves its networks kept where band1 and dense restore them.
        v2 = self.corpus("v2")
        first = self.v2(v2, os.path.join(self.tmp.name, "work-v2"), pair="band1")
        self.assertEqual(first.returncode, 0, first.stdout + first.stderr)
        self.assertTrue(
            os.path.exists(os.path.join(self.tmp.name, "runs", "voice-v2-seeds", "final", "lfcc-phase16", "last"))
        )
        trained_on_v2 = len(self.calls_matching("voice --data"))
        self.assertEqual(trained_on_v2, 9)  # 3 networks × 2 folds + 3 finals

        v3 = self.corpus("v3")
        work = os.path.join(self.tmp.name, "work-v3")
        keep = os.path.join(self.tmp.name, "kept-v3")
        done = self.v2(v3, work, pair="dense3", keep=keep, finals_first=True)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertNotIn("restored", done.stdout)
        trained = self.calls_matching("voice --data")[trained_on_v2:]
        self.assertEqual(len(trained), 9, done.stdout)
        for line in trained:
            self.assertIn(f"--data {v3}", line)
        # AQIQAT_FINALS_FIRST: the three finals before any fold.
        self.assertEqual(["--fold" in line for line in trained], [False] * 3 + [True] * 6)
        (fuse,) = [line for line in self.calls_matching("fuse --corpus") if v3 in line]
        self.assertIn("--short-spans window=250,hop=10,up-to=600", fuse)
        for name in ("wide-band32", "lfcc-phase16", "lfcc-phase16-s2"):
            self.assertTrue(os.path.exists(os.path.join(keep, name, "fold-1", "dev-scores-last.tsv.gz")))
            self.assertTrue(os.path.exists(os.path.join(keep, "final", name, "last", "voice-tdnn-mfm.json")))

    def test_a_run_kept_from_another_corpus_build_is_never_restored(self):
        v3 = self.corpus("v3")
        first = self.v2(v3, os.path.join(self.tmp.name, "work-v3"), pair="dense3", keep=self.keep)
        self.assertEqual(first.returncode, 0, first.stdout + first.stderr)
        v4 = self.corpus("v4")
        with open(os.path.join(v4, "manifest.tsv"), "a") as f:
            f.write("audio/p1/c.flac\tbonafide\thuman\tg\thuman\tp1\ts9\ten\tclean\tread\ttrain\t1\n")
        trained = len(self.calls_matching("voice --data"))
        # The same keep folder by mistake (dense3's on corpus v4): stopped before any restore.
        done = self.v2(v4, os.path.join(self.tmp.name, "work-v4"), pair="dense4", keep=self.keep)
        self.assertEqual(done.returncode, 3, done.stdout + done.stderr)
        self.assertIn("was trained on another corpus build", done.stderr)
        self.assertNotIn("restored", done.stdout)
        self.assertEqual(len(self.calls_matching("voice --data")), trained)
        # Its own folder: every network trained afresh on corpus v4.
        done = self.v2(v4, os.path.join(self.tmp.name, "work-v4b"), pair="dense4",
                       keep=os.path.join(self.tmp.name, "kept-v4"))
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(len(self.calls_matching(f"voice --data {v4}")), 9)
        # The same corpus rebuilt elsewhere (a new machine): restored, not trained again.
        v3b = self.corpus("v3b")
        again = self.v2(v3b, os.path.join(self.tmp.name, "work-v3b"), pair="dense3", keep=self.keep)
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr)
        self.assertEqual(len(self.calls_matching(f"voice --data {v3b}")), 0)

    def test_v2_refuses_a_pair_it_does_not_know(self):
        done = self.v2(self.corpus("c"), os.path.join(self.tmp.name, "work"), pair="aasist")
        self.assertEqual(done.returncode, 2)
        self.assertIn("PAIR is kept, phase, seeds, band, band1, dense or denseN", done.stderr)
        self.assertEqual(self.calls_made(), 0)


# Answers `aqiqat eval SET.tsv --json --model M` with an EER read from the manifest's first line.
EVAL = """#!/usr/bin/env bash
set -euo pipefail
echo "$*" >> "$CALLS"
eer=$(head -n 1 "$2")
printf '{"eer": %s, "auc": 0.9, "n_bonafide": 3, "n_spoof": 2, "unscored": [["a", "short"]],' "$eer"
printf ' "bonafide_verdicts": {"human": 1, "inconclusive": 1, "synthetic": 1},'
printf ' "spoof_verdicts": {"human": 1, "inconclusive": 3, "synthetic": 0}}\\n'
"""


class EvalShTest(unittest.TestCase):
    SETS = ("smoke public test test_mulaw8k test_alaw8k test_amr-nb-12.2k test_amr-nb-4.75k "
            "test_opus-16k test_mp3-32k").split()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.aqiqat = os.path.join(self.tmp.name, "aqiqat")
        with open(self.aqiqat, "w") as f:
            f.write(EVAL)
        os.chmod(self.aqiqat, 0o755)
        self.calls = os.path.join(self.tmp.name, "calls")
        self.sets = os.path.join(self.tmp.name, "eval")
        os.makedirs(self.sets)
        for name in self.SETS:
            with open(os.path.join(self.sets, f"{name}.tsv"), "w") as f:
                f.write("0.30\n" if name == "test_amr-nb-4.75k" else "0.20\n")

    def run_eval(self, out):
        env = dict(os.environ, AQIQAT=self.aqiqat, CALLS=self.calls)
        return subprocess.run(["bash", os.path.join(HERE, "eval.sh"), "card.json", self.sets, out],
                              env=env, capture_output=True, text=True)

    def calls_made(self):
        with open(self.calls) as f:
            return f.read().splitlines()

    def test_every_set_in_one_table_with_each_channel_against_the_clean_test_split(self):
        out = os.path.join(self.tmp.name, "out")
        done = self.run_eval(out)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(len(self.calls_made()), 9)
        self.assertIn("--model card.json", self.calls_made()[0])
        with open(os.path.join(out, "figures.md")) as f:
            table = f.read()
        self.assertIn("| smoke | 20.00 | 0.900 | 3/2 | 1 |  | 25.0 | 33.3 |", table)
        self.assertIn("| test_mulaw8k | 20.00 | 0.900 | 3/2 | 1 | 1.00 | 25.0 | 33.3 |", table)
        self.assertIn("| test_amr-nb-4.75k | 30.00 | 0.900 | 3/2 | 1 | 1.50 | 25.0 | 33.3 |", table)

    def test_a_set_already_answered_is_not_scanned_again(self):
        out = os.path.join(self.tmp.name, "out")
        os.makedirs(out)
        with open(os.path.join(out, "smoke.json"), "w") as f:
            f.write('{"eer": 0.05, "auc": 0.99, "n_bonafide": 24, "n_spoof": 22, "unscored": []}')
        done = self.run_eval(out)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(len(self.calls_made()), 8)
        self.assertNotIn("smoke.tsv", " ".join(self.calls_made()))
        self.assertIn("| smoke | 5.00 | 0.990 | 24/22 | 0 |  | – | – |", done.stdout)

    def test_a_missing_set_stops_before_anything_is_scanned(self):
        os.remove(os.path.join(self.sets, "test_opus-16k.tsv"))
        done = self.run_eval(os.path.join(self.tmp.name, "out"))
        self.assertEqual(done.returncode, 2)
        self.assertIn("no " + self.sets + "/test_opus-16k.tsv", done.stderr)
        self.assertFalse(os.path.exists(self.calls))


if __name__ == "__main__":
    unittest.main()
