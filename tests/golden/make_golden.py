#!/usr/bin/env python3
"""Generate the golden MoE test fixtures used by the C++ engine's tests.

What it makes
-------------
One folder per model family under ``tests/golden/``, each holding a tiny,
randomly initialised checkpoint in the published Hugging Face hub layout plus
reference outputs computed with a trusted implementation:

  mixtral/    MixtralForCausalLM   F32   single model.safetensors, untied lm_head
  qwen2_moe/  Qwen2MoeForCausalLM  F32   sharded (index.json + 3 shards), dense
                                         layer 1 (mlp_only_layers), shared expert
                                         with sigmoid gate, qkv bias,
                                         norm_topk_prob=true
  olmoe/      OlmoeForCausalLM     BF16  q/k norm, tied embeddings (no lm_head
                                         tensor), norm_topk_prob=false
  deepseek/   DeepseekForCausalLM  F16   DeepSeek-MoE V1 (model_type "deepseek"):
                                         dense layer 0, 2 shared experts (one
                                         un-gated SwiGLU), norm_topk_prob=false

Every folder holds the checkpoint (config.json + *.safetensors [+ index]) and
  reference.safetensors  float32 ``prefill.{s}`` [len_s, vocab] (logits at
                         every prompt position) and ``decode.{s}`` [6, vocab]
                         (logits of the 6 KV-cached greedy decode steps);
  reference.json         prompts, greedy tokens, logits scale, margins, versions.

Reference implementation
------------------------
* mixtral / qwen2_moe / olmoe: Hugging Face transformers itself.  Each model is
  saved with ``save_pretrained`` (which writes the per-expert hub tensor names)
  and reloaded with ``from_pretrained``; the reference logits are computed by
  the *reloaded* model, so the fixture is exactly what transformers reads.
* deepseek: DeepSeek-MoE V1 is not a transformers core class, so this script
  carries a small torch re-implementation (``Deepseek*`` classes below) that
  follows the math of the published ``modeling_deepseek.py`` of
  deepseek-ai/deepseek-moe-16b-base.  It is cross-checked against two core
  transformers classes (see ``crosscheck_deepseek``):
    - Qwen2-MoE on the very same fixture weights (dense layer via
      mlp_only_layers, shared experts via a constant 0.5 sigmoid gate with the
      shared down_proj doubled, norm_topk_prob=false, no qkv bias);
    - Mixtral on a variant without shared experts / dense layers and with
      norm_topk_prob=true.

All reference logits are computed in float32, batch 1, no padding, eval mode,
eager attention, with the KV cache for decoding.  For the BF16 (olmoe) and F16
(deepseek) fixtures the weights are first rounded to the storage dtype and the
model is then run in float32 on the rounded weights (the engine computes with
low-precision weights and fp32 accumulation).

Robustness
----------
For every greedy choice the top-1/top-2 logit gap must be >= 1e-3 * logits_scale
and for every routing decision (per MoE layer, per token, prefill and decode)
the gap between the k-th and (k+1)-th router probability must be >= 1e-4.  If
a seed violates this, the next seed (base + 1, base + 2, ...) is tried, so the
output is deterministic.  The minimum margins found are stored in
reference.json.  Cached decoding is also checked against a full re-forward of
the whole sequence.

Rerun
-----
    /opt/golden-venv/bin/python tests/golden/make_golden.py

(torch CPU only, single thread; takes well under a minute).  A rerun with the
same torch / transformers versions reproduces the same files.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn
from safetensors import safe_open
from safetensors.torch import save_file

import transformers
from transformers import (
    MixtralConfig,
    MixtralForCausalLM,
    OlmoeConfig,
    OlmoeForCausalLM,
    Qwen2MoeConfig,
    Qwen2MoeForCausalLM,
)

GOLDEN_DIR = Path(__file__).resolve().parent

# --------------------------------------------------------------------------
# Shared settings
# --------------------------------------------------------------------------
VOCAB = 320
HIDDEN = 64
LAYERS = 3
HEADS = 4
KV_HEADS = 2  # GQA: 2 query heads per KV head
MAX_POS = 512
ROPE_THETA = 10000.0
INIT_STD = 0.15  # larger than the usual 0.02 so logits / routing are well spread

PROMPT_LENGTHS = (5, 11, 8)
PROMPT_SEED = 20240601
DECODE_STEPS = 6

GREEDY_REL_MARGIN = 1e-3  # top1 - top2 logit >= this * logits_scale
ROUTING_MARGIN = 1e-4  # k-th minus (k+1)-th router probability
MAX_SEED_ATTEMPTS = 200

# Common HF config keys.  Token ids are nulled so that no greedy token can be
# mistaken for EOS by a test, and no embedding row is zeroed as padding.
COMMON_HF = dict(
    vocab_size=VOCAB,
    hidden_size=HIDDEN,
    num_hidden_layers=LAYERS,
    num_attention_heads=HEADS,
    num_key_value_heads=KV_HEADS,
    max_position_embeddings=MAX_POS,
    rope_parameters={"rope_type": "default", "rope_theta": ROPE_THETA},
    initializer_range=INIT_STD,
    bos_token_id=None,
    eos_token_id=None,
    pad_token_id=None,
)

EAGER = dict(attn_implementation="eager", experts_implementation="eager")


# --------------------------------------------------------------------------
# Generic helpers
# --------------------------------------------------------------------------
def make_prompts() -> list[list[int]]:
    """Three random prompts (fixed seed), shared by all families."""
    g = torch.Generator().manual_seed(PROMPT_SEED)
    return [torch.randint(0, VOCAB, (n,), generator=g).tolist() for n in PROMPT_LENGTHS]


@torch.no_grad()
def randomize_(model: nn.Module, seed: int, std: float = INIT_STD) -> None:
    """Deterministically overwrite every parameter of ``model``.

    Independent of the library's own init order: parameters are visited in
    sorted-name order with a private generator.  Norm weights become 1 + noise
    (so that loading them wrongly is visible), biases small noise, and every
    matrix / fused expert tensor N(0, std).  Tied parameters appear once.
    """
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
        if p.dim() == 1 and name.endswith("norm.weight"):
            value = 1.0 + 0.1 * noise
        elif name.endswith(".bias"):
            value = 0.1 * noise
        else:
            value = std * noise
        p.copy_(value.to(p.dtype))


@torch.no_grad()
def round_params_(model: nn.Module, dtype: torch.dtype) -> None:
    """Round float32 parameters to ``dtype`` and back (storage precision)."""
    for p in model.parameters():
        p.copy_(p.to(dtype).to(torch.float32))


def topk_gap(x: torch.Tensor, k: int) -> torch.Tensor:
    """Per-row gap between the k-th and (k+1)-th largest entries (k 1-based)."""
    v = torch.topk(x, k + 1, dim=-1).values
    return v[..., k - 1] - v[..., k]


@torch.no_grad()
def generate(step, prompts, top_k: int) -> dict:
    """Prefill + greedy KV-cached decode for each prompt, batch 1.

    ``step(ids, cache) -> (logits [T, V] f32, router_probs list[[T, E]], cache)``
    where ``cache`` is None on the first (prefill) call.
    """
    out = {"prefill": [], "decode": [], "greedy": [], "route_gaps": [], "greedy_gaps": []}
    for ids in prompts:
        logits, probs, cache = step(list(ids), None)
        out["prefill"].append(logits.clone())
        rows = [logits[-1]]
        gaps = [topk_gap(p, top_k) for p in probs]
        toks = [int(logits[-1].argmax())]
        dec = []
        for _ in range(DECODE_STEPS):
            logits, probs, cache = step([toks[-1]], cache)
            dec.append(logits[-1].clone())
            rows.append(logits[-1])
            gaps += [topk_gap(p, top_k) for p in probs]
            toks.append(int(logits[-1].argmax()))
        out["decode"].append(torch.stack(dec))
        out["greedy"].append(toks)
        out["greedy_gaps"].append(topk_gap(torch.stack(rows), 1))
        out["route_gaps"].append(torch.cat([g.flatten() for g in gaps]))
    all_logits = torch.cat(out["prefill"] + out["decode"])
    out["logits_scale"] = float(all_logits.abs().max())
    out["min_greedy_margin"] = float(torch.cat(out["greedy_gaps"]).min())
    out["min_routing_margin"] = float(torch.cat(out["route_gaps"]).min())
    out["num_routing_decisions"] = int(sum(g.numel() for g in out["route_gaps"]))
    return out


def margins_ok(res: dict) -> bool:
    return (
        res["min_greedy_margin"] >= GREEDY_REL_MARGIN * res["logits_scale"]
        and res["min_routing_margin"] >= ROUTING_MARGIN
    )


@torch.no_grad()
def check_cache_consistency(step, prompts, res, name: str) -> None:
    """Cached decode logits must equal a full (uncached) forward of the sequence."""
    for s, ids in enumerate(prompts):
        full, _, _ = step(list(ids) + res["greedy"][s][:DECODE_STEPS], None)
        n = len(ids)
        ref = torch.cat([res["prefill"][s], res["decode"][s]])
        diff = float((full - ref).abs().max())
        assert diff <= 1e-4 * res["logits_scale"], f"{name}: cache vs full forward diff {diff}"
        assert full.shape[0] == n + DECODE_STEPS


def assert_same_results(a: dict, b: dict, what: str, rel_tol: float) -> None:
    assert a["greedy"] == b["greedy"], f"{what}: greedy tokens differ"
    tol = rel_tol * a["logits_scale"]
    for key in ("prefill", "decode"):
        for x, y in zip(a[key], b[key]):
            diff = float((x - y).abs().max())
            assert diff <= tol, f"{what}: {key} logits differ by {diff} (tol {tol})"


def hf_step(model):
    """Wrap a transformers CausalLM into the ``step`` protocol of generate()."""

    def step(ids, cache):
        out = model(
            input_ids=torch.tensor([ids]),
            past_key_values=cache,
            use_cache=True,
            output_router_logits=True,
        )
        probs = [torch.softmax(r.float(), dim=-1) for r in out.router_logits]
        return out.logits[0].float(), probs, out.past_key_values

    return step


def tensor_info(folder: Path) -> dict[str, str]:
    """name -> safetensors dtype ("F32", "BF16", ...) of every tensor in the checkpoint files."""
    info = {}
    for f in sorted(folder.glob("model*.safetensors")):
        with safe_open(str(f), "pt") as fh:
            assert fh.metadata() == {"format": "pt"}, f"{f}: metadata {fh.metadata()}"
            for k in fh.keys():
                assert k not in info, f"duplicate tensor {k}"
                info[k] = str(fh.get_slice(k).get_dtype())
    return info


def write_reference(folder: Path, family: str, weights_dtype: str, seed: int, prompts, res) -> None:
    tensors = {}
    for s in range(len(prompts)):
        tensors[f"prefill.{s}"] = res["prefill"][s].to(torch.float32).contiguous()
        tensors[f"decode.{s}"] = res["decode"][s].to(torch.float32).contiguous()
        assert tensors[f"prefill.{s}"].shape == (len(prompts[s]), VOCAB)
        assert tensors[f"decode.{s}"].shape == (DECODE_STEPS, VOCAB)
    save_file(tensors, str(folder / "reference.safetensors"), metadata={"format": "pt"})
    meta = {
        "family": family,
        "weights_dtype": weights_dtype,
        "prompts": [list(map(int, p)) for p in prompts],
        "decode_steps": DECODE_STEPS,
        "greedy": res["greedy"],
        "logits_scale": res["logits_scale"],
        "min_greedy_margin": res["min_greedy_margin"],
        "min_greedy_margin_rel": res["min_greedy_margin"] / res["logits_scale"],
        "min_routing_margin": res["min_routing_margin"],
        "num_routing_decisions": res["num_routing_decisions"],
        "margin_thresholds": {"greedy_rel": GREEDY_REL_MARGIN, "routing_prob": ROUTING_MARGIN},
        "seed": seed,
        "generated_by": "tests/golden/make_golden.py",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
    }
    (folder / "reference.json").write_text(dump_json(meta))


def dump_json(obj) -> str:
    """Indented JSON with flat integer lists (prompts, greedy) kept on one line."""
    text = json.dumps(obj, indent=2)
    text = re.sub(r"\[([\d\s,\-]+)\]", lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    return text + "\n"


def fresh_dir(name: str) -> Path:
    folder = GOLDEN_DIR / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def search_seed(name: str, base_seed: int, build_and_run):
    """Try seeds base, base+1, ... until all margins pass; return the first passing one."""
    for attempt in range(MAX_SEED_ATTEMPTS):
        seed = base_seed + attempt
        model, res = build_and_run(seed)
        print(
            f"[{name}] seed {seed}: scale {res['logits_scale']:.3f} "
            f"greedy margin {res['min_greedy_margin']:.4g} routing margin {res['min_routing_margin']:.3g}"
            f" -> {'ok' if margins_ok(res) else 'retry'}"
        )
        if margins_ok(res):
            return seed, model, res
    raise RuntimeError(f"{name}: no seed with sufficient margins in {MAX_SEED_ATTEMPTS} attempts")


# --------------------------------------------------------------------------
# Expected hub tensor names (asserted against what save_pretrained writes)
# --------------------------------------------------------------------------
def attn_names(i, bias=False, qk_norm=False):
    names = [f"model.layers.{i}.self_attn.{p}_proj.weight" for p in "qkvo"]
    if bias:
        names += [f"model.layers.{i}.self_attn.{p}_proj.bias" for p in "qkv"]
    if qk_norm:
        names += [f"model.layers.{i}.self_attn.{p}_norm.weight" for p in "qk"]
    names += [f"model.layers.{i}.input_layernorm.weight", f"model.layers.{i}.post_attention_layernorm.weight"]
    return names


def swiglu_names(prefix):
    return [f"{prefix}.{p}_proj.weight" for p in ("gate", "up", "down")]


def expected_names(family: str, n_experts: int) -> set[str]:
    names = ["model.embed_tokens.weight", "model.norm.weight"]
    if family != "olmoe":
        names.append("lm_head.weight")
    for i in range(LAYERS):
        if family == "mixtral":
            names += attn_names(i)
            names.append(f"model.layers.{i}.block_sparse_moe.gate.weight")
            for e in range(n_experts):
                names += [f"model.layers.{i}.block_sparse_moe.experts.{e}.w{j}.weight" for j in (1, 2, 3)]
            continue
        names += attn_names(i, bias=family == "qwen2_moe", qk_norm=family == "olmoe")
        mlp = f"model.layers.{i}.mlp"
        dense = (family == "qwen2_moe" and i in QWEN_MLP_ONLY) or (family == "deepseek" and i < DS_FIRST_DENSE)
        if dense:
            names += swiglu_names(mlp)
            continue
        names.append(f"{mlp}.gate.weight")
        for e in range(n_experts):
            names += swiglu_names(f"{mlp}.experts.{e}")
        if family == "qwen2_moe":
            names += swiglu_names(f"{mlp}.shared_expert") + [f"{mlp}.shared_expert_gate.weight"]
        if family == "deepseek":
            names += swiglu_names(f"{mlp}.shared_experts")
    return set(names)


# --------------------------------------------------------------------------
# Transformers families
# --------------------------------------------------------------------------
MIXTRAL_CFG = dict(intermediate_size=32, num_local_experts=8, num_experts_per_tok=2, rms_norm_eps=1e-5)

QWEN_MLP_ONLY = [1]
QWEN_CFG = dict(
    intermediate_size=96,  # dense MLP of layer 1
    moe_intermediate_size=32,
    shared_expert_intermediate_size=64,
    num_experts=8,
    num_experts_per_tok=2,
    decoder_sparse_step=1,
    mlp_only_layers=QWEN_MLP_ONLY,
    norm_topk_prob=True,
    qkv_bias=True,
    rms_norm_eps=1e-6,
)
QWEN_MAX_SHARD = "300KB"  # ~1.2 MB of F32 weights -> 3 shards

OLMOE_CFG = dict(
    intermediate_size=32,
    num_experts=8,
    num_experts_per_tok=2,
    norm_topk_prob=False,
    tie_word_embeddings=True,
    rms_norm_eps=1e-5,
)


def make_hf_fixture(
    name, config_cls, model_cls, cfg_kwargs, base_seed, storage_dtype, weights_dtype, n_experts, top_k, prompts,
    max_shard_size="50GB",
):
    config = config_cls(**COMMON_HF, **cfg_kwargs)

    def build_and_run(seed):
        model = model_cls._from_config(config, dtype=torch.float32, **EAGER).eval()
        randomize_(model, seed)
        if storage_dtype != torch.float32:
            round_params_(model, storage_dtype)  # reference uses the rounded weights, in fp32
        return model, generate(hf_step(model), prompts, top_k)

    seed, model, res = search_seed(name, base_seed, build_and_run)
    check_cache_consistency(hf_step(model), prompts, res, name)

    # Save in hub layout, in the storage dtype.
    folder = fresh_dir(name)
    model.to(storage_dtype).save_pretrained(folder, max_shard_size=max_shard_size)

    # Reload exactly as a user would and recompute: this is the written reference.
    reloaded = model_cls.from_pretrained(folder, dtype=torch.float32, **EAGER).eval()
    assert all(p.dtype == torch.float32 for p in reloaded.parameters())
    res2 = generate(hf_step(reloaded), prompts, top_k)
    assert_same_results(res, res2, f"{name} reload", rel_tol=1e-6)
    assert margins_ok(res2)
    check_cache_consistency(hf_step(reloaded), prompts, res2, f"{name} reloaded")

    info = tensor_info(folder)
    assert set(info) == expected_names(name, n_experts), (
        f"{name}: unexpected tensor names:\n"
        f"  extra {sorted(set(info) - expected_names(name, n_experts))}\n"
        f"  missing {sorted(expected_names(name, n_experts) - set(info))}"
    )
    assert set(info.values()) == {weights_dtype}, f"{name}: dtypes {set(info.values())}"
    write_reference(folder, name, weights_dtype, seed, prompts, res2)
    return folder, res2


# --------------------------------------------------------------------------
# DeepSeek-MoE V1 reference (follows deepseek-ai/deepseek-moe-16b-base
# modeling_deepseek.py; inference path only, fp32)
# --------------------------------------------------------------------------
DS_FIRST_DENSE = 1
DS_CONFIG = {
    "architectures": ["DeepseekForCausalLM"],
    "model_type": "deepseek",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "aux_loss_alpha": 0.001,
    "bos_token_id": None,
    "eos_token_id": None,
    "first_k_dense_replace": DS_FIRST_DENSE,
    "hidden_act": "silu",
    "hidden_size": HIDDEN,
    "initializer_range": INIT_STD,
    "intermediate_size": 96,
    "max_position_embeddings": MAX_POS,
    "moe_intermediate_size": 32,
    "moe_layer_freq": 1,
    "n_routed_experts": 8,
    "n_shared_experts": 2,
    "norm_topk_prob": False,
    "num_attention_heads": HEADS,
    "num_experts_per_tok": 2,
    "num_hidden_layers": LAYERS,
    "num_key_value_heads": KV_HEADS,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-6,
    "rope_scaling": None,
    "rope_theta": ROPE_THETA,
    "scoring_func": "softmax",
    "seq_aux": True,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "use_cache": True,
    "vocab_size": VOCAB,
}


class DeepseekRMSNorm(nn.Module):
    def __init__(self, hidden_size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.to(torch.float32)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * x.to(dtype)


class DeepseekMLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, hidden, intermediate):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class MoEGate(nn.Module):
    """softmax over all routed experts, top-k, optional renormalisation."""

    def __init__(self, cfg):
        super().__init__()
        assert cfg.scoring_func == "softmax"
        self.top_k = cfg.num_experts_per_tok
        self.norm_topk_prob = cfg.norm_topk_prob
        self.weight = nn.Parameter(torch.empty(cfg.n_routed_experts, cfg.hidden_size))

    def forward(self, x):  # x [T, H]
        logits = F.linear(x, self.weight)
        scores = logits.float().softmax(dim=-1)
        topk_weight, topk_idx = torch.topk(scores, k=self.top_k, dim=-1, sorted=False)
        if self.top_k > 1 and self.norm_topk_prob:
            topk_weight = topk_weight / (topk_weight.sum(dim=-1, keepdim=True) + 1e-20)
        return topk_idx, topk_weight, scores


class DeepseekMoE(nn.Module):
    """Routed experts (weighted by gate scores) + un-gated shared experts."""

    def __init__(self, cfg):
        super().__init__()
        self.experts = nn.ModuleList(
            [DeepseekMLP(cfg.hidden_size, cfg.moe_intermediate_size) for _ in range(cfg.n_routed_experts)]
        )
        self.gate = MoEGate(cfg)
        if cfg.n_shared_experts is not None:
            self.shared_experts = DeepseekMLP(cfg.hidden_size, cfg.moe_intermediate_size * cfg.n_shared_experts)
        else:
            self.shared_experts = None

    def forward(self, x):  # x [T, H]
        topk_idx, topk_weight, scores = self.gate(x)
        y = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            tok, kpos = torch.where(topk_idx == e)
            if tok.numel():
                y.index_add_(0, tok, expert(x[tok]) * topk_weight[tok, kpos, None].to(x.dtype))
        if self.shared_experts is not None:
            y = y + self.shared_experts(x)
        return y, scores


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


class DeepseekAttention(nn.Module):
    """Llama attention: no bias, rotate_half RoPE on the full head, GQA."""

    def __init__(self, cfg):
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.num_kv = cfg.num_key_value_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        b = cfg.attention_bias
        self.q_proj = nn.Linear(cfg.hidden_size, self.num_heads * self.head_dim, bias=b)
        self.k_proj = nn.Linear(cfg.hidden_size, self.num_kv * self.head_dim, bias=b)
        self.v_proj = nn.Linear(cfg.hidden_size, self.num_kv * self.head_dim, bias=b)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, cfg.hidden_size, bias=b)

    def forward(self, x, cos, sin, past):  # x [T, H]; past: (k, v) [kv, P, d] or None
        T = x.shape[0]
        q = self.q_proj(x).view(T, self.num_heads, self.head_dim).transpose(0, 1)
        k = self.k_proj(x).view(T, self.num_kv, self.head_dim).transpose(0, 1)
        v = self.v_proj(x).view(T, self.num_kv, self.head_dim).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if past is not None:
            k = torch.cat([past[0], k], dim=1)
            v = torch.cat([past[1], v], dim=1)
        new_past = (k, v)
        P = k.shape[1] - T  # tokens already in the cache
        rep = self.num_heads // self.num_kv
        k = k.repeat_interleave(rep, dim=0)
        v = v.repeat_interleave(rep, dim=0)
        att = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(self.head_dim)
        qpos = torch.arange(T)[:, None] + P
        kpos = torch.arange(k.shape[1])[None, :]
        att = att.masked_fill(kpos > qpos, float("-inf"))
        att = torch.softmax(att, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(att, v).transpose(0, 1).reshape(T, -1)
        return self.o_proj(out), new_past


class DeepseekDecoderLayer(nn.Module):
    def __init__(self, cfg, layer_idx):
        super().__init__()
        self.self_attn = DeepseekAttention(cfg)
        is_moe = (
            cfg.n_routed_experts is not None
            and layer_idx >= cfg.first_k_dense_replace
            and layer_idx % cfg.moe_layer_freq == 0
        )
        self.mlp = DeepseekMoE(cfg) if is_moe else DeepseekMLP(cfg.hidden_size, cfg.intermediate_size)
        self.input_layernorm = DeepseekRMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = DeepseekRMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, x, cos, sin, past):
        h, new_past = self.self_attn(self.input_layernorm(x), cos, sin, past)
        x = x + h
        h = self.post_attention_layernorm(x)
        scores = None
        if isinstance(self.mlp, DeepseekMoE):
            h, scores = self.mlp(h)
        else:
            h = self.mlp(h)
        return x + h, new_past, scores


class DeepseekModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([DeepseekDecoderLayer(cfg, i) for i in range(cfg.num_hidden_layers)])
        self.norm = DeepseekRMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class DeepseekForCausalLM(nn.Module):
    """Module tree mirrors the published tensor names (state_dict() == hub names)."""

    def __init__(self, cfg):
        super().__init__()
        assert cfg.rope_scaling is None and cfg.pretraining_tp == 1 and cfg.hidden_act == "silu"
        self.cfg = cfg
        self.model = DeepseekModel(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, head_dim, 2).float() / head_dim))

    @torch.no_grad()
    def forward(self, ids, past=None):
        """ids: list[int] (batch 1).  Returns logits [T, V], router scores per MoE layer, new cache."""
        x = self.model.embed_tokens(torch.tensor(ids))
        start = 0 if past is None else past[0][0].shape[1]
        pos = torch.arange(start, start + len(ids)).float()
        freqs = torch.outer(pos, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        new_past, scores = [], []
        for i, layer in enumerate(self.model.layers):
            x, kv, sc = layer(x, cos, sin, None if past is None else past[i])
            new_past.append(kv)
            if sc is not None:
                scores.append(sc)
        return self.lm_head(self.model.norm(x)).float(), scores, new_past


def ds_step(model):
    return lambda ids, cache: model(ids, cache)


def copy_qwen_from_deepseek(qwen, ds_sd, cfg):
    """Map DeepSeek weights onto Qwen2MoeForCausalLM internals (fused expert tensors).

    The Qwen2-MoE shared expert output is sigmoid(shared_expert_gate(x)) * MLP(x);
    with the gate weight at 0 the factor is exactly 0.5, so the shared down_proj
    is doubled (exact in floating point) to obtain the un-gated DeepSeek sum.
    """
    sd = {}
    for k, v in ds_sd.items():
        if ".mlp.experts." in k or ".mlp.shared_experts." in k:
            continue
        sd[k] = v
    for i in range(cfg.num_hidden_layers):
        mlp = f"model.layers.{i}.mlp"
        if f"{mlp}.gate.weight" not in ds_sd:
            continue
        E = cfg.n_routed_experts
        sd[f"{mlp}.experts.gate_up_proj"] = torch.stack(
            [torch.cat([ds_sd[f"{mlp}.experts.{e}.gate_proj.weight"], ds_sd[f"{mlp}.experts.{e}.up_proj.weight"]]) for e in range(E)]
        )
        sd[f"{mlp}.experts.down_proj"] = torch.stack([ds_sd[f"{mlp}.experts.{e}.down_proj.weight"] for e in range(E)])
        sd[f"{mlp}.shared_expert.gate_proj.weight"] = ds_sd[f"{mlp}.shared_experts.gate_proj.weight"]
        sd[f"{mlp}.shared_expert.up_proj.weight"] = ds_sd[f"{mlp}.shared_experts.up_proj.weight"]
        sd[f"{mlp}.shared_expert.down_proj.weight"] = 2.0 * ds_sd[f"{mlp}.shared_experts.down_proj.weight"]
        sd[f"{mlp}.shared_expert_gate.weight"] = torch.zeros(1, cfg.hidden_size)
    qwen.load_state_dict(sd, strict=True)


def copy_mixtral_from_deepseek(mixtral, ds_sd, cfg):
    """Map an all-MoE, no-shared-expert DeepSeek onto MixtralForCausalLM internals."""
    sd = {k: v for k, v in ds_sd.items() if ".mlp.experts." not in k}
    for i in range(cfg.num_hidden_layers):
        mlp = f"model.layers.{i}.mlp"
        E = cfg.n_routed_experts
        sd[f"{mlp}.experts.gate_up_proj"] = torch.stack(
            [torch.cat([ds_sd[f"{mlp}.experts.{e}.gate_proj.weight"], ds_sd[f"{mlp}.experts.{e}.up_proj.weight"]]) for e in range(E)]
        )
        sd[f"{mlp}.experts.down_proj"] = torch.stack([ds_sd[f"{mlp}.experts.{e}.down_proj.weight"] for e in range(E)])
    mixtral.load_state_dict(sd, strict=True)


@torch.no_grad()
def crosscheck_deepseek(ds_model, cfg, prompts, res):
    """Validate the DeepSeek reference against transformers core classes."""
    top_k = cfg.num_experts_per_tok
    # (1) Qwen2-MoE on the very same (f16-rounded) fixture weights.
    qcfg = Qwen2MoeConfig(
        **COMMON_HF | {"rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta}},
        intermediate_size=cfg.intermediate_size,
        moe_intermediate_size=cfg.moe_intermediate_size,
        shared_expert_intermediate_size=cfg.moe_intermediate_size * cfg.n_shared_experts,
        num_experts=cfg.n_routed_experts,
        num_experts_per_tok=top_k,
        decoder_sparse_step=1,
        mlp_only_layers=list(range(cfg.first_k_dense_replace)),
        norm_topk_prob=cfg.norm_topk_prob,
        qkv_bias=False,
        rms_norm_eps=cfg.rms_norm_eps,
    )
    assert cfg.moe_layer_freq == 1
    qwen = Qwen2MoeForCausalLM._from_config(qcfg, dtype=torch.float32, **EAGER).eval()
    copy_qwen_from_deepseek(qwen, ds_model.state_dict(), cfg)
    qres = generate(hf_step(qwen), prompts, top_k)
    assert_same_results(res, qres, "deepseek vs transformers Qwen2-MoE", rel_tol=1e-5)
    print(f"[deepseek] cross-check vs Qwen2MoeForCausalLM (same weights): ok")

    # (2) Mixtral: no shared experts, no dense layer, norm_topk_prob=True.
    vcfg = SimpleNamespace(**(vars(cfg) | {"n_shared_experts": None, "first_k_dense_replace": 0, "norm_topk_prob": True}))
    variant = DeepseekForCausalLM(vcfg).eval()
    randomize_(variant, 777)
    mcfg = MixtralConfig(
        **COMMON_HF | {"rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta}},
        intermediate_size=cfg.moe_intermediate_size,
        num_local_experts=cfg.n_routed_experts,
        num_experts_per_tok=top_k,
        rms_norm_eps=cfg.rms_norm_eps,
    )
    mixtral = MixtralForCausalLM._from_config(mcfg, dtype=torch.float32, **EAGER).eval()
    copy_mixtral_from_deepseek(mixtral, variant.state_dict(), vcfg)
    vres = generate(ds_step(variant), prompts, top_k)
    mres = generate(hf_step(mixtral), prompts, top_k)
    assert_same_results(vres, mres, "deepseek variant vs transformers Mixtral", rel_tol=1e-5)
    print(f"[deepseek] cross-check vs MixtralForCausalLM (no shared, norm_topk_prob): ok")


def make_deepseek_fixture(base_seed, prompts):
    cfg = SimpleNamespace(**DS_CONFIG)
    top_k = cfg.num_experts_per_tok

    def build_and_run(seed):
        model = DeepseekForCausalLM(cfg).eval()
        randomize_(model, seed)
        round_params_(model, torch.float16)  # reference runs fp32 on f16-rounded weights
        return model, generate(ds_step(model), prompts, top_k)

    seed, model, res = search_seed("deepseek", base_seed, build_and_run)
    check_cache_consistency(ds_step(model), prompts, res, "deepseek")
    crosscheck_deepseek(model, cfg, prompts, res)

    folder = fresh_dir("deepseek")
    (folder / "config.json").write_text(json.dumps(DS_CONFIG, indent=2, sort_keys=True) + "\n")
    sd = {k: v.to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(sd, str(folder / "model.safetensors"), metadata={"format": "pt"})

    # Reload the written file into a fresh module and recompute.
    reloaded = DeepseekForCausalLM(cfg).eval()
    with safe_open(str(folder / "model.safetensors"), "pt") as fh:
        loaded = {k: fh.get_tensor(k).float() for k in fh.keys()}
    reloaded.load_state_dict(loaded, strict=True)
    res2 = generate(ds_step(reloaded), prompts, top_k)
    assert_same_results(res, res2, "deepseek reload", rel_tol=1e-6)
    assert margins_ok(res2)

    info = tensor_info(folder)
    assert set(info) == expected_names("deepseek", cfg.n_routed_experts), "deepseek: unexpected tensor names"
    assert set(info.values()) == {"F16"}
    write_reference(folder, "deepseek", "F16", seed, prompts, res2)
    return folder, res2


# --------------------------------------------------------------------------
def main() -> int:
    torch.set_num_threads(1)  # fixed reduction order -> reproducible files
    torch.manual_seed(0)
    prompts = make_prompts()
    print("prompts:", prompts)

    results = {}
    results["mixtral"] = make_hf_fixture(
        "mixtral", MixtralConfig, MixtralForCausalLM, MIXTRAL_CFG, 1000, torch.float32, "F32", 8, 2, prompts
    )
    results["qwen2_moe"] = make_hf_fixture(
        "qwen2_moe", Qwen2MoeConfig, Qwen2MoeForCausalLM, QWEN_CFG, 2000, torch.float32, "F32", 8, 2, prompts,
        max_shard_size=QWEN_MAX_SHARD,
    )
    results["olmoe"] = make_hf_fixture(
        "olmoe", OlmoeConfig, OlmoeForCausalLM, OLMOE_CFG, 3000, torch.bfloat16, "BF16", 8, 2, prompts
    )
    results["deepseek"] = make_deepseek_fixture(4000, prompts)

    # Layout checks that the C++ loader relies on.
    q = GOLDEN_DIR / "qwen2_moe"
    shards = sorted(q.glob("model-*.safetensors"))
    assert (q / "model.safetensors.index.json").exists() and not (q / "model.safetensors").exists()
    assert 2 <= len(shards) <= 4, f"qwen2_moe: {len(shards)} shards"
    index = json.loads((q / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == {s.name for s in shards}
    assert not (GOLDEN_DIR / "mixtral" / "model.safetensors.index.json").exists()

    total = sum(f.stat().st_size for f in GOLDEN_DIR.rglob("*") if f.is_file())
    print(f"total size of {GOLDEN_DIR}: {total / 1e6:.2f} MB")
    assert total < 8e6
    for name, (folder, res) in results.items():
        print(
            f"{name}: greedy {res['greedy']} scale {res['logits_scale']:.3f} "
            f"min greedy margin {res['min_greedy_margin']:.4g} ({res['min_greedy_margin'] / res['logits_scale']:.3g} rel) "
            f"min routing margin {res['min_routing_margin']:.3g}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
