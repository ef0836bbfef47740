"""Channel variants for both labels alike: what a call or a messenger does to a voice.

Every training and development clip, genuine or synthetic, gets `count` variants, each drawn
(seeded by the clip) from the same list, so that no channel says anything about the label:

| channel      | what is done                                                                 |
|--------------|------------------------------------------------------------------------------|
| phone        | to 8 kHz through G.711 µ-law or A-law, AMR-NB (4.75-12.2 kbit/s), GSM 06.10;  |
|              | or AMR-WB (6.6-23.85 kbit/s) at 16 kHz (AMR through the 3GPP-derived          |
|              | opencore / VisualOn libraries via ctypes: Debian's ffmpeg cannot encode AMR)  |
| messenger    | Opus 8-24 kbit/s (VoIP mode) with 0-10 % of 20 ms packets lost; AAC 24-48k    |
| compressed   | MP3 24-64 kbit/s, band-limited to 3.4-7 kHz first in half the cases           |
| noisy        | white, pink or brown noise, or babble of 3-5 other genuine clips, 0-20 dB SNR |
| reverberant  | a simulated room (pyroomacoustics: 3-12 m sides, RT60 0.2-1.0 s)              |
| enhanced     | noise at 5-15 dB SNR, then spectral-subtraction noise suppression             |
Gain and clipping are left to the trainer, which draws them afresh every epoch.

Each variant is decoded back to 16 kHz mono FLAC (the codec's damage stays) and becomes a row
with the parent's label, system, page, speaker, split and fold, its `channel`, the exact
`augment` recipe and the `parent` path.
"""

import hashlib
import subprocess
from pathlib import Path

import corpus

RATE = 16000  # corpus.RATE (read at import time, when corpus may be half loaded)
KINDS = ("phone", "messenger", "compressed", "noisy", "reverberant", "enhanced")


def rng_for(key, seed):
    import numpy as np
    return np.random.default_rng(int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:16], 16))


def ffmpeg_round_trip(x, encode_args, ext, scratch, name, decode_rate=RATE):
    """Encodes 16 kHz float audio with ffmpeg and decodes it back to 16 kHz."""
    import numpy as np
    import soundfile as sf
    src = scratch / f"{name}-in.wav"
    coded = scratch / f"{name}-coded.{ext}"
    sf.write(src, x.astype(np.float32), RATE, subtype="PCM_16")
    try:
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *encode_args,
                        str(coded)], check=True, capture_output=True)
        out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(coded), "-ac", "1",
                              "-ar", str(decode_rate), "-f", "f32le", "-"], check=True,
                             capture_output=True).stdout
    finally:
        src.unlink(missing_ok=True)
        coded.unlink(missing_ok=True)
    return np.frombuffer(out, dtype=np.float32).astype(np.float64)


def _amr(x, rate, frame, mode, lib_enc, lib_dec, api):
    """AMR through the reference libraries (Debian's ffmpeg has no AMR encoder): 20 ms frames
    at `rate`, `mode` 0-7 (NB) or 0-8 (WB), decoded back."""
    import ctypes
    import numpy as np
    from scipy.signal import resample_poly
    enc_lib, dec_lib = ctypes.CDLL(lib_enc), ctypes.CDLL(lib_dec)
    init_e, encode, exit_e, init_d, decode, exit_d = api
    for f in (getattr(enc_lib, init_e), getattr(dec_lib, init_d)):
        f.restype = ctypes.c_void_p
    y = resample_poly(x, rate, RATE) if rate != RATE else x
    pcm = np.clip(y * 32767, -32768, 32767).astype(np.int16)
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % frame, np.int16)])
    enc = ctypes.c_void_p(getattr(enc_lib, init_e)(0))
    dec = ctypes.c_void_p(getattr(dec_lib, init_d)())
    out = np.zeros(len(pcm), np.int16)
    packet = (ctypes.c_ubyte * 64)()
    speech = np.zeros(frame, np.int16)
    try:
        for k in range(0, len(pcm), frame):
            speech[:] = pcm[k:k + frame]
            getattr(enc_lib, encode)(enc, mode, speech.ctypes.data_as(ctypes.c_void_p), packet, 0)
            getattr(dec_lib, decode)(dec, packet, out[k:k + frame].ctypes.data_as(ctypes.c_void_p), 0)
    finally:
        getattr(enc_lib, exit_e)(enc)
        getattr(dec_lib, exit_d)(dec)
    z = out[: len(y)].astype(np.float64) / 32768
    return resample_poly(z, RATE, rate) if rate != RATE else z


