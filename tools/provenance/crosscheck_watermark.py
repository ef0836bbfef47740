"""Cross-checks aqiqat's DWT-DCT watermark against the `invisible-watermark` Python package
(the encoder Stable Diffusion's reference scripts call), both ways, on synthetic pictures.

Not part of CI (it needs PyPI packages). Run:

    python3 -m venv /tmp/wm && /tmp/wm/bin/pip install opencv-python-headless PyWavelets numpy
    /tmp/wm/bin/pip install --no-deps invisible-watermark   # its torch/onnx extras are unused
    cargo build -p aqiqat-provenance --example watermark_raw
    /tmp/wm/bin/python tools/provenance/crosscheck_watermark.py target/debug/examples/watermark_raw
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from imwatermark import WatermarkDecoder, WatermarkEncoder

MESSAGE = b"StableDiffusionV1"


def picture(rng, h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    r = 60 + 120 * xx / w + 40 * (((xx // 37) + (yy // 23)) % 2) + rng.normal(0, 7, (h, w))
    g = 90 + 80 * yy / h + rng.normal(0, 7, (h, w))
    b = 140 + 50 * np.sin((xx + yy) / 40) + rng.normal(0, 7, (h, w))
    return np.clip(np.stack([r, g, b], -1).round(), 0, 255).astype(np.uint8)


def agreement(got: bytes) -> float:
    want = np.unpackbits(np.frombuffer(MESSAGE, dtype=np.uint8))
    have = np.unpackbits(np.frombuffer(got, dtype=np.uint8))
    return float((want == have).mean())


def main(example: str) -> None:
    rng = np.random.default_rng(5)
    tmp = Path(tempfile.mkdtemp())
    run = lambda *a: subprocess.check_output([example, *map(str, a)])
    for h, w in [(512, 512), (360, 640), (250, 333)]:
        rgb = picture(rng, h, w)
        encoder = WatermarkEncoder()
        encoder.set_watermark("bytes", MESSAGE)
        theirs = np.ascontiguousarray(encoder.encode(rgb[:, :, ::-1].copy(), "dwtDct")[:, :, ::-1])
        theirs.tofile(tmp / "theirs.rgb")
        rgb.tofile(tmp / "plain.rgb")
        ours_reads_theirs = json.loads(run("detect", w, h, tmp / "theirs.rgb"))
        ours_reads_plain = json.loads(run("detect", w, h, tmp / "plain.rgb"))
        run("embed", w, h, tmp / "plain.rgb", tmp / "ours.rgb")
        ours = np.fromfile(tmp / "ours.rgb", dtype=np.uint8).reshape(h, w, 3)
        decoder = WatermarkDecoder("bytes", len(MESSAGE) * 8)
        theirs_reads_ours = agreement(decoder.decode(ours[:, :, ::-1].copy(), "dwtDct"))
        theirs_reads_theirs = agreement(decoder.decode(theirs[:, :, ::-1].copy(), "dwtDct"))
        print(
            f"{w}x{h}: aqiqat reads their mark {ours_reads_theirs['bit_agreement']:.3f} "
            f"(detected: {ours_reads_theirs['detected']}), an unmarked picture "
            f"{ours_reads_plain['bit_agreement']:.3f}; they read our mark {theirs_reads_ours:.3f}, "
            f"their own {theirs_reads_theirs:.3f}"
        )


if __name__ == "__main__":
    main(sys.argv[1])
