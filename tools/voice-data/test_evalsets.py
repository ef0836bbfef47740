"""Checks of the evaluation manifests' channel round trips (needs Debian's ffmpeg; the AMR
channels also numpy, scipy, soundfile and libopencore-amrnb0, as the corpus builder does).

    python3 -m unittest discover -s tools/voice-data -p 'test_*.py'
"""

import importlib.util
import ctypes.util
import math
import shutil
import struct
import subprocess
import tempfile
import unittest
import wave
from pathlib import Path

import evalsets
import registry


def tone(path, rate=16000, seconds=1.0):
    """A 440 Hz tone (in every channel's band) and a 6 kHz one (above a call's)."""
    n = int(rate * seconds)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(
            struct.pack("<h", int(8000 * (math.sin(2 * math.pi * 440 * i / rate)
                                          + math.sin(2 * math.pi * 6000 * i / rate))))
            for i in range(n)))


def probe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate",
                          "-of", "csv=p=0", str(path)], check=True, capture_output=True, text=True)
    codec, rate = out.stdout.strip().split(",")
    return codec, int(rate)


@unittest.skipUnless(shutil.which("ffmpeg") and shutil.which("ffprobe"), "needs ffmpeg")
class Channels(unittest.TestCase):
    def degrade(self, channel):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d)
            tone(out / "clip.wav")
            rows = [{"path": "clip.wav", "label": "bonafide", "generator": "human", "source": "t"}]
            [row] = evalsets.degrade(out, "t", rows, channel)
            self.assertEqual(row["channel"], channel)
            target = out / row["path"]
            # Written under a temporary name and renamed: nothing else is left in the folder.
            self.assertEqual([p.name for p in target.parent.iterdir()], [target.name])
            return probe(target)

    def test_the_issue_s_channels_are_all_there(self):
        self.assertEqual(set(evalsets.CHANNELS), {"mulaw8k", "alaw8k", "amr-nb-12.2k", "amr-nb-4.75k",
                                                  "mp3-32k", "opus-16k"})

    def test_ffmpeg_channels_use_their_codec(self):
        for channel, expected in [("mulaw8k", ("pcm_mulaw", 8000)), ("alaw8k", ("pcm_alaw", 8000)),
                                  ("mp3-32k", ("mp3", 16000)), ("opus-16k", ("opus", 48000))]:
            with self.subTest(channel):
                self.assertEqual(self.degrade(channel), expected)

    @unittest.skipUnless(all(importlib.util.find_spec(m) for m in ("numpy", "scipy", "soundfile"))
                         and ctypes.util.find_library("opencore-amrnb"),
                         "AMR needs numpy, scipy, soundfile and libopencore-amrnb0")
    def test_amr_is_an_8_khz_call_leg_that_keeps_the_voice_band(self):
        import numpy as np
        import soundfile
        for channel in ("amr-nb-12.2k", "amr-nb-4.75k"):
            with self.subTest(channel), tempfile.TemporaryDirectory() as d:
                out = Path(d)
                tone(out / "clip.wav")
                [row] = evalsets.degrade(out, "t", [{"path": "clip.wav", "label": "bonafide",
                                                     "generator": "human", "source": "t"}], channel)
                y, rate = soundfile.read(out / row["path"])
                self.assertEqual(rate, 8000)
                spectrum = np.abs(np.fft.rfft(y[800:7200]))
                freqs = np.fft.rfftfreq(6400, 1 / 8000)
                # The 440 Hz tone comes through the codec (AMR passes a steady tone, roughly).
                self.assertGreater(spectrum[np.abs(freqs - 440) < 20].max(), 10 * np.median(spectrum))


if __name__ == "__main__":
    unittest.main()


