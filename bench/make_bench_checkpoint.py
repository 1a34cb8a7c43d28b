#!/usr/bin/env python3
"""Writes a larger random Mixtral-format checkpoint for `moeflow bench` (not committed: ~1.7 GB).

Default shape: 8 layers, hidden 1024, 16 heads / 4 KV heads, 16 experts of intermediate 2048,
top-2, vocab 32000, bf16 -- big enough that decode reads weights from DRAM, not cache.
Values are random (N(0, 0.02)); the benchmark measures speed, not quality.

    python3 bench/make_bench_checkpoint.py [--out bench/checkpoints/mixtral-bench] [--dtype bf16]

Mixtral-sized layers for a GPU (decode there is bandwidth-bound only when a layer's weights
dwarf its kernel launches), 2 layers, ~6 GB, written in seconds with --fill tile:

    python3 bench/make_bench_checkpoint.py --out /tmp/mixtral-2l --layers 2 --hidden 4096 \
        --heads 32 --kv-heads 8 --experts 8 --intermediate 14336 --fill tile

Needs only numpy (`python3 -m pip install numpy`).
"""
import argparse
import json
import os
import struct

import numpy as np


def to_bf16_bytes(a: np.ndarray) -> bytes:
    bits = a.astype(np.float32).view(np.uint32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16  # round to nearest even
    return rounded.astype(np.uint16).tobytes()


def tiled(block: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n values of `block` from a random offset, wrapping around (np.resize repeats it)."""
    start = int(rng.integers(len(block)))
    return np.resize(np.roll(block, -start), n)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench/checkpoints/mixtral-bench")
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--experts", type=int, default=16)
    p.add_argument("--top-k", type=int, default=2)
    p.add_argument("--intermediate", type=int, default=2048)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--dtype", choices=["bf16", "f32"], default="bf16")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fill", choices=["random", "tile"], default="random",
                   help="random: every value drawn; tile: each tensor cut from one random block of "
                        "2^24 values at a random offset (fast; enough for speed, which reads the "
                        "bytes whatever they are)")
    a = p.parse_args()

    rng = np.random.default_rng(a.seed)
    d, hd = a.hidden, a.hidden // a.heads
    shapes = {"model.embed_tokens.weight": (a.vocab, d), "model.norm.weight": (d,), "lm_head.weight": (a.vocab, d)}
    for l in range(a.layers):
        pre = f"model.layers.{l}."
        shapes[pre + "input_layernorm.weight"] = (d,)
        shapes[pre + "post_attention_layernorm.weight"] = (d,)
        shapes[pre + "self_attn.q_proj.weight"] = (a.heads * hd, d)
        shapes[pre + "self_attn.k_proj.weight"] = (a.kv_heads * hd, d)
        shapes[pre + "self_attn.v_proj.weight"] = (a.kv_heads * hd, d)
        shapes[pre + "self_attn.o_proj.weight"] = (d, a.heads * hd)
        shapes[pre + "block_sparse_moe.gate.weight"] = (a.experts, d)
        for e in range(a.experts):
            ep = pre + f"block_sparse_moe.experts.{e}."
            shapes[ep + "w1.weight"] = (a.intermediate, d)
            shapes[ep + "w3.weight"] = (a.intermediate, d)
            shapes[ep + "w2.weight"] = (d, a.intermediate)

    elem = 2 if a.dtype == "bf16" else 4
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in shapes.items():
        n = int(np.prod(shape)) * elem
        header[name] = {"dtype": "BF16" if elem == 2 else "F32", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    header_bytes = json.dumps(header).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)

    block = None
    if a.fill == "tile":  # one random block, converted once; tensors are slices of it
        block = rng.standard_normal(1 << 24, dtype=np.float32) * 0.02
        if elem == 2:
            block = np.frombuffer(to_bf16_bytes(block), dtype=np.uint16)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for i, (name, shape) in enumerate(shapes.items()):
            if i % 50 == 0:
                print(f"\rwriting {i + 1}/{len(shapes)} tensors", end="", flush=True)
            if name.endswith("norm.weight"):
                values = np.ones(shape, np.float32)
            elif a.fill == "tile":  # already in the file's type (bf16 bits or fp32)
                f.write(tiled(block, int(np.prod(shape)), rng).tobytes())
                continue
            else:
                values = rng.standard_normal(shape, dtype=np.float32) * 0.02
            f.write(to_bf16_bytes(values) if elem == 2 else values.tobytes())
    print(f"\rwrote {len(shapes)} tensors, {offset / 2**30:.2f} GiB, to {a.out}")

    config = {
        "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "vocab_size": a.vocab,
        "hidden_size": d, "intermediate_size": a.intermediate, "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads, "num_key_value_heads": a.kv_heads, "head_dim": hd,
        "num_local_experts": a.experts, "num_experts_per_tok": a.top_k, "rms_norm_eps": 1e-5,
        "rope_theta": 1e6, "max_position_embeddings": 4096, "tie_word_embeddings": False,
        "hidden_act": "silu", "sliding_window": None, "bos_token_id": 1, "eos_token_id": 2,
        "torch_dtype": "bfloat16" if elem == 2 else "float32",
    }
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


if __name__ == "__main__":
    main()
