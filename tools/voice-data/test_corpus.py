"""Checks of the voice source registry and the corpus builder's rules (no audio needed).

    python3 -m unittest discover -s tools/voice-data -p 'test_*.py'
"""

import hashlib
import json
import os
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

import augment  # noqa: E402
import balance  # noqa: E402
import corpus  # noqa: E402
import generate  # noqa: E402
import registry  # noqa: E402

SHARED_README = Path(__file__).resolve().parents[2].parent / "shared/data/voice/README.md"

SOURCE = """
[[source]]
id = "{id}"
repo = "{repo}"
commit = "0123456789abcdef0123456789abcdef01234567"
licence = "none stated"
page = "index.html"
languages = ["en"]
kind = "demo-page"

[[source.rule]]
path = '^gt/(?P<utt>\\d+)\\.wav$'
label = "bonafide"
system = "human"
family = "human"
speaker = "lj"
language = "en"
channel = "clean"
evidence = "index.html: column 'Ground truth'"

[[source.rule]]
path = '^(?P<sys>taco|glow|other)/\\d+\\.wav$'
label = "spoof"
system = "{{sys}}"
family = "acoustic-tts"
speaker = "lj"
language = "en"
channel = "clean"
evidence = "index.html: columns 'Tacotron 2', 'Glow-TTS'"
[source.rule.system_map]
taco = "tacotron2"
glow = "glow-tts"
"""


def write_registry(folder, **sources):
    for name, (sid, repo) in sources.items():
        (Path(folder) / f"{name}.toml").write_text(SOURCE.format(id=sid, repo=repo))


def row(label, system="human", speaker="s", language="en", channel="clean", page="p", path=None,
        split="train"):
    return dict(label=label, system=system, speaker=speaker, language=language, channel=channel,
                page=page, path=path or f"{page}/{system}/{speaker}/{id(object())}", split=split,
                orig_rate=16000, loudness=-24.0, duration=3.0)


