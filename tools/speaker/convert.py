#!/usr/bin/env python3
"""Converts Resemblyzer's GE2E speaker encoder from its pinned PyPI package into the
safetensors file aqiqat's Rust port reads, and writes the reference outputs its test holds the
port to.

    python3 tools/speaker/convert.py [--cache DIR] [--smoke DIR]

Source: `resemblyzer==0.1.4` (Apache-2.0), fetched with `pip download --no-deps` into DIR
unless already there and checked against the SHA-256 pinned below; its `pretrained.pt` holds
the weights (`model_state`: the LSTM's and the linear layer's; the GE2E loss's similarity
scale is training-only and left out).

Writes
- `crates/speaker/weights/ge2e-resemblyzer.safetensors` (f32, PyTorch's names);
- `crates/speaker/tests/data/ge2e-reference.safetensors`: for five genuine clips of the CI
  smoke set (`../shared/data/voice/smoke`, 16 kHz, five speakers; the audio stays there), the
  reference implementation's output: the package's own `VoiceEncoder.embed_utterance` (PyTorch,
  librosa's mel) on the clip after its `normalize_volume(wav, -30, increase_only=True)`: the
  utterance voiceprint, every partial's, and the mel frames of the padded clip. Resemblyzer's
  `trim_long_silences` (webrtcvad) is not part of the comparison: aqiqat trims with its own
  speech detector before embedding.

The reference needs, from PyPI: `resemblyzer==0.1.4`'s dependencies `torch`, `librosa==0.10.2.post1`
(its padding mode is part of the arithmetic), `scipy`, `webrtcvad-wheels`; and `numpy`,
`safetensors`, `soundfile`.
"""

import argparse
import os
import sys
import tempfile
import zipfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import pinned  # noqa: E402

WHEEL = "Resemblyzer-0.1.4-py3-none-any.whl"
WHEEL_SHA256 = "8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f"
REFERENCE_CLIPS = [
    "bonafide_103-1240-0000.flac",
    "bonafide_1235-135883-0000.flac",
    "bonafide_1502-122615-0000.flac",
    "bonafide_2002-139469-0000.flac",
    "bonafide_3168-173564-0000.flac",
]
ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "aqiqat-wheels"))
    ap.add_argument("--smoke", default=os.path.join(ROOT, "..", "shared", "data", "voice", "smoke"))
    args = ap.parse_args()

    wheel = pinned.fetch(args.cache, "resemblyzer==0.1.4", WHEEL, WHEEL_SHA256)

    import librosa
    import soundfile
    import torch
    from safetensors.numpy import save_file

    if librosa.__version__ != "0.10.2.post1":
        sys.exit(f"librosa {librosa.__version__}: the reference is pinned to 0.10.2.post1")

    with tempfile.TemporaryDirectory() as unpacked:
        with zipfile.ZipFile(wheel) as z:
            z.extractall(unpacked)
        sys.path.insert(0, unpacked)
        from resemblyzer import VoiceEncoder, audio  # the pinned package itself

        state = torch.load(os.path.join(unpacked, "resemblyzer", "pretrained.pt"), map_location="cpu")["model_state"]
        weights = {
            k: np.ascontiguousarray(v.numpy().astype(np.float32))
            for k, v in state.items()
            if k.startswith(("lstm.", "linear."))
        }
        out = os.path.join(ROOT, "crates", "speaker", "weights", "ge2e-resemblyzer.safetensors")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        save_file(weights, out, metadata={"source": "resemblyzer==0.1.4 pretrained.pt (Apache-2.0)"})
        print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB)")

        encoder = VoiceEncoder(device="cpu", verbose=False)
        fixture = {}
        for i, clip in enumerate(REFERENCE_CLIPS):
            wav, rate = soundfile.read(os.path.join(args.smoke, clip), dtype="float32")
            if rate != 16_000:
                sys.exit(f"{clip} is at {rate} Hz; the reference clips must be 16 kHz")
            wav = audio.normalize_volume(wav, -30, increase_only=True).astype(np.float32)
            embed, partials, slices = encoder.embed_utterance(wav, return_partials=True)
            padded = np.pad(wav, (0, max(0, slices[-1].stop - len(wav))), "constant")
            fixture[f"{i}.embed"] = embed.astype(np.float32)
            fixture[f"{i}.partials"] = partials.astype(np.float32)
            fixture[f"{i}.mel"] = audio.wav_to_mel_spectrogram(padded).astype(np.float32)
    # safetensors writes an array's memory as it lies: a transposed view must be made
    # contiguous first, or the file holds its transpose.
    fixture = {k: np.ascontiguousarray(v) for k, v in fixture.items()}
    path = os.path.join(ROOT, "crates", "speaker", "tests", "data", "ge2e-reference.safetensors")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file(fixture, path, metadata={"clips": ",".join(REFERENCE_CLIPS)})
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