AMR_NB = ("libopencore-amrnb.so.0", "libopencore-amrnb.so.0",
          ("Encoder_Interface_init", "Encoder_Interface_Encode", "Encoder_Interface_exit",
           "Decoder_Interface_init", "Decoder_Interface_Decode", "Decoder_Interface_exit"))
AMR_WB = ("libvo-amrwbenc.so.0", "libopencore-amrwb.so.0",
          ("E_IF_init", "E_IF_encode", "E_IF_exit", "D_IF_init", "D_IF_decode", "D_IF_exit"))
AMR_NB_KBPS = ("4.75", "5.15", "5.9", "6.7", "7.4", "7.95", "10.2", "12.2")
AMR_WB_KBPS = ("6.6", "8.85", "12.65", "14.25", "15.85", "18.25", "19.85", "23.05", "23.85")


def phone(x, rng, scratch, name):
    choice = rng.integers(5)
    if choice == 0:
        return ffmpeg_round_trip(x, ["-ar", "8000", "-c:a", "pcm_mulaw"], "wav", scratch, name), "g711-mulaw"
    if choice == 1:
        return ffmpeg_round_trip(x, ["-ar", "8000", "-c:a", "pcm_alaw"], "wav", scratch, name), "g711-alaw"
    if choice == 2:
        mode = int(rng.integers(len(AMR_NB_KBPS)))
        return _amr(x, 8000, 160, mode, *AMR_NB), f"amr-nb-{AMR_NB_KBPS[mode]}k"
    if choice == 3:
        return ffmpeg_round_trip(x, ["-ar", "8000", "-c:a", "libgsm"], "gsm", scratch, name), "gsm-06.10"
    mode = int(rng.integers(len(AMR_WB_KBPS)))
    return _amr(x, 16000, 320, mode, *AMR_WB), f"amr-wb-{AMR_WB_KBPS[mode]}k"