class CorpusSets(unittest.TestCase):
    """The test split and the held-out family sets read both corpus layouts: v1's `source`
    column and v2's `page` (v2 has no `source`; the held-out sets once failed on it)."""

    def corpus(self, d, source_column):
        head = ["path", "label", "generator", "family", "language", "split",
                "source" if source_column else "page"]
        rows = [["a.flac", "bonafide", "human", "", "en", "test", "ljs"],
                ["b.flac", "bonafide", "human", "", "en", "train", "ljs"],
                ["c.flac", "spoof", "espeak", "formant", "en", "train", "espeak-page"],
                ["d.flac", "spoof", "vits", "vits", "kk", "test", "vits-page"]]
        (d / "manifest.tsv").write_text("\n".join("\t".join(r) for r in [head] + rows) + "\n")

    def test_both_layouts(self):
        for source_column in (True, False):
            with tempfile.TemporaryDirectory() as d:
                d = Path(d)
                self.corpus(d, source_column)
                test = evalsets.test_rows(d)
                self.assertEqual([(r["source"], r["language"]) for r in test],
                                 [("ljs", "en"), ("vits-page", "kk")])
                sets = evalsets.heldout_rows(d)
                self.assertEqual(sorted(sets), ["formant", "vits"])
                # Each family's spoofs from any split, against the test split's genuine clips.
                self.assertEqual([(Path(r["path"]).name, r["source"]) for r in sets["formant"]],
                                 [("a.flac", "ljs"), ("c.flac", "espeak-page")])


class RegisteredSets(unittest.TestCase):
    """Sets registered for evaluation only (tools/voice-data/eval-sources/)."""

    def test_every_file_the_rules_take_is_extracted_whole_with_its_label(self):
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            repo = d / "mirror" / "owner+page" / "repo"
            files = {"gt/001.wav": b"genuine", "xtts/001.wav": b"cloned", "notes/a.wav": b"x"}
            for rel, data in files.items():
                (repo / rel).parent.mkdir(parents=True, exist_ok=True)
                (repo / rel).write_bytes(data)
            git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
            subprocess.run(["git", "init", "-q", str(repo)], check=True)
            subprocess.run(git + ["add", "."], check=True)
            subprocess.run(git + ["commit", "-qm", "pages"], check=True)
            commit = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True,
                                    text=True).stdout.strip()
            registry_dir = d / "eval-sources"
            registry_dir.mkdir()
            rule = ('[[source.rule]]\npath = \'^{p}/\\d+\\.wav$\'\nlabel = "{label}"\n'
                    'system = "{system}"\nfamily = "{family}"\nspeaker = "s"\nlanguage = "fr"\n'
                    'channel = "clean"\nevidence = "index.html, its column"\n')
            (registry_dir / "page.toml").write_text(
                f'[[source]]\nid = "home"\nrepo = "owner/page"\ncommit = "{commit}"\n'
                'licence = "evaluation only"\npage = "index.html"\nlanguages = ["fr"]\n'
                'kind = "sample-folder"\n\n'
                + rule.format(p="gt", label="bonafide", system="human", family="human")
                + rule.format(p="xtts", label="spoof", system="xtts-v2", family="zero-shot-tts"))
            sets = evalsets.registered_rows(d / "out", evalsets.eval_sources(registry_dir),
                                            d / "mirror")
            self.assertEqual(list(sets), ["home"])
            rows = sets["home"]
            self.assertEqual([(r["label"], r["generator"], r["family"], r["language"])
                              for r in rows],
                             [("bonafide", "human", "human", "fr"),
                              ("spoof", "xtts-v2", "zero-shot-tts", "fr")])
            for r, rel in zip(rows, ["gt/001.wav", "xtts/001.wav"]):
                self.assertEqual((d / "out" / r["path"]).read_bytes(), files[rel])
                self.assertEqual(r["source"], "home")
            # A set may not take the name of one evalsets.py writes itself.
            toml = registry_dir / "page.toml"
            toml.write_text(toml.read_text().replace('id = "home"', 'id = "test"'))
            with self.assertRaisesRegex(registry.RegistryError, "evalsets.py's own sets"):
                evalsets.eval_sources(registry_dir)

    def test_no_evaluation_source_is_ever_a_training_source(self):
        here = Path(evalsets.__file__).resolve().parent
        evaluation = registry.load(here / "eval-sources")
        self.assertTrue(evaluation, "the folder holds the registered sets")
        training = {s.repo.lower() for s in registry.load(registry.REGISTRY)}
        candidates = {s.repo.lower() for s in registry.load(here / "candidate-sources")}
        for source in evaluation:
            self.assertNotIn(source.repo.lower(), training | candidates, source.id)
            for rule in source.rules:
                self.assertTrue(rule.evidence.strip(), f"{source.id}: a rule without evidence")
