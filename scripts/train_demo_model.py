#!/usr/bin/env python3
"""Train moeflow's embedded demo model: a tiny Qwen2-MoE that writes fortune-cookie English.

What it makes
-------------
``models/demo/``, a complete Hugging Face checkpoint folder that moeflow (and transformers)
load as is:

  model.safetensors        bfloat16 weights, per-expert hub tensor names (~14.7 MB)
  config.json              Qwen2MoeForCausalLM: 4 layers, hidden 256, 4 heads / 2 KV heads,
                           8 routed experts top-2 (moe_intermediate 192) plus a
                           sigmoid-gated shared expert (256), tied embeddings, 512 positions
  generation_config.json   eos = [<|endoftext|>, <|im_end|>]
  tokenizer.json           byte-level BPE trained here (4096 tokens, Qwen2 pre-tokenizer)
  tokenizer_config.json    ChatML chat template (Qwen style), eos <|endoftext|>, no bos
  README.md                what the model is, how it was made, real sample outputs

Why
---
moeflow needs a default model that is small enough to commit and to load at once,
uses a supported MoE architecture with every feature the Qwen2-MoE path has (qkv bias,
shared expert with sigmoid gate, norm_topk_prob, top-k routing over 8 experts), and still
writes recognisable English so that a demo shows something and a test can notice a broken
kernel.  Random-weight fixtures (tests/golden/) check the math; this model checks the story.
It is not a useful assistant.

How
---
1. Data: Debian's fortune cookies (packages ``fortunes`` and ``fortunes-min``, read from
   /usr/share/games/fortunes/; ``.dat`` indexes, ``.u8`` links, the offensive ``off/`` folder
   and the ``ascii-art`` file are skipped, as is any entry that is mostly not letters).
   Whitespace is normalised lightly (tabs and runs of spaces become one space, lines are
   stripped, blank-line runs collapse).  About 2% of the fortunes are held out for validation.
   A fifth of the training fortunes are wrapped in a ChatML exchange
   (``<|im_start|>user\\nTell me a fortune.<|im_end|>\\n<|im_start|>assistant\\n...<|im_end|>``)
   so the chat template leads somewhere; the rest are plain text ended by ``<|endoftext|>``.
2. Tokenizer: byte-level BPE with the HF ``tokenizers`` library, built like Qwen2's (NFC,
   the Qwen2 split regex then ByteLevel without prefix space, ByteLevel decoder); 4093
   merges-and-bytes tokens plus ``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>`` at the end
   of the vocabulary, as Qwen does.
3. Model: ``transformers.Qwen2MoeForCausalLM`` (a core class), fp32 while training.
4. Training: AdamW (betas 0.9/0.95, weight decay 0.1), linear warm-up then cosine decay to
   10%, random 256-token windows of the packed training stream, cross-entropy plus the
   router load-balancing loss (coefficient ``router_aux_loss_coef``).  Train/validation loss
   and tokens/s are printed every ``--eval-every`` steps; the weights with the best
   validation loss are kept.
5. Saving: ``save_pretrained(safe_serialization=True)`` in bfloat16, then the folder is
   reloaded with ``from_pretrained`` and greedy (and seeded sampled) continuations of a few
   prompts are printed and written into README.md.

Rerun
-----
    apt-get install -y fortunes fortunes-min            # the data (root)
    /opt/golden-venv/bin/pip install tokenizers         # if missing
    /opt/golden-venv/bin/python scripts/train_demo_model.py --steps 1000 --minutes 30

(needs torch, transformers 5 and tokenizers; CPU only, 2 threads, about 2 GB of memory).
``--steps`` fixes the learning-rate schedule, so a rerun with the same torch / transformers /
tokenizers versions and the same thread count reproduces the same weights.  ``--minutes`` is
a wall-clock cap on training: if it binds first, training stops there (the best weights so
far are kept) and the README records a replay command with ``--stop-after N``, which runs
exactly those N steps of the same schedule.  Without ``--steps`` the schedule follows the
clock.  On 2 CPU cores shared with compile jobs the committed checkpoint ran into the
30-minute cap after 894 of 1000 steps (2,029 tokens/s on average; 31 minutes in all); the
exact command, losses and timings are in models/demo/README.md.  ``--out`` writes elsewhere
(default: models/demo of this repository); every other file in that folder is deleted first.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "2")  # tokenizers' trainer threads
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
FORTUNE_DIR = Path("/usr/share/games/fortunes")
SKIP_FILES = {"ascii-art"}  # pictures, not English

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# The pre-tokenizer split regex of Qwen2's tokenizer.json.
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHAT_PROMPTS = [
    "Tell me a fortune.",
    "Tell me something.",
    "Give me a fortune cookie.",
    "Say something wise.",
    "Share a quote.",
    "What does my fortune say?",
]
CHAT_FRACTION = 0.2
SAMPLE_PROMPTS = [
    "The meaning of life is",
    "A man walks into a bar",
    "Q: What is the best way to",
    "Computers are",
    "Never trust a",
]


def log(msg: str) -> None:
    print(msg, flush=True)


# ----------------------------------------------------------------------------------- data

def package_versions() -> dict[str, str]:
    out = {}
    for pkg in ("fortunes", "fortunes-min"):
        try:
            out[pkg] = subprocess.run(
                ["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            out[pkg] = "unknown"
    return out


def normalise(entry: str) -> str:
    lines = [re.sub(r"[ \t\f\v]+", " ", line).strip() for line in entry.split("\n")]
    text = "\n".join(lines).strip()
    return re.sub(r"\n{3,}", "\n\n", text)


def mostly_letters(text: str) -> bool:
    visible = [c for c in text if not c.isspace()]
    return bool(visible) and sum(c.isalpha() for c in visible) >= 0.6 * len(visible)


def read_fortunes() -> tuple[list[str], list[str]]:
    if not FORTUNE_DIR.is_dir():
        sys.exit(f"{FORTUNE_DIR} not found: apt-get install -y fortunes fortunes-min")
    files = sorted(
        p for p in FORTUNE_DIR.iterdir()
        if p.is_file() and not p.is_symlink() and p.suffix not in (".dat", ".u8")
        and p.name not in SKIP_FILES
    )
    entries, names = [], []
    for path in files:
        raw = path.read_text(encoding="utf-8", errors="replace")
        for chunk in re.split(r"^%\s*$", raw, flags=re.M):
            text = normalise(chunk)
            if len(text) >= 8 and mostly_letters(text):
                entries.append(text)
        names.append(path.name)
    return entries, names


# ------------------------------------------------------------------------------ tokenizer

def train_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS),
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_special_tokens(SPECIAL_TOKENS)
    assert tok.get_vocab_size() == vocab_size, tok.get_vocab_size()
    return tok


def write_tokenizer(tok, out: Path) -> None:
    tok.save(str(out / "tokenizer.json"))
    added = {
        str(tok.token_to_id(t)): {
            "content": t, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": True,
        }
        for t in SPECIAL_TOKENS
    }
    cfg = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>",
        "errors": "replace",
        "model_max_length": 512,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")


def chat_wrap(text: str, rng: random.Random) -> str:
    q = rng.choice(CHAT_PROMPTS)
    return f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n{text}<|im_end|>\n"


def encode_stream(tok, texts: list[str], eos: int) -> torch.Tensor:
    ids: list[int] = []
    for enc in tok.encode_batch(texts, add_special_tokens=False):
        ids.extend(enc.ids)
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.long)


# ---------------------------------------------------------------------------------- model

def make_config(vocab_size: int, ids: dict[str, int]):
    from transformers import Qwen2MoeConfig

    cfg = Qwen2MoeConfig(
        vocab_size=vocab_size,
        hidden_size=256,
        intermediate_size=512,            # dense MLP size; unused (every layer is MoE)
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        hidden_act="silu",
        max_position_embeddings=512,
        initializer_range=0.02,
        rms_norm_eps=1e-6,
        use_cache=True,
        tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        use_sliding_window=False,
        attention_dropout=0.0,
        decoder_sparse_step=1,
        moe_intermediate_size=192,
        shared_expert_intermediate_size=256,
        num_experts_per_tok=2,
        num_experts=8,
        norm_topk_prob=True,
        output_router_logits=False,
        router_aux_loss_coef=0.01,
        mlp_only_layers=[],
        qkv_bias=True,
        bos_token_id=None,
        eos_token_id=[ids["<|endoftext|>"], ids["<|im_end|>"]],
        pad_token_id=ids["<|endoftext|>"],
    )
    cfg.architectures = ["Qwen2MoeForCausalLM"]
    return cfg


def param_count(model) -> int:
    # Tied embeddings are one tensor in memory and on disk.
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def evaluate(model, val: torch.Tensor, seq_len: int, batch: int) -> float:
    model.eval()
    n = (val.numel() - 1) // seq_len
    x_all = val[: n * seq_len].view(n, seq_len)
    y_all = val[1 : n * seq_len + 1].view(n, seq_len)
    total, count = 0.0, 0
    for i in range(0, n, batch):
        x, y = x_all[i : i + batch], y_all[i : i + batch]
        logits = model(input_ids=x, use_cache=False).logits
        total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
        count += y.numel()
    model.train()
    return total / count


def lr_at(progress: float, warmup: float, peak: float) -> float:
    if progress < warmup:
        return peak * progress / warmup
    t = min(1.0, (progress - warmup) / (1.0 - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * t)))


# ----------------------------------------------------------------------------- sampling

@torch.no_grad()
def samples(model, tok_hf, prompts: list[str], max_new: int) -> list[dict]:
    out = []
    for prompt in prompts:
        ids = tok_hf(prompt, return_tensors="pt", add_special_tokens=False).input_ids
        greedy = model.generate(ids, max_new_tokens=max_new, do_sample=False)
        torch.manual_seed(1)
        sampled = model.generate(ids, max_new_tokens=max_new, do_sample=True, temperature=0.8, top_p=0.95, top_k=50)
        out.append({
            "prompt": prompt,
            "prompt_ids": ids[0].tolist(),
            "greedy_ids": greedy[0, ids.shape[1]:].tolist(),
            "greedy": tok_hf.decode(greedy[0, ids.shape[1]:], skip_special_tokens=False),
            "sampled": tok_hf.decode(sampled[0, ids.shape[1]:], skip_special_tokens=False),
        })
    return out


def chat_sample(model, tok_hf, max_new: int) -> dict:
    msgs = [{"role": "user", "content": "Tell me a fortune."}]
    text = tok_hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    ids = tok_hf(text, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        greedy = model.generate(ids, max_new_tokens=max_new, do_sample=False)
        torch.manual_seed(1)
        sampled = model.generate(ids, max_new_tokens=max_new, do_sample=True, temperature=0.8, top_p=0.95, top_k=50)
    return {
        "prompt": text,
        "prompt_ids": ids[0].tolist(),
        "greedy": tok_hf.decode(greedy[0, ids.shape[1]:], skip_special_tokens=False),
        "sampled": tok_hf.decode(sampled[0, ids.shape[1]:], skip_special_tokens=False),
    }


# ------------------------------------------------------------------------------- readme

def fence(text: str) -> str:
    return "```text\n" + text.replace("```", "` ` `") + "\n```"


def write_readme(out: Path, info: dict) -> None:
    c = info["config"]
    lines = [
        "# moeflow demo model",
        "",
        "A tiny Mixture-of-Experts language model trained from scratch on Debian's fortune cookies.",
        "It is moeflow's embedded default model, meant for the demo and the tests: small enough",
        "to commit and to load at once, it exercises the whole Qwen2-MoE path of the engine (qkv bias,",
        "8 routed experts with top-2 routing and `norm_topk_prob`, a sigmoid-gated shared expert,",
        "tied embeddings, grouped-query attention), and it writes recognisable (if silly)",
        "English, so a broken kernel shows. **It is not a useful assistant**: it knows nothing but",
        "the style of fortune cookies, and it repeats itself under greedy decoding.",
        "",
        "## Files",
        "",
        "| file | bytes | what |",
        "|---|---|---|",
    ]
    for name, size, what in info["files"]:
        lines.append(f"| `{name}` | {size:,} | {what} |")
    lines += [
        "",
        f"{sum(s for _, s, _ in info['files']):,} bytes in all; no optimizer state.",
        "",
        "## Architecture",
        "",
        f"`Qwen2MoeForCausalLM` (transformers {info['versions']['transformers']}), weights in bfloat16.",
        "",
        "| | |",
        "|---|---|",
        f"| layers | {c['num_hidden_layers']}, every one MoE (`decoder_sparse_step` 1, no `mlp_only_layers`) |",
        f"| hidden size | {c['hidden_size']} |",
        f"| attention | {c['num_attention_heads']} query heads, {c['num_key_value_heads']} KV heads, head dim "
        f"{c['hidden_size'] // c['num_attention_heads']}, qkv bias, RoPE θ = {c['rope_theta']:g} (default type) |",
        f"| routed experts | {c['num_experts']} SwiGLU experts of {c['moe_intermediate_size']}, top-{c['num_experts_per_tok']}, "
        f"softmax then renormalised (`norm_topk_prob` true) |",
        f"| shared expert | SwiGLU of {c['shared_expert_intermediate_size']}, scaled by `sigmoid(shared_expert_gate · x)` |",
        f"| vocabulary | {c['vocab_size']} (byte-level BPE), embeddings tied to the LM head |",
        f"| context | {c['max_position_embeddings']} positions |",
        f"| parameters | {info['params']:,} in total; {info['active_params']:,} active per token |",
        f"| weights on disk | {info['weight_bytes']:,} bytes (bf16) |",
        "",
        "## Tokenizer",
        "",
        "Byte-level BPE trained by `scripts/train_demo_model.py` with the HF `tokenizers` library on",
        "the training text, built like Qwen2's: NFC normaliser, Qwen2's split regex, ByteLevel",
        "without prefix space, ByteLevel decoder. The special tokens are the last three ids:",
        f"`<|endoftext|>` = {info['ids']['<|endoftext|>']}, `<|im_start|>` = {info['ids']['<|im_start|>']}, "
        f"`<|im_end|>` = {info['ids']['<|im_end|>']}. No BOS token is added.",
        "`tokenizer_config.json` carries a ChatML chat template (Qwen style); `eos_token` is",
        "`<|endoftext|>`, and `config.json` / `generation_config.json` list both `<|endoftext|>` and",
        "`<|im_end|>` as end-of-sequence ids. On the training text the tokenizer averages "
        f"{info['bytes_per_token']:.2f} bytes per token.",
        "",
        "## How it was made",
        "",
        f"- **Data**: the fortune cookies of the Debian packages `fortunes` {info['pkg']['fortunes']} and",
        f"  `fortunes-min` {info['pkg']['fortunes-min']} (`/usr/share/games/fortunes/`, {len(info['data_files'])} files;",
        "  the `ascii-art` file and entries that are mostly not letters are dropped; no offensive",
        f"  `off/` fortunes). {info['n_entries']:,} fortunes, {info['n_chars']:,} characters after light whitespace",
        f"  normalisation; {info['n_val_entries']:,} fortunes ({info['val_tokens']:,} tokens) held out for validation,",
        f"  the rest give {info['train_tokens']:,} training tokens. A fifth of the training fortunes are",
        "  wrapped in a ChatML exchange (`<|im_start|>user` + a fixed request such as \"Tell me a",
        "  fortune.\" + `<|im_start|>assistant` + the fortune + `<|im_end|>`), the rest end with",
        "  `<|endoftext|>`.",
        f"- **Training**: from a random initialisation (seed {info['args']['seed']}), AdamW (lr {info['args']['lr']:g},",
        "  betas 0.9/0.95, weight decay 0.1, grad clip 1.0), warm-up then cosine decay to 10%,",
        f"  batches of {info['args']['batch_size']} × {info['args']['seq_len']} tokens cut at random offsets from the",
        f"  packed stream, cross-entropy + {c['router_aux_loss_coef']:g} × router load-balancing loss, fp32 on",
        f"  {info['threads']} CPU threads (shared with other jobs). {info['steps']:,} steps ({info['tokens_seen']:,} tokens,",
        f"  {info['epochs']:.1f} epochs) in {info['train_minutes']:.1f} minutes ({info['tok_per_s']:,.0f} tokens/s).",
    ]
    if info["capped"] and info["args"]["steps"]:
        lines += [
            f"  The {info['cap_minutes']:g}-minute cap (`--minutes`) ended the run at step {info['steps']:,} of its",
            f"  {info['args']['steps']:,}-step schedule, with the learning rate at {info['final_lr']:.2e}; the",
            "  command below replays exactly those steps (`--stop-after`).",
        ]
    lines += [
        f"- **Result**: the kept weights are those of step {info['best_step']:,}: train loss "
        f"{info['best_train']:.3f}, validation loss {info['best_val']:.3f} nats/token "
        f"(perplexity {math.exp(info['best_val']):.1f}).",
        "- **Command** (a rerun reproduces the weights with the same library versions and thread count):",
        "",
        "```sh",
        info["command"],
        "```",
        "",
        "Library versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + ".",
        "",
        "## Sample outputs",
        "",
        "Real outputs of this checkpoint, reloaded with `from_pretrained` (bf16 weights, computed in",
        f"float32), {info['max_new']} new tokens each. *Greedy* is deterministic decoding (what",
        "`moeflow generate` does without `--temperature`); *sampled* is temperature 0.8, top-p 0.95,",
        "top-k 50, `torch.manual_seed(1)`.",
        "",
    ]
    for s in info["samples"]:
        lines += [
            f"### \"{s['prompt']}\"",
            "",
            f"prompt ids: `{','.join(map(str, s['prompt_ids']))}`",
            "",
            "Greedy:",
            "",
            fence(s["prompt"] + s["greedy"]),
            "",
            "Sampled:",
            "",
            fence(s["prompt"] + s["sampled"]),
            "",
        ]
    ch = info["chat"]
    lines += [
        "### Chat template, \"Tell me a fortune.\"",
        "",
        f"prompt ids: `{','.join(map(str, ch['prompt_ids']))}`",
        "",
        "Greedy:",
        "",
        fence(ch["greedy"]),
        "",
        "Sampled:",
        "",
        fence(ch["sampled"]),
        "",
        "## Licence",
        "",
        "The weights and the tokenizer are derived from the fortune cookies of the Debian packages",
        f"`fortunes` and `fortunes-min`, version {info['pkg']['fortunes']} (source package `fortune-mod`",
        "1.99.1). Debian ships them with fortune-mod's copyright file,",
        "`/usr/share/doc/fortunes/copyright`, which gives the BSD licence (Copyright (c) 1991 The",
        "Regents of the University of California) and the collection's history; many fortunes are",
        "quotations whose words belong to their authors. The model may reproduce fragments of them.",
        "The training script is part of moeflow.",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines))


# --------------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "models" / "demo")
    ap.add_argument("--minutes", type=float, default=25.0, help="wall-clock cap on training")
    ap.add_argument("--steps", type=int, default=0, help="total steps (fixes the LR schedule); 0: clock-driven")
    ap.add_argument("--stop-after", type=int, default=0,
                    help="stop after this many steps of the --steps schedule (replays a run the cap cut short)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=float, default=0.03, help="warm-up fraction of the schedule")
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-new", type=int, default=40, help="new tokens per README sample")
    args = ap.parse_args()

    t_start = time.time()
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)

    import tokenizers
    import transformers
    from transformers import AutoTokenizer, Qwen2MoeForCausalLM

    # ---- data and tokenizer
    entries, data_files = read_fortunes()
    rng = random.Random(args.seed)
    order = list(range(len(entries)))
    rng.shuffle(order)
    n_val = max(50, len(entries) // 50)
    val_entries = [entries[i] for i in order[:n_val]]
    train_entries = [entries[i] for i in order[n_val:]]
    n_chars = sum(len(e) for e in entries)
    log(f"data: {len(data_files)} files, {len(entries)} fortunes, {n_chars} chars; "
        f"{len(train_entries)} train / {len(val_entries)} val fortunes")

    train_texts = [chat_wrap(e, rng) if rng.random() < CHAT_FRACTION else e for e in train_entries]
    tok = train_tokenizer(train_entries, args.vocab_size)
    ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    eos = ids["<|endoftext|>"]
    train = encode_stream(tok, train_texts, eos)
    val = encode_stream(tok, val_entries, eos)
    plain_bytes = sum(len(e.encode()) for e in train_entries)
    plain_tokens = sum(len(x.ids) for x in tok.encode_batch(train_entries, add_special_tokens=False))
    log(f"tokenizer: vocab {tok.get_vocab_size()}, special {ids}, {plain_bytes / plain_tokens:.2f} bytes/token; "
        f"train {train.numel()} tokens, val {val.numel()} tokens")

    # ---- model
    cfg = make_config(args.vocab_size, ids)
    model = Qwen2MoeForCausalLM(cfg).float().train()
    n_params = param_count(model)
    per_expert = 3 * cfg.hidden_size * cfg.moe_intermediate_size
    active = n_params - cfg.num_hidden_layers * (cfg.num_experts - cfg.num_experts_per_tok) * per_expert
    log(f"model: {n_params:,} parameters ({n_params * 2 / 1e6:.2f} MB in bf16), {active:,} active per token")
    if n_params * 2 > 15.5e6:
        sys.exit("model too large for the 15 MB budget")

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or "embed" in n]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95), eps=1e-8,
    )

    # ---- train
    gen = torch.Generator().manual_seed(args.seed)
    budget_s = args.minutes * 60.0
    max_start = train.numel() - args.seq_len - 1
    best = {"val": float("inf"), "step": 0, "train": float("nan"), "state": None}
    step, tokens_seen, run_loss, run_aux, run_n = 0, 0, 0.0, 0.0, 0
    t0 = time.time()
    t_log, tok_log = t0, 0
    log(f"training: batch {args.batch_size} x {args.seq_len}, lr {args.lr}, "
        f"steps {args.steps or 'clock-driven'}, cap {args.minutes} min")
    while True:
        elapsed = time.time() - t0
        progress = step / args.steps if args.steps else elapsed / budget_s
        capped = elapsed >= budget_s and not (args.steps and step >= args.steps)
        done = progress >= 1.0 or capped or (args.stop_after and step >= args.stop_after)
        if step > 0 and (step % args.eval_every == 0 or done):
            val_loss = evaluate(model, val, args.seq_len, 32)
            now = time.time()
            tps = (tokens_seen - tok_log) / (now - t_log)
            tr = run_loss / max(1, run_n)
            log(f"step {step:5d}  train {tr:.4f}  aux {run_aux / max(1, run_n):.3f}  val {val_loss:.4f}  "
                f"lr {opt.param_groups[0]['lr']:.2e}  {tps:,.0f} tok/s  {(now - t0) / 60:.1f} min")
            if val_loss < best["val"]:
                best = {"val": val_loss, "step": step, "train": tr,
                        "state": copy.deepcopy(model.state_dict())}
            run_loss, run_aux, run_n = 0.0, 0.0, 0
            t_log, tok_log = time.time(), tokens_seen
        if done:
            break
        lr = lr_at(min(progress, 1.0), args.warmup, args.lr)
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, max_start, (args.batch_size,), generator=gen)
        window = torch.stack([train[s : s + args.seq_len + 1] for s in starts.tolist()])
        x, y = window[:, :-1], window[:, 1:]
        out = model(input_ids=x, use_cache=False, output_router_logits=True)
        ce = F.cross_entropy(out.logits.reshape(-1, out.logits.size(-1)), y.reshape(-1))
        loss = ce + cfg.router_aux_loss_coef * out.aux_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += x.numel()
        run_loss += ce.item()
        run_aux += out.aux_loss.item()
        run_n += 1
    train_s = time.time() - t0
    final_lr = opt.param_groups[0]["lr"]
    log(f"trained {step} steps in {train_s / 60:.1f} min; best val {best['val']:.4f} at step {best['step']}")

    # ---- save (bf16) and reload
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in out_dir.iterdir():
        if p.is_file():
            p.unlink()
    model.load_state_dict(best["state"])
    model = model.to(torch.bfloat16)
    model.config.dtype = "bfloat16"
    model.generation_config.bos_token_id = None
    model.generation_config.eos_token_id = [ids["<|endoftext|>"], ids["<|im_end|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(out_dir, safe_serialization=True)
    write_tokenizer(tok, out_dir)
    # The engine reads rope_theta at the top level or inside rope_parameters; write both.
    cfg_path = out_dir / "config.json"
    cfg_json = json.loads(cfg_path.read_text())
    cfg_json.setdefault("rope_theta", cfg_json.get("rope_parameters", {}).get("rope_theta", 10000.0))
    cfg_path.write_text(json.dumps(cfg_json, indent=2, sort_keys=True) + "\n")

    from safetensors import safe_open
    with safe_open(str(out_dir / "model.safetensors"), "pt") as f:
        names = list(f.keys())
        dtypes = {str(f.get_slice(n).get_dtype()) for n in names}
    weight_bytes = (out_dir / "model.safetensors").stat().st_size
    log(f"saved {out_dir}: {len(names)} tensors, dtypes {dtypes}, model.safetensors {weight_bytes:,} bytes")

    reloaded = Qwen2MoeForCausalLM.from_pretrained(out_dir, dtype=torch.float32).eval()
    tok_hf = AutoTokenizer.from_pretrained(out_dir)
    smp = samples(reloaded, tok_hf, SAMPLE_PROMPTS, args.max_new)
    chat = chat_sample(reloaded, tok_hf, args.max_new)
    for s in smp:
        log(f"--- {s['prompt']!r} ids {s['prompt_ids']}\n  greedy ids {s['greedy_ids']}\n"
            f"  greedy : {s['prompt'] + s['greedy']!r}\n  sampled: {s['prompt'] + s['sampled']!r}")
    log(f"--- chat ids {chat['prompt_ids']}\n  greedy : {chat['greedy']!r}\n  sampled: {chat['sampled']!r}")

    cmd_args = [f"--steps {args.steps}"] if args.steps else []
    if capped and args.steps:
        # Replaying the same steps of the same schedule reproduces the weights; lift the cap.
        cmd_args += [f"--stop-after {step}", f"--minutes {max(60.0, 2 * args.minutes):g}"]
    elif args.stop_after:
        cmd_args += [f"--stop-after {args.stop_after}", f"--minutes {args.minutes:g}"]
    else:
        cmd_args.append(f"--minutes {args.minutes:g}")
    defaults = ap.parse_args([])
    for k in ("batch_size", "seq_len", "lr", "warmup", "vocab_size", "eval_every", "seed", "threads", "max_new"):
        if getattr(args, k) != getattr(defaults, k):
            cmd_args.append(f"--{k.replace('_', '-')} {getattr(args, k)}")
    if args.out.resolve() != defaults.out.resolve():
        cmd_args.append(f"--out {args.out}")
    what = {
        "model.safetensors": "bf16 weights, per-expert hub tensor names",
        "config.json": "architecture (`Qwen2MoeForCausalLM`)",
        "generation_config.json": "generation defaults (eos ids)",
        "tokenizer.json": "byte-level BPE tokenizer (HF `tokenizers`)",
        "tokenizer_config.json": "special tokens and the ChatML chat template",
        "README.md": "this file",
    }
    info = {
        "config": cfg_json,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "python": sys.version.split()[0]},
        "params": n_params, "active_params": active, "weight_bytes": weight_bytes,
        "ids": ids, "bytes_per_token": plain_bytes / plain_tokens,
        "pkg": package_versions(), "data_files": data_files,
        "n_entries": len(entries), "n_chars": n_chars, "n_val_entries": len(val_entries),
        "val_tokens": val.numel(), "train_tokens": train.numel(),
        "args": vars(args), "threads": args.threads, "steps": step, "tokens_seen": tokens_seen,
        "epochs": tokens_seen / train.numel(), "train_minutes": train_s / 60,
        "tok_per_s": tokens_seen / train_s, "best_step": best["step"], "best_train": best["train"],
        "best_val": best["val"], "capped": capped, "cap_minutes": args.minutes, "final_lr": final_lr,
        "command": "/opt/golden-venv/bin/python scripts/train_demo_model.py " + " ".join(cmd_args),
        "max_new": args.max_new, "samples": smp, "chat": chat,
    }
    # The table lists README.md's own size: rewrite until it is stable.
    readme_size = 0
    for _ in range(5):
        info["files"] = [
            (p.name, readme_size if p.name == "README.md" else p.stat().st_size, what.get(p.name, ""))
            for p in sorted(out_dir.iterdir()) if p.is_file() and p.name != "README.md"
        ] + [("README.md", readme_size, what["README.md"])]
        write_readme(out_dir, info)
        if (out_dir / "README.md").stat().st_size == readme_size:
            break
        readme_size = (out_dir / "README.md").stat().st_size
    for p in out_dir.iterdir():
        p.chmod(0o644)  # save_pretrained leaves the weights owner-only
    total = sum(p.stat().st_size for p in out_dir.iterdir())
    log(f"folder {out_dir}: {total:,} bytes in {len(list(out_dir.iterdir()))} files; "
        f"total time {(time.time() - t_start) / 60:.1f} min")


if __name__ == "__main__":
    main()