def messenger(x, rng, scratch, name):
    import numpy as np
    if rng.random() < 0.7:
        kbps = int(rng.integers(8, 25))
        y = ffmpeg_round_trip(x, ["-c:a", "libopus", "-application", "voip", "-b:a", f"{kbps}k"],
                              "ogg", scratch, name)
        loss = float(rng.choice([0.0, 0.02, 0.05, 0.1]))
        if loss:
            # A lost packet: its 20 ms are gone, with a short fade so no click is taught.
            frame = RATE // 50
            fade = np.hanning(2 * 32)[32:]
            for k in np.flatnonzero(rng.random(len(y) // frame) < loss):
                a = k * frame
                y[a:a + frame] = 0.0
                if a >= 32:
                    y[a - 32:a] *= fade
        return y, f"opus-{kbps}k-loss{int(loss * 100)}"
    kbps = int(rng.choice([24, 32, 48]))
    return ffmpeg_round_trip(x, ["-c:a", "aac", "-b:a", f"{kbps}k"], "m4a", scratch, name), f"aac-{kbps}k"


def band_limit(x, cutoff):
    from scipy.signal import butter, sosfiltfilt
    sos = butter(8, min(cutoff, RATE / 2 - 100), btype="lowpass", fs=RATE, output="sos")
    return sosfiltfilt(sos, x)


def compressed(x, rng, scratch, name):
    recipe = ""
    if rng.random() < 0.5:
        cutoff = float(rng.uniform(3400, 7000))
        x = band_limit(x, cutoff)
        recipe = f"lowpass{int(cutoff)}-"
    kbps = int(rng.choice([24, 32, 48, 64]))
    return ffmpeg_round_trip(x, ["-c:a", "libmp3lame", "-b:a", f"{kbps}k"], "mp3", scratch, name), f"{recipe}mp3-{kbps}k"


def coloured_noise(n, colour, rng):
    import numpy as np
    white = rng.standard_normal(n)
    if colour == "white":
        return white
    spectrum = np.fft.rfft(white)
    f = np.maximum(np.arange(len(spectrum)), 1)
    spectrum /= np.sqrt(f) if colour == "pink" else f
    return np.fft.irfft(spectrum, n)


def mix(x, noise, snr_db):
    import numpy as np
    px = (x ** 2).mean() + 1e-12
    pn = (noise ** 2).mean() + 1e-12
    return x + noise * np.sqrt(px / pn / 10 ** (snr_db / 10))


def noisy(x, rng, babble_pool, load):
    import numpy as np
    snr = float(rng.uniform(0, 20))
    if babble_pool and rng.random() < 0.4:
        talkers = int(rng.integers(3, 6))
        noise = np.zeros(len(x))
        for path in rng.choice(babble_pool, size=talkers, replace=False):
            other = load(path)
            other = np.resize(other, len(x)) if len(other) else np.zeros(len(x))
            noise += other / (np.sqrt((other ** 2).mean()) + 1e-9)
        return mix(x, noise, snr), f"babble{talkers}-snr{snr:.0f}"
    colour = str(rng.choice(["white", "pink", "brown"]))
    return mix(x, coloured_noise(len(x), colour, rng), snr), f"{colour}-snr{snr:.0f}"


def reverberant(x, rng):
    import numpy as np
    import pyroomacoustics as pra
    dims = rng.uniform([3, 3, 2.4], [12, 10, 4])
    rt60 = float(rng.uniform(0.2, 1.0))
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=RATE, materials=pra.Material(absorption), max_order=min(max_order, 20))
    source = rng.uniform([0.5, 0.5, 1.2], dims - [0.5, 0.5, 0.6])
    mic = rng.uniform([0.5, 0.5, 0.8], dims - [0.5, 0.5, 0.6])
    room.add_source(source, signal=x)
    room.add_microphone(mic)
    room.simulate()
    y = room.mic_array.signals[0][: len(x)]
    return np.asarray(y, dtype=np.float64), f"room{dims[0]:.0f}x{dims[1]:.0f}-rt{rt60:.2f}"


def enhanced(x, rng):
    """A classical noise suppressor (spectral subtraction with a noise floor from the quietest
    frames): the musical-noise artefacts phones' and call apps' suppressors leave on real calls."""
    import numpy as np
    snr = float(rng.uniform(5, 15))
    colour = str(rng.choice(["white", "pink"]))
    noisy_x = mix(x, coloured_noise(len(x), colour, rng), snr)
    n_fft, hop = 512, 128
    window = np.hanning(n_fft)
    frames = np.lib.stride_tricks.sliding_window_view(noisy_x, n_fft)[::hop] * window
    spec = np.fft.rfft(frames, axis=1)
    power = np.abs(spec) ** 2
    noise = np.percentile(power, 10, axis=0)
    over = float(rng.uniform(1.0, 2.5))
    gain = np.sqrt(np.maximum(1 - over * noise / (power + 1e-12), 0.05))
    frames = np.fft.irfft(spec * gain, n=n_fft, axis=1) * window
    out, norm = np.zeros(len(x)), np.zeros(len(x))
    for k, frame in enumerate(frames):
        out[k * hop:k * hop + n_fft] += frame
        norm[k * hop:k * hop + n_fft] += window ** 2
    return out / np.maximum(norm, 0.1), f"{colour}-snr{snr:.0f}-subtract{over:.1f}"


# What a variant's own audio decided; everything else in its row is its parent's.
VARIANT_FIELDS = ("path", "channel", "augment", "parent", "loudness")


def pool_digest(babble_pool):
    return hashlib.sha256("\n".join(babble_pool).encode()).hexdigest()


def remembered(record, row, drawn_from):
    """The variants an earlier build made of one clip, with its parent's row as it is now
    (split, fold, speaker...: a new page moves folds), or None where a babble mix was drawn
    from another pool of genuine clips than the one `drawn_from` digests, and so must be made
    again (the draw, and every draw after it from the clip's generator, depends on the pool)."""
    import json
    if not record.exists():
        return None
    cached = json.loads(record.read_text())
    if isinstance(cached, dict):
        rows, pool = cached["rows"], cached["babble_pool"]
    else:
        rows, pool = cached, None  # written before records named their babble pool
    if pool != drawn_from and any(v["augment"].startswith("babble") for v in rows):
        return None
    return [dict(row, **{k: v[k] for k in VARIANT_FIELDS}) for v in rows]


def variants(row, count, out_root, scratch, seed, babble_pool, drawn_from):
    """The augmented rows of one clip (its `count` channels drawn without repeats);
    `drawn_from`: `pool_digest(babble_pool)`, computed once by the caller."""
    import json
    stem = Path(row["path"]).stem
    record = out_root / "aug" / row["page"] / f"{stem}.json"
    rows = remembered(record, row, drawn_from)
    if rows is not None:
        return rows
    import numpy as np
    import soundfile as sf
    x, _ = sf.read(out_root / row["path"], dtype="float64")
    rng = rng_for(f"aug:{row['path']}", seed)
    kinds = rng.choice(KINDS, size=count, replace=False)

    def load(path):
        return sf.read(out_root / path, dtype="float64")[0]

    rows = []
    for kind in kinds:
        name = f"{row['page']}-{stem}-{kind}"
        if kind == "phone":
            y, recipe = phone(x, rng, scratch, name)
        elif kind == "messenger":
            y, recipe = messenger(x, rng, scratch, name)
        elif kind == "compressed":
            y, recipe = compressed(x, rng, scratch, name)
        elif kind == "noisy":
            pool = [p for p in babble_pool if p != row["path"]]
            y, recipe = noisy(x, rng, pool, load)
        elif kind == "reverberant":
            y, recipe = reverberant(x, rng)
        else:
            y, recipe = enhanced(x, rng)
        y = np.nan_to_num(y)[: len(x)]
        y, loudness = corpus.normalise(y, f"{row['path']}:{kind}", seed)
        path = out_root / "aug" / row["page"] / f"{stem}-{kind}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        corpus.write_flac(path, y)
        rows.append(dict(row, path=str(path.relative_to(out_root)), channel=str(kind),
                         augment=recipe, parent=row["path"], loudness=round(loudness, 1)))
    record.parent.mkdir(parents=True, exist_ok=True)
    corpus.write_text(record, json.dumps(dict(babble_pool=drawn_from, rows=rows)))
    return rows


def augment(rows, count, out_root, scratch, seed, jobs):
    from concurrent.futures import ThreadPoolExecutor
    todo = [r for r in rows if r["split"] in ("train", "dev")]
    # Babble is built from genuine training speech only, whatever the clip's own split.
    pool = sorted(r["path"] for r in rows if r["label"] == "bonafide" and r["split"] == "train")
    pool = [p for p in pool if corpus.unit(f"babble:{p}", seed) < 0.2]
    drawn_from = pool_digest(pool)
    with ThreadPoolExecutor(jobs) as ex:
        made = ex.map(lambda r: variants(r, count, out_root, scratch, seed, pool, drawn_from), todo)
        return [v for got in made for v in got]
