"""Tests for folds.sh's keeping and restoring of finished folds (AQIQAT_KEEP), with a stand-in
trainer: a fold kept once is restored on a new machine, not trained again, and its held-out
scores come back naming the clips of the corpus where that machine has it."""

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
        return path

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


if __name__ == "__main__":
    unittest.main()