class RegistryInTheRepository(unittest.TestCase):
    def test_every_source_is_well_formed_and_none_is_reserved(self):
        reserved = (registry.reserved_repositories(SHARED_README) if SHARED_README.exists()
                    else frozenset())
        sources = registry.load(registry.REGISTRY, reserved)
        ids = [s.id for s in sources]
        self.assertEqual(len(ids), len(set(ids)))
        for s in sources:
            for r in s.rules:
                self.assertTrue(r.evidence.strip(), f"{s.id}: a rule without evidence")

    def test_the_shared_readme_reserves_what_it_lists(self):
        if not SHARED_README.exists():
            self.skipTest("no ../shared beside the checkout")
        reserved = registry.reserved_repositories(SHARED_README)
        for repo in ("OlaWod/FreeVC-demo", "IS2AI/TurkicTTS", "sberdevices/golos",
                     "MiniMax-AI/MiniMax-AI.github.io"):
            self.assertIn(repo, reserved)
        self.assertNotIn("resemble-ai/Resemblyzer", reserved, "only two of its folders are")

    def test_without_the_shared_readme_nothing_is_built_unchecked(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex(registry.RegistryError, "reserved sources"):
                registry.reserved_repositories(Path(d) / "README.md")


class Rules(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        write_registry(self.dir.name, a=("page-a", "owner/page-a"))
        (self.source,) = registry.load(self.dir.name)

    def tearDown(self):
        self.dir.cleanup()

    def test_labels_systems_and_speakers_come_from_the_path(self):
        self.assertEqual(self.source.classify("gt/001.wav")["label"], "bonafide")
        taco = self.source.classify("taco/001.wav")
        self.assertEqual((taco["label"], taco["system"]), ("spoof", "tacotron2"))
        self.assertIsNone(self.source.classify("other/001.wav"), "not in system_map: left out")
        self.assertIsNone(self.source.classify("gt/001.mp3"))
        self.assertIsNone(self.source.classify("x/gt/001.wav"), "the whole path must match")

    def test_a_speaker_map_gives_a_reader_identified_later_one_key(self):
        with tempfile.TemporaryDirectory() as d:
            text = SOURCE.format(id="page-a", repo="owner/page-a").replace(
                'kind = "demo-page"', 'kind = "demo-page"\nspeaker_map = { lj = "ls-1580" }', 1)
            (Path(d) / "a.toml").write_text(text)
            (source,) = registry.load(d)
            self.assertEqual(source.classify("gt/001.wav")["speaker"], "ls-1580")
            self.assertEqual(source.classify("taco/001.wav")["speaker"], "ls-1580")
            source.exclude_speakers = frozenset({"ls-1580"})
            self.assertIsNone(source.classify("gt/001.wav"), "excluded by the reader's key")

    def test_a_reserved_repository_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            write_registry(d, a=("page-a", "OlaWod/FreeVC-demo"))
            with self.assertRaises(registry.RegistryError):
                registry.load(d, {"OlaWod/FreeVC-demo"})

    def test_resemblyzer_public_test_folders_never_match(self):
        self.source.repo = "resemble-ai/Resemblyzer"
        self.source.rules[0].path = __import__("re").compile(r"^audio_data/.*\.wav$")
        self.assertIsNotNone(self.source.classify("audio_data/librispeech_train-clean-100/a.wav"))
        self.assertIsNone(self.source.classify("audio_data/librispeech_test-other/a.wav"))
        self.assertIsNone(self.source.classify("audio_data/donald_trump/fake/a.wav"))

    def test_malformed_entries_are_refused(self):
        bad = {
            "a bonafide rule naming a system": ('system = "human"', 'system = "vits"', 1),
            "an unknown channel": ('channel = "clean"', 'channel = "studio"', 1),
            "a short commit": ("0123456789abcdef0123456789abcdef01234567", "0123", 1),
            "a broken regex": ("'^gt/", "'^gt/(", 1),
            "no evidence": ("evidence = \"index.html: column 'Ground truth'\"", 'evidence = ""', 1),
        }
        for what, (old, new, count) in bad.items():
            with self.subTest(what), tempfile.TemporaryDirectory() as d:
                text = SOURCE.format(id="page-a", repo="owner/page-a").replace(old, new, count)
                (Path(d) / "a.toml").write_text(text)
                with self.assertRaises(registry.RegistryError):
                    registry.load(d)

    def test_a_faulty_registry_ends_the_tools_with_one_line(self):
        import subprocess
        here = Path(__file__).resolve().parent
        with tempfile.TemporaryDirectory() as d:
            write_registry(d, a=("page-a", "owner/a"), b=("page-a", "owner/b"))
            for tool, args in (("corpus.py", ["--list", "--out", d, "--registry", d]),
                               ("evalsets.py", ["--out", str(Path(d) / "out"), "--resemblyzer", d,
                                               "--smoke", d, "--eval-sources", d])):
                with self.subTest(tool):
                    done = subprocess.run([sys.executable, str(here / tool), *args],
                                          capture_output=True, text=True, timeout=60)
                    self.assertEqual(done.returncode, 1)
                    self.assertNotIn("Traceback", done.stderr)
                    self.assertEqual(done.stderr.count("\n"), 1, done.stderr)
                    self.assertTrue(done.stderr.startswith(f"{tool}: "), done.stderr)
                    self.assertIn("page-a", done.stderr)

    def test_duplicate_ids_are_refused(self):
        with tempfile.TemporaryDirectory() as d:
            write_registry(d, a=("page-a", "owner/a"), b=("page-a", "owner/b"))
            with self.assertRaises(registry.RegistryError):
                registry.load(d)


class SplitsCapsFolds(unittest.TestCase):
    def rows(self):
        rows = []
        for page in range(30):
            for system in (f"sys{page % 12}", f"own{page}"):
                rows += [row("spoof", system=system, speaker=f"v{page}", page=f"page{page}")
                         for _ in range(4)]
            rows += [row("bonafide", speaker=f"spk{page % 17}", page=f"page{page}")
                     for _ in range(6)]
        return rows

    def test_a_system_and_a_speaker_never_cross_splits(self):
        # Enough systems and speakers that each split, dev's 5 % too, draws some.
        rows = self.rows() + [row("spoof", system=f"more{i}", speaker=f"w{i}", page="more")
                              for i in range(100)]
        corpus.assign_splits(rows, [], seed=1)
        for key, label in (("system", "spoof"), ("speaker", "bonafide")):
            where = {}
            for r in rows:
                if r["label"] == label:
                    where.setdefault(r[key], set()).add(r["split"])
            self.assertTrue(all(len(s) == 1 for s in where.values()), key)
        self.assertEqual({r["split"] for r in rows}, {"train", "dev", "test"})

    def test_the_test_split_never_moves_when_train_and_dev_shares_do(self):
        # Corpora v1-v5 cut 70 / 15 / 15; the test split must be the same keys under any cut.
        old = (("train", 0.70), ("dev", 0.15), ("test", 0.15))
        self.assertEqual(corpus.SHARES[-1], ("test", 0.15))
        moved = 0
        for i in range(2000):
            key = f"speaker:s{i}"
            h, acc, before = corpus.unit(key, 7), 0.0, None
            for name, share in old:
                acc += share
                if before is None and h < acc:
                    before = name
            now = corpus.stable_split(key, 7)
            self.assertEqual(now == "test", before == "test", key)
            moved += before == "dev" and now == "train"
        self.assertGreater(moved, 0, "some of the old dev keys train now")

    def test_a_pinned_system_is_in_its_split_on_every_page(self):
        drawn = corpus.stable_split("system:sys3", 7)
        pin = next(x for x in registry.SPLITS if x != drawn)
        pinning = SimpleNamespace(id="gen", split=None, options={"system_splits": {"sys3": pin}})
        rows = self.rows()
        corpus.assign_splits(rows, [pinning], 7)
        splits = {r["split"] for r in rows if r["system"] == "sys3"}
        self.assertEqual(splits, {pin})
        self.assertGreater(len({r["page"] for r in rows if r["system"] == "sys3"}), 1)
        bad = SimpleNamespace(id="gen", split=None, options={"system_splits": {"sys3": "holdout"}})
        with self.assertRaises(SystemExit):
            corpus.assign_splits(rows, [bad], 7)

    def test_a_pinned_source_stays_in_its_split(self):
        rows = self.rows()
        pinned = SimpleNamespace(id="page3", split="train", options={})
        corpus.assign_splits(rows, [pinned], seed=1)
        self.assertEqual({r["split"] for r in rows if r["page"] == "page3"}, {"train"})

    def test_no_system_holds_more_than_five_percent(self):
        rows = [row("spoof", system="big") for _ in range(500)]
        rows += [row("spoof", system=f"s{i}") for i in range(40) for _ in range(10)]
        capped = corpus.cap_systems(rows, seed=1)
        spoof = [r for r in capped if r["label"] == "spoof"]
        big = sum(r["system"] == "big" for r in spoof)
        self.assertLessEqual(big, 0.05 * len(spoof))
        self.assertEqual(sum(r["system"] == "s0" for r in spoof), 10, "small systems untouched")

    def test_a_scarce_language_gets_no_more_spoof_than_genuine_in_training(self):
        rows = [row("bonafide", language="kk", speaker=f"k{i}") for i in range(30)]
        rows += [row("spoof", language="kk", system=f"s{i % 5}") for i in range(300)]
        rows += [row("bonafide", language="en") for _ in range(300)]
        rows += [row("spoof", language="en") for _ in range(900)]
        kept = corpus.cap_scarce_languages(rows, seed=1)
        count = lambda lang, label: sum(r["language"] == lang and r["label"] == label for r in kept)
        self.assertEqual(count("kk", "spoof"), 30)
        self.assertEqual(count("en", "spoof"), 900, "a language with enough genuine speech keeps all")

    def test_a_language_under_one_label_only_is_left_out(self):
        rows = [row("spoof", language="sw", system="mimic3") for _ in range(20)]
        rows += [row("bonafide", language="ca") for _ in range(3)]
        rows += [row(label, language="en") for label in ("bonafide", "spoof") for _ in range(5)]
        kept = corpus.cap_scarce_languages(rows, seed=1)
        self.assertEqual({r["language"] for r in kept}, {"en"})
        self.assertEqual(balance.one_label_only(kept), [])

    def test_every_training_page_is_in_exactly_one_fold(self):
        rows = self.rows()
        corpus.assign_splits(rows, [], seed=1)
        folds = corpus.make_folds(rows, 10, seed=1)
        train_pages = {r["page"] for r in rows if r["split"] == "train"}
        dealt = [p for f in folds for p in f["pages"]]
        self.assertEqual(sorted(dealt), sorted(train_pages))
        self.assertEqual(len(folds), 10)
        self.assertTrue(all(f["pages"] for f in folds))
        for f in folds:
            held = [r for r in rows if r["fold"] == f["fold"]]
            self.assertEqual(set(f["systems"]), {r["system"] for r in held if r["label"] == "spoof"})
        self.assertTrue(all(r["fold"] == -1 for r in rows if r["split"] != "train"))


    def test_a_fold_holding_a_big_page_of_one_label_takes_pages_of_the_other(self):
        rows = [row("bonafide", speaker=f"kid{i}", page="children") for i in range(400)]
        rows += [row("spoof", system="macst", page="accents") for _ in range(300)]
        for page in range(20):
            rows += [row("bonafide", speaker=f"s{page}", page=f"p{page}") for _ in range(10)]
            rows += [row("spoof", system=f"sys{page}", page=f"p{page}") for _ in range(10)]
        folds = corpus.make_folds(rows, 10, seed=1)
        self.assertTrue(all(f["bonafide"] and f["spoof"] for f in folds), folds)


class Environment(unittest.TestCase):
    def test_the_build_records_its_packages_and_cpu(self):
        env = corpus.build_environment()
        self.assertEqual(sorted(env), ["cpu", "debian", "python"])
        # A package that is absent is named with no version, not left out.
        self.assertLessEqual({"numpy", "scipy", "pyroomacoustics"}, set(env["python"]))
        self.assertLessEqual({"ffmpeg", "libopus0", "espeak-ng"}, set(env["debian"]))
        for version in list(env["python"].values()) + list(env["debian"].values()):
            self.assertTrue(version is None or (isinstance(version, str) and version), version)
        if env["cpu"]:
            self.assertTrue(all(f.startswith(("sse", "ssse", "avx", "fma")) for f in env["cpu"].get("simd", [])))


class Balance(unittest.TestCase):
    def test_a_language_or_channel_under_one_label_fails(self):
        rows = [row("bonafide", language="kk"), row("spoof", language="en"),
                row("bonafide", language="en", channel="phone"), row("spoof", channel="clean")]
        problems = balance.one_label_only(rows)
        self.assertIn("language kk: bonafide only", problems)
        self.assertIn("channel phone: bonafide only", problems)

    def test_both_labels_everywhere_passes_and_the_table_counts(self):
        rows = [row(label, language=lang, channel=ch) for label in ("bonafide", "spoof")
                for lang in ("kk", "ru") for ch in ("clean", "phone")]
        self.assertEqual(balance.one_label_only(rows), [])
        t = balance.table(rows)
        self.assertEqual(t["language"]["kk"], {"bonafide": 2, "spoof": 2})
        self.assertIn("kk", balance.render(t))


class RememberedWork(unittest.TestCase):
    """A build over an earlier build's clips (resumed, or with pages added) reuses their audio
    but must say of them what a build from scratch would. The bytes given here are not audio:
    had the record not been used, decoding them would give no rows at all."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.out = Path(self.dir.name)
        self.scratch = self.out / "scratch"
        self.scratch.mkdir()
        (self.out / "registry").mkdir()
        write_registry(self.out / "registry", a=("page-a", "owner/page-a"))
        (self.source,) = registry.load(self.out / "registry")
        self.data = b"the bytes of gt/001.wav"
        self.record = corpus.clip_record(self.out, "page-a", "gt-001")
        self.record.parent.mkdir(parents=True)
        before = dict(self.source.classify("gt/001.wav"), path="audio/page-a/gt-001.flac",
                      page="page-a", generator="human", orig_rate=22050, orig_codec="pcm_s16le",
                      duration=3.2, loudness=-24.0, source_path="owner/page-a@old:gt/001.wav",
                      source_rel="gt/001.wav")
        corpus.write_record(self.record, [before], self.data)

    def tearDown(self):
        self.dir.cleanup()

    def test_a_remembered_clip_says_what_the_rules_say_now(self):
        self.source.rules[0].speaker = "ls-1580"  # a reader identified since the last build
        now = self.source.classify("gt/001.wav")
        (got,) = corpus.process(self.source, "gt/001.wav", self.data, now, self.out,
                                self.scratch, 1, stem="gt-001")
        self.assertEqual(got["speaker"], "ls-1580")
        self.assertEqual((got["path"], got["duration"], got["orig_rate"]),
                         ("audio/page-a/gt-001.flac", 3.2, 22050), "measured: kept")
        self.assertEqual(got["source_path"], "owner/page-a@0123456789ab:gt/001.wav")

    def test_a_build_into_a_hard_linked_copy_leaves_the_earlier_build_as_it_was(self):
        copy = self.out / "copy"
        copy.mkdir()
        os.link(self.record, copy / self.record.name)
        before = self.record.read_text()
        corpus.write_record(copy / self.record.name, [], b"other bytes")
        self.assertEqual(self.record.read_text(), before)
        self.assertNotEqual((copy / self.record.name).read_text(), before)
        self.assertEqual(sorted(p.name for p in copy.iterdir()), [self.record.name])

    def test_a_record_of_other_bytes_is_not_trusted(self):
        row = self.source.classify("gt/001.wav")
        where = corpus.source_path(self.source, "gt/001.wav")
        self.assertIsNotNone(corpus.remembered(self.record, row, "page-a", where, self.data))
        self.assertIsNone(corpus.remembered(self.record, row, "page-a", where, b"a new commit"))
        # Records written before they held a hash: trusted, as they always were.
        self.record.write_text(json.dumps(json.loads(self.record.read_text())["rows"]))
        self.assertIsNotNone(corpus.remembered(self.record, row, "page-a", where, b"other"))

    def variant_record(self, recipe, pool):
        parent = dict(self.source.classify("gt/001.wav"), path="audio/page-a/gt-001.flac",
                      page="page-a", split="train", fold=3)
        kind = "noisy" if recipe.startswith(("babble", "pink")) else "phone"
        rows = [dict(parent, path=f"aug/page-a/gt-001-{kind}.flac", channel=kind, augment=recipe,
                     parent=parent["path"], loudness=-30.0)]
        record = self.out / "aug" / "page-a" / "gt-001.json"
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(dict(babble_pool=pool, rows=rows)))
        return record, dict(parent, split="dev", fold=-1)

    def test_a_remembered_variant_follows_its_parent_into_another_split_and_fold(self):
        pool = ["audio/page-b/x.flac"]
        _, parent = self.variant_record("mulaw8k", augment.pool_digest(pool))
        (got,) = augment.variants(parent, 1, self.out, self.scratch, 1, pool,
                                  augment.pool_digest(pool))
        self.assertEqual((got["split"], got["fold"]), ("dev", -1))
        self.assertEqual((got["channel"], got["augment"], got["path"]),
                         ("phone", "mulaw8k", "aug/page-a/gt-001-phone.flac"))

    def test_a_babble_mix_from_another_pool_of_genuine_clips_is_made_again(self):
        old, new = augment.pool_digest(["a.flac"]), augment.pool_digest(["a.flac", "b.flac"])
        record, parent = self.variant_record("babble4-snr7", old)
        self.assertIsNotNone(augment.remembered(record, parent, old))
        self.assertIsNone(augment.remembered(record, parent, new))
        record, parent = self.variant_record("pink-snr7", old)
        self.assertIsNotNone(augment.remembered(record, parent, new), "no babble: no pool used")
        record.write_text(json.dumps(json.loads(record.read_text())["rows"]))
        self.assertIsNotNone(augment.remembered(record, parent, new))
        record, parent = self.variant_record("babble3-snr2", old)
        record.write_text(json.dumps(json.loads(record.read_text())["rows"]))
        self.assertIsNone(augment.remembered(record, parent, old), "pool unknown")

    def test_a_pinned_vocoder_copies_the_genuine_clips_of_its_pinned_split(self):
        seed = 1
        drawn = corpus.stable_split("system:resynth-world", seed)
        pin = next(x for x in registry.SPLITS if x != drawn)
        genuine = []
        for split in registry.SPLITS:
            g = dict(label="bonafide", system="human", family="human", speaker=f"s-{split}",
                     language="en", channel="clean", style="read", split=split,
                     path=f"audio/page-a/{split}.flac", orig_rate=16000, orig_codec="flac")
            name = "world-" + hashlib.sha256(g["path"].encode()).hexdigest()[:12]
            record = corpus.clip_record(self.out, "gen-resynth", name)
            record.parent.mkdir(parents=True, exist_ok=True)
            copy = dict(g, label="spoof", system="resynth-world", path=f"audio/gen-resynth/{name}.flac")
            corpus.write_record(record, [copy], b"the resynthesis")
            genuine.append(g)
        source = SimpleNamespace(id="gen-resynth", repo="generated:resynth", origin="generated",
                                 options={"per_speaker": 1, "vocoders": ["world"],
                                          "system_splits": {"resynth-world": pin}})
        args = SimpleNamespace(out=self.out, seed=seed, jobs=1)
        rows, jobs, _ = generate.build_resynth(source, args, self.scratch, genuine)
        self.assertEqual(jobs, 1)
        self.assertEqual([r["speaker"] for r in rows], [f"s-{pin}"])

    def test_a_remembered_copy_synthesis_takes_its_genuine_clips_row_now(self):
        seed = 1
        split = corpus.stable_split("system:resynth-world", seed)
        genuine = dict(label="bonafide", system="human", family="human", speaker="ls-1580",
                       language="en", channel="clean", style="read", split=split,
                       path="audio/page-a/gt-001.flac", orig_rate=24000, orig_codec="pcm_f32le")
        name = "world-" + hashlib.sha256(genuine["path"].encode()).hexdigest()[:12]
        record = corpus.clip_record(self.out, "gen-resynth", name)
        record.parent.mkdir(parents=True)
        stale = dict(genuine, label="spoof", system="resynth-world", speaker="unitspeech-tts-1",
                     path=f"audio/gen-resynth/{name}.flac", duration=3.0, loudness=-20.0)
        corpus.write_record(record, [stale], b"the resynthesis")
        source = SimpleNamespace(id="gen-resynth", repo="generated:resynth", origin="generated",
                                 options={"per_speaker": 1, "vocoders": ["world"]})
        args = SimpleNamespace(out=self.out, seed=seed, jobs=1)
        (got,), jobs, _ = generate.build_resynth(source, args, self.scratch, [genuine])
        self.assertEqual(jobs, 1)
        self.assertEqual((got["speaker"], got["label"], got["path"]),
                         ("ls-1580", "spoof", f"audio/gen-resynth/{name}.flac"))
        self.assertEqual(got["source_path"], "generated:resynth:audio/page-a/gt-001.flac")


if __name__ == "__main__":
    unittest.main()
