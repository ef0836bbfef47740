"""Spoofs made here, offline, for the corpus builder: the registry's `generated:` sources.

- `generated:espeak-ng`: formant synthesis of tools/voice-data/sentences/<lang>.txt in every
  language the source's `options.voices` names (Kazakh, Russian, Kyrgyz, Uzbek, …), so that the
  languages with genuine speech also have synthetic speech.
- `generated:festival`: Debian's festival voices (`options.voices`: voice name -> language,
  system, family), among them festvox-ru's unit-selection voice, cut from the very recordings
  the festvox-ru source brings as genuine speech.
- `generated:resynth`: copy-synthesis of genuine clips with WORLD, Griffin-Lim and an LPC
  vocoder. Same speaker, words and channel as the original; only the waveform generator differs,
  which is the lesson a detector needs (Wang & Yamagishi, ICASSP 2023). A vocoder only
  resynthesises clips of its own split, so no test speaker is heard in training.

Every clip is normalised like the fetched ones (corpus.finish_clip).
"""

import hashlib
import subprocess
from pathlib import Path

import corpus

HERE = Path(__file__).resolve().parent


def sentences(lang):
    path = HERE / "sentences" / f"{lang}.txt"
    return [s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]


def _synthesise_to(cmd, text, out, stdin_text):
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(cmd, input=text.encode() if stdin_text else None, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def espeak_jobs(source):
    """(row, make) for every voice and sentence: `make(path)` writes the raw synthesis."""
    jobs = []
    for lang, voices in sorted(source.options.get("voices", {}).items()):
        for voice in voices:
            for i, text in enumerate(sentences(lang)):
                row = dict(label="spoof", system="espeak-ng", family="formant",
                           speaker=f"espeak-{voice}", language=lang, channel="clean", style="read")
                make = (lambda out, v=voice, t=text:
                        _synthesise_to(["espeak-ng", "-v", v, "-s", "150", "-w", str(out), t], t, out, False))
                jobs.append((f"{voice}-{i:03d}", row, make))
    return jobs


def festival_jobs(source):
    jobs = []
    for voice, spec in sorted(source.options.get("voices", {}).items()):
        lang = spec["language"]
        for i, text in enumerate(sentences(lang)):
            row = dict(label="spoof", system=spec["system"], family=spec["family"],
                       speaker=spec.get("speaker", f"festival-{voice}"), language=lang,
                       channel="clean", style="read")
            make = (lambda out, v=voice, t=text:
                    _synthesise_to(["text2wave", "-eval", f"(voice_{v})", "-o", str(out)], t, out, True))
            jobs.append((f"{voice}-{i:03d}", row, make))
    return jobs


def build_tts(source, args, scratch):
    """The rows of an espeak-ng or festival source, each clip normalised like fetched ones."""
    from concurrent.futures import ThreadPoolExecutor
    jobs = espeak_jobs(source) if source.repo == "generated:espeak-ng" else festival_jobs(source)

    def one(job):
        name, row, make = job
        raw = scratch / f"{source.id}-{name}.wav"
        rows = corpus.recalled(source, f"{name}.wav", row, args.out, name)
        if rows is not None:
            return rows
        make(raw)
        data = raw.read_bytes()
        raw.unlink(missing_ok=True)
        return corpus.process(source, f"{name}.wav", data, row, args.out, scratch, args.seed,
                              stem=name)

    with ThreadPoolExecutor(args.jobs) as pool:
        rows = [r for got in pool.map(one, jobs) for r in got]
    return rows, len(jobs), 0


# ---- copy-synthesis --------------------------------------------------------------------------

VOCODERS = {"world": ("resynth-world", "vocoder"), "griffin-lim": ("resynth-griffin-lim", "vocoder"),
            "lpc": ("resynth-lpc", "vocoder")}


def world(x, sr):
    import pyworld
    f0, t = pyworld.dio(x, sr, frame_period=5.0)
    f0 = pyworld.stonemask(x, f0, t, sr)
    sp = pyworld.cheaptrick(x, f0, t, sr)
    ap = pyworld.d4c(x, f0, t, sr)
    return pyworld.synthesize(f0, sp, ap, sr, frame_period=5.0)


def griffin_lim(x, seed, n_fft=512, hop=128, iterations=48):
    import numpy as np
    window = np.hanning(n_fft)

    def stft(sig):
        frames = np.lib.stride_tricks.sliding_window_view(sig, n_fft)[::hop] * window
        return np.fft.rfft(frames, axis=1)

    def istft(spec, length):
        frames = np.fft.irfft(spec, n=n_fft, axis=1) * window
        out, norm = np.zeros(length), np.zeros(length)
        for k, frame in enumerate(frames):
            out[k * hop:k * hop + n_fft] += frame
            norm[k * hop:k * hop + n_fft] += window ** 2
        return out / np.maximum(norm, 0.1)

    magnitude = np.abs(stft(x))
    phase = np.exp(2j * np.pi * np.random.default_rng(seed).random(magnitude.shape))
    y = istft(magnitude * phase, len(x))
    for _ in range(iterations):
        y = istft(magnitude * np.exp(1j * np.angle(stft(y))), len(x))
    return y


def lpc_vocoder(x, sr, order=18, frame=400, hop=160):
    """Linear prediction with a synthetic excitation: a pulse train at WORLD's f0 where voiced,
    white noise where not, through each frame's all-pole filter, overlap-added."""
    import numpy as np
    import pyworld
    from scipy.linalg import solve_toeplitz
    from scipy.signal import lfilter
    f0, t = pyworld.dio(x, sr, frame_period=1000 * hop / sr)
    rng = np.random.default_rng(len(x))
    window = np.hanning(frame)
    out, norm = np.zeros(len(x) + frame), np.zeros(len(x) + frame)
    phase = 0.0
    for k, start in enumerate(range(0, len(x) - frame, hop)):
        seg = x[start:start + frame] * window
        r = np.correlate(seg, seg, "full")[frame - 1:frame + order]
        if r[0] < 1e-10:
            continue
        r[0] *= 1.0001
        a = solve_toeplitz(r[:order], r[1:order + 1])
        gain = np.sqrt(max(r[0] - np.dot(a, r[1:order + 1]), 1e-12) / frame)
        pitch = f0[min(k, len(f0) - 1)]
        if pitch > 0:
            excitation = np.zeros(frame)
            period = sr / pitch
            pos = (-phase) % period
            while pos < frame:
                excitation[int(pos)] = np.sqrt(period)
                pos += period
            phase = (phase + hop) % period
        else:
            excitation = rng.standard_normal(frame)
        y = lfilter([gain], np.concatenate([[1.0], -a]), excitation) * window
        out[start:start + frame] += y
        norm[start:start + frame] += window ** 2
    return out[: len(x)] / np.maximum(norm[: len(x)], 0.1)


def build_resynth(source, args, scratch, genuine_rows):
    """Copy-synthesis of up to `options.per_speaker` genuine clips of every speaker in each
    vocoder's split."""
    from concurrent.futures import ThreadPoolExecutor
    per_speaker = int(source.options.get("per_speaker", 2))
    vocoders = source.options.get("vocoders", list(VOCODERS))
    pins = corpus.system_splits(source)
    jobs = []
    for vocoder in vocoders:
        system, family = VOCODERS[vocoder]
        split = corpus.spoof_split(system, args.seed, pins)
        by_speaker = {}
        for r in genuine_rows:
            if r["split"] == split:
                by_speaker.setdefault(r["speaker"], []).append(r)
        for speaker in sorted(by_speaker):
            rows = sorted(by_speaker[speaker],
                          key=lambda r: corpus.unit(f"resynth:{vocoder}:{r['path']}", args.seed))
            jobs += [(vocoder, system, family, r) for r in rows[:per_speaker]]

    def one(job):
        vocoder, system, family, r = job
        name = f"{vocoder}-{hashlib.sha256(r['path'].encode()).hexdigest()[:12]}"
        # The genuine clip's speaker, language and channel as this build has them.
        row = dict(label="spoof", system=system, family=family, speaker=r["speaker"],
                   language=r["language"], channel=r["channel"], style=r.get("style", "read"))
        rows = corpus.recalled(source, f"{name}.wav", row, args.out, name, origin=r)
        if rows is not None:
            return rows
        import numpy as np
        import soundfile as sf
        x, sr = sf.read(args.out / r["path"], dtype="float64")
        if vocoder == "world":
            y = world(x, sr)
        elif vocoder == "lpc":
            y = lpc_vocoder(x, sr)
        else:
            y = griffin_lim(x, seed=len(x))
        y = np.nan_to_num(y[: len(x)])
        raw = scratch / f"{source.id}-{name}.wav"
        sf.write(raw, (y / max(1e-6, np.abs(y).max()) * 0.5).astype(np.float32), sr)
        data = raw.read_bytes()
        raw.unlink(missing_ok=True)
        return corpus.process(source, f"{name}.wav", data, row, args.out, scratch, args.seed,
                              stem=name, origin=r)

    def with_origin_facts(job):
        # A copy keeps its original's band: an 8 kHz call resynthesised is still an 8 kHz call.
        origin = job[3]
        return [dict(row, orig_rate=origin["orig_rate"], orig_codec=origin["orig_codec"])
                for row in one(job)]

    with ThreadPoolExecutor(args.jobs) as pool:
        rows = [r for got in pool.map(with_origin_facts, jobs) for r in got]
    return rows, len(jobs), 0
