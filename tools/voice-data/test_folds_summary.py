"""Tests for folds_summary.py: the EER, the open-world bands (the rule of the Rust
`ScoreBands::from_held_out`) and the fold-wise fusion."""

import math
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import folds_summary as fs  # noqa: E402


class EerTest(unittest.TestCase):
    def test_separated_scores_have_no_error_and_identical_ones_half(self):
        self.assertEqual(fs.eer([0.0, 0.1, 0.2], [1.0, 1.1]), 0.0)
        self.assertEqual(fs.eer([0.5] * 4, [0.5] * 3), 0.5)
        self.assertIsNone(fs.eer([], [1.0]))

    def test_one_clip_on_the_wrong_side(self):
        # One of four spoofs scores below every genuine clip: EER between 0 and that spoof's share.
        e = fs.eer([0.0, 0.1, 0.2, 0.3], [-1.0, 1.0, 1.1, 1.2])
        self.assertGreater(e, 0.0)
        self.assertLessEqual(e, 0.25)


class BandsTest(unittest.TestCase):
    def test_same_cuts_as_the_rust_rule(self):
        # Mirrors calibration.rs: with few clips the extremes decide.
        self.assertEqual(fs.bands([0.0, 1.0], [-1.0, 2.0]), (-1.0, math.nextafter(1.0, math.inf)))

    def test_bounds_hold_on_the_clips_they_were_set_on(self):
        rng = random.Random(7)
        bona = [rng.gauss(-1, 1) for _ in range(400)]
        spoof = [rng.gauss(1, 1) for _ in range(300)]
        human, synthetic = fs.bands(bona, spoof)
        self.assertLess(human, synthetic)
        self.assertLessEqual(sum(s < human for s in spoof) / len(spoof), 0.05)
        self.assertLessEqual(sum(b >= synthetic for b in bona) / len(bona), 0.01)

    def test_crossing_cuts_meet_in_the_middle(self):
        human, synthetic = fs.bands([0.0] * 200, [5.0] * 200)
        self.assertEqual(human, synthetic)
        self.assertEqual(fs.shares([5.0, 0.0], human, synthetic), (0.5, 0.5, 0.0))


class FoldTest(unittest.TestCase):
    def folds(self, separation, seed):
        rng = random.Random(seed)
        return {
            k: [(f"{k}-b{i}", False, rng.gauss(0, 1)) for i in range(100)]
            + [(f"{k}-s{i}", True, rng.gauss(separation, 1)) for i in range(100)]
            for k in range(4)
        }

    def test_open_world_bands_come_from_the_other_folds(self):
        folds = self.folds(3.0, 1)
        # A fold scored far higher than the rest: bands from the others call its genuine clips
        # synthetic, which bands from its own scores would not.
        folds[0] = [(p, sp, s + 10.0) for p, sp, s in folds[0]]
        world = fs.open_world(folds)
        (_, _, _), (wrongly_synthetic, _, _) = world[0]
        self.assertGreater(wrongly_synthetic, 0.9)
        self.assertLess(world[1][1][0], 0.1)

    def test_a_lone_fold_gets_no_bands(self):
        # A candidate still running has one fold: nothing to set its bands on.
        lone = {0: self.folds(3.0, 4)[0]}
        self.assertEqual(fs.open_world(lone), {0: ((None, None, None), (None, None, None))})
        self.assertEqual(fs.shares([], 0.0, 1.0), (None, None, None))

    def test_fusion_prefers_the_informative_candidate(self):
        good = self.folds(3.0, 2)
        noise = self.folds(0.0, 3)
        fused, weights = fs.fused_folds(good, noise)
        self.assertTrue(all(w[0] >= 0.8 for w in weights.values()), weights)
        for k, clips in fused.items():
            e = fs.eer([s for _, sp, s in clips if not sp], [s for _, sp, s in clips if sp])
            self.assertLess(e, 0.15, k)

    def test_three_way_fusion_weighs_each_candidate_by_what_it_adds(self):
        good = self.folds(3.0, 2)
        noise = self.folds(0.0, 3)
        fused, weights = fs.fused_folds(noise, good, self.folds(0.0, 5))
        self.assertTrue(all(w[1] >= 0.8 and abs(sum(w) - 1) < 1e-9 for w in weights.values()), weights)
        self.assertEqual(len(fs.weight_grid(3)), 66)
        self.assertTrue(all(abs(sum(w) - 1) < 1e-9 for w in fs.weight_grid(3)))
        for k, clips in fused.items():
            e = fs.eer([s for _, sp, s in clips if not sp], [s for _, sp, s in clips if sp])
            self.assertLess(e, 0.15, k)

    def test_naming_the_candidates_in_another_order_swaps_their_weights(self):
        # Two coarse views of one signal: scores on a few levels, so weightings tie.
        def coarse(seed):
            return {k: [(p, sp, round(s)) for p, sp, s in cs] for k, cs in self.folds(1.5, seed).items()}

        a, b = coarse(6), coarse(7)
        _, ab = fs.fused_folds(a, b)
        _, ba = fs.fused_folds(b, a)
        self.assertEqual(ab, {k: (w[1], w[0]) for k, w in ba.items()})
        # The case this guards: some fold's lowest EER is shared by several weightings.
        fusions = {w: fs.fuse([a, b], w) for w in fs.weight_grid(2)}
        pooled = {
            w: fs.eer(
                [s for j, cs in f.items() if j != 0 for _, sp, s in cs if not sp],
                [s for j, cs in f.items() if j != 0 for _, sp, s in cs if sp],
            )
            for w, f in fusions.items()
        }
        self.assertGreater(list(pooled.values()).count(min(pooled.values())), 1, pooled)


    def test_seeds_of_one_candidate_count_as_their_mean(self):
        a = {0: [("x", True, 1.0), ("y", False, -2.0)], 1: [("z", True, 4.0)]}
        b = {0: [("y", False, 0.0), ("x", True, 3.0)], 2: [("w", True, 1.0)]}
        # Only folds and clips both seeds scored, each with the mean.
        self.assertEqual(fs.seeds_mean(a, b), {0: [("x", True, 2.0), ("y", False, -1.0)]})
        self.assertEqual(fs.seeds_mean(a), {0: a[0], 1: a[1]})


class EpochLogTest(unittest.TestCase):
    def candidate(self, tmp, eers):
        corpus = os.path.join(tmp, "corpus")
        fold = os.path.join(tmp, "cand", "fold-0")
        os.makedirs(fold)
        with open(os.path.join(fold, "dev-scores-last.tsv"), "w") as f:
            f.write(f"path\tlabel\tscore\n{corpus}/a.flac\tbonafide\t-1.0\n")
        with open(os.path.join(fold, "epochs.tsv"), "w") as f:
            f.write("epoch\tloss\tdev_eer\tseconds\n")
            for epoch, eer in enumerate(eers):
                f.write(f"{epoch}\t0.5\t{eer}\t1.0\n")
        return fs.read_candidate(os.path.join(tmp, "cand"), corpus, {"a.flac": {}})

    def test_epochs_left_unscored_are_not_taken_for_the_best(self):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            folds, epochs = self.candidate(tmp, ["NaN", "0.3", "0.2", "0.25"])
            self.assertEqual(folds[0], [("a.flac", False, -1.0)])
            self.assertEqual(epochs[0], (0.25, 0.2, 2))
        with tempfile.TemporaryDirectory() as tmp:
            # --score-last-only: one scored epoch, no best epoch to print.
            _, epochs = self.candidate(tmp, ["NaN", "NaN", "0.25"])
            self.assertEqual(epochs, {})


if __name__ == "__main__":
    unittest.main()
