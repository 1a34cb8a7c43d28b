#!/usr/bin/env python3
"""Generate the tokenizer conformance fixtures for the C++ tokenizer (tests/tokenizer/).

What it makes
-------------
Two small BPE models are trained with the Hugging Face `tokenizers` library on text available
offline (Python's own standard library sources, the `fortunes-min` cookies, and a few hundred
lines of multilingual text written below):

  * a byte-level BPE (GPT-2 alphabet, Qwen2 split regex), vocab 1000;
  * a SentencePiece-style BPE (Metaspace "▁", <0x00>..<0xFF> byte-fallback tokens, <unk>, <s>,
    </s>, a limited alphabet so that CJK and emoji fall back to bytes), vocab 1200.

Each model is written out in the pipeline shapes real checkpoints publish, one folder each:

  qwen2/     NFC + Split(Qwen2 regex) + ByteLevel, ByteLevel post-processor   ChatML (Qwen1.5-MoE)
  llama3/    Split(Llama-3 regex, \\p{N}{1,3}) + ByteLevel, ignore_merges,
             TemplateProcessing <|begin_of_text|> $A                           ChatML, no system
  neox/      NFC + ByteLevel(use_regex) alone (GPT-NeoX / OLMoE), merges as
             "a b" strings, space-run added tokens, lstrip/rstrip and
             single_word added tokens, TemplateProcessing $A <|endoftext|>      Tulu (OLMoE)
  deepseek/  DeepSeek's Sequence of Split patterns + Digits + ByteLevel,
             TemplateProcessing <｜begin▁of▁sentence｜> $A                        DeepSeek-MoE
  mixtral/   Prepend("▁") + Replace(" ", "▁") normalizer, byte fallback,
             Replace/ByteFallback/Fuse/Strip decoder, <s> $A, a normalized
             non-special added token                                           Mixtral v0.1
  llama2/    Metaspace(prepend_scheme first, split false) pre-tokenizer         Mistral + system
  metaspace/ Metaspace(always, split true) + ByteFallback/Metaspace decoder,
             no post-processor, no decoder-side Strip                          (DeepSeek again)

Every folder holds tokenizer.json, tokenizer_config.json (bos/eos and the family's published
chat template) and cases.json:
  encode:  text, ids with and without add_special_tokens, decode of the former with and
           without skip_special_tokens (the corpus: unicode, CJK, accents, emoji with ZWJ,
           whitespace runs, digits, code, special tokens inline, empty, ...);
  decode:  id lists (random ids, byte tokens cut mid-character, invalid bytes) and their
           decodes with and without skip_special_tokens;
  tokens:  token_to_id / id_to_token of every added token and a few vocabulary entries;
  vocab_size: len(tokenizer);
  chat:    conversations and the text transformers' apply_chat_template renders for them
           (jinja2 with trim_blocks and lstrip_blocks, as transformers does; cross-checked with
           transformers itself), or the exception the template raises.

Two more files test single stages against the library on many inputs:
  pre_tokenizer_cases.json  inputs, and per pre-tokenizer configuration the library's words;
  nfc_cases.json            text -> the library's NFC.

The templates are the short public strings of Mixtral-8x7B-Instruct-v0.1 (original and the later
one with a system message), Qwen1.5-MoE-A2.7B-Chat, OLMoE-1B-7B-0924-Instruct and
deepseek-moe-16b-chat.

Run (CPU, about a minute; output is deterministic for a given `tokenizers` version):

    apt-get install -y fortunes-min   # optional: more training text
    /opt/golden-venv/bin/pip install tokenizers jinja2
    /opt/golden-venv/bin/python tests/tokenizer_fixtures/make_tokenizer_fixtures.py
"""
import collections
import json
import pathlib
import random
import sysconfig
import unicodedata

import jinja2
import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

OUT = pathlib.Path(__file__).resolve().parent

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                  r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# DeepSeek LLM / DeepSeek-MoE: letters of cased scripts, ASCII/CJK punctuation, trailing space,
# CJK runs, then single digits.
DEEPSEEK_SPLITS = [
    r"[\r\n]",
    "\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u1f7dᾀ-ᾴᾶ-ᾼ\u1fbeῂ-ῄῆ-ῌῐ-\u1fd3ῖ-\u1fdbῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212a-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    r"\s?[!-/:-~！-／：-～‘-‟　-。]+",
    r"\s+$",
    r"[一-龥ࠀ-一가-퟿]+",
]

MIXTRAL_V01 = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant "
    "roles are supported!') }}{% endif %}{% endfor %}")
MISTRAL_SYSTEM = """{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
"""
QWEN_CHATML = (
    r"{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    r"{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    r"{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    r"{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
PLAIN_CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}")
OLMOE_TULU = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ '<|system|>\n' + message['content'] + '\n' }}{% elif message['role'] == 'user' %}"
    "{{ '<|user|>\n' + message['content'] + '\n' }}{% elif message['role'] == 'assistant' %}"
    "{% if not loop.last %}{{ '<|assistant|>\n'  + message['content'] + eos_token + '\n' }}"
    "{% else %}{{ '<|assistant|>\n'  + message['content'] + eos_token }}{% endif %}{% endif %}"
    "{% if loop.last and add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}{% endfor %}")
DEEPSEEK_CHAT = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}"
    "{% endif %}{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ 'User: ' + message['content'] + '\n\n' }}{% elif message['role'] == 'assistant' %}"
    "{{ 'Assistant: ' + message['content'] + eos_token }}{% elif message['role'] == 'system' %}"
    "{{ message['content'] + '\n\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}"
    "{{ 'Assistant:' }}{% endif %}")

# Written for the training text and the test corpus: many scripts, accents, emoji.
MULTILINGUAL = [
    "Café, déjà vu, naïve façade, crème brûlée, Ångström, Œuvre, São Paulo, Zürich, Kraków.",
    "Über die Brücke gehen wir schön langsam, während die Straßenbahn fährt.",
    "El niño comió piña y jalapeño en la montaña; ¿dónde está el baño? ¡Olé!",
    "Le garçon a mangé une crêpe à la crème près de l'hôtel.",
    "你好，世界！这是一个测试。我们正在训练一个分词器，用来处理中文文本。",
    "中文和English混合在一起，数字123和标点。今天天气很好，我们去公园散步吧。",
    "日本語のテキスト、カタカナとひらがなと漢字。東京は大きな都市です。",
    "한국어 텍스트입니다. 안녕하세요, 만나서 반갑습니다.",
    "Привет, мир! Это тестовая строка на русском языке.",
    "Γειά σου Κόσμε· αυτή είναι μια δοκιμή.",
    "مرحبا بالعالم، هذا اختبار.",
    "שלום עולם, זו בדיקה.",
    "नमस्ते दुनिया, यह एक परीक्षण है।",
    "สวัสดีชาวโลก นี่คือการทดสอบ",
    "Emoji: 👋🌍 😀😃😄 family 👨‍👩‍👧‍👦 flag 🇫🇷🇩🇪 thumbs 👍🏽 heart ❤️ coffee ☕ rocket 🚀",
    "Math: ∑ x² + ∫ f(x) dx ≈ π·r², α β γ δ ε, ∀x ∃y: x ≤ y ≠ z.",
    "Prices: €12.50, £8, ¥1000, $3.99; 50% off; ½ ¾ ⅓; ①②③; Ⅻ.",
]


def training_lines():
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    lines = []
    for name in ["textwrap.py", "argparse.py", "json/decoder.py", "json/encoder.py", "csv.py",
                 "string.py", "shlex.py", "heapq.py"]:
        path = stdlib / name
        if path.exists():
            lines += path.read_text(encoding="utf-8").splitlines()
    fortunes = pathlib.Path("/usr/share/games/fortunes")
    for name in ["fortunes", "literature", "wisdom"]:
        path = fortunes / name
        if path.exists():
            lines += [l for l in path.read_text(encoding="utf-8", errors="replace").splitlines()
                      if l != "%"]
    lines += MULTILINGUAL * 20
    print(f"training text: {sum(len(l) + 1 for l in lines) // 1024} KiB in {len(lines)} lines")
    return lines


def added(id_, content, special=True, normalized=False, lstrip=False, rstrip=False, single_word=False):
    return {"id": id_, "content": content, "single_word": single_word, "lstrip": lstrip,
            "rstrip": rstrip, "normalized": normalized, "special": special}


def split(pattern, behavior="Isolated", invert=False):
    return {"type": "Split", "pattern": {"Regex": pattern}, "behavior": behavior, "invert": invert}


def byte_level(add_prefix_space=False, use_regex=False):
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": False,
            "use_regex": use_regex}


def template(before, after, special_ids):
    single = ([{"SpecialToken": {"id": t, "type_id": 0}} for t in before] +
              [{"Sequence": {"id": "A", "type_id": 0}}] +
              [{"SpecialToken": {"id": t, "type_id": 0}} for t in after])
    return {"type": "TemplateProcessing", "single": single, "pair": single,
            "special_tokens": {t: {"id": t, "ids": [i], "tokens": [t]} for t, i in special_ids.items()}}


def train_byte_level(lines):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), "isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=1000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(lines, trainer)
    return json.loads(tok.to_str())["model"]


def train_sentencepiece(lines):
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    # The 160 most frequent characters (ties by code point; the trainer's own limit_alphabet
    # breaks ties in hash order, which changes from run to run). The rest falls back to bytes.
    counts = collections.Counter("".join(lines).replace(" ", "▁"))
    alphabet = sorted(counts, key=lambda ch: (-counts[ch], ch))[:159] + ["▁"]
    alphabet = list(dict.fromkeys(alphabet))
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=["<unk>", "<s>", "</s>"] + byte_tokens,
                                  initial_alphabet=alphabet, limit_alphabet=len(alphabet), show_progress=False)
    tok.train_from_iterator(lines, trainer)
    model = json.loads(tok.to_str())["model"]
    assert all(model["vocab"][t] == 3 + b for b, t in enumerate(byte_tokens))
    return model


def variants(bl, sp):
    """(name, tokenizer.json dict, tokenizer_config.json dict) per folder."""
    n = len(bl["vocab"])
    out = []

    qwen_added = [added(n, "<|endoftext|>"), added(n + 1, "<|im_start|>"), added(n + 2, "<|im_end|>")]
    out.append(("qwen2", {
        "added_tokens": qwen_added, "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [split(QWEN2_PATTERN), byte_level()]},
        "post_processor": byte_level(), "decoder": {"type": "ByteLevel", "add_prefix_space": False,
                                                    "trim_offsets": False, "use_regex": False},
        "model": bl}, {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                       "chat_template": QWEN_CHATML}))

    llama3_model = dict(bl, ignore_merges=True)
    out.append(("llama3", {
        "added_tokens": [added(n, "<|begin_of_text|>"), added(n + 1, "<|end_of_text|>"),
                         added(n + 2, "<|im_start|>"), added(n + 3, "<|im_end|>"),
                         added(n + 4, "<|reserved_special_token_0|>")],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [split(LLAMA3_PATTERN), byte_level()]},
        "post_processor": {"type": "Sequence", "processors": [
            byte_level(), template(["<|begin_of_text|>"], [], {"<|begin_of_text|>": n})]},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": llama3_model}, {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
                                 "chat_template": PLAIN_CHATML}))

    neox_model = dict(bl, merges=[" ".join(m) for m in bl["merges"]])
    out.append(("neox", {
        "added_tokens": [added(0 + n, "<|endoftext|>"), added(n + 1, "<|padding|>"),
                         added(n + 2, "  ", special=False, normalized=True),
                         added(n + 3, "    ", special=False, normalized=True),
                         added(n + 4, "<|sep|>", lstrip=True, rstrip=True),
                         added(n + 5, "ZZword", special=False, normalized=False, single_word=True)],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": byte_level(use_regex=True),
        "post_processor": template([], ["<|endoftext|>"], {"<|endoftext|>": n}),
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "model": neox_model}, {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                               "chat_template": OLMOE_TULU}))

    bos, eos = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
    out.append(("deepseek", {
        "added_tokens": [added(n, bos), added(n + 1, eos)],
        "normalizer": {"type": "Sequence", "normalizers": []},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers":
                          [split(p) for p in DEEPSEEK_SPLITS] +
                          [{"type": "Digits", "individual_digits": True}, byte_level()]},
        "post_processor": template([bos], [], {bos: n}),
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": bl}, {"bos_token": {"__type": "AddedToken", "content": bos, "lstrip": False,
                                     "normalized": True, "rstrip": False, "single_word": False},
                       "eos_token": {"__type": "AddedToken", "content": eos, "lstrip": False,
                                     "normalized": True, "rstrip": False, "single_word": False},
                       "chat_template": DEEPSEEK_CHAT}))

    m = len(sp["vocab"])
    sp_added = [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")]
    sp_decoder = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
        {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    bos_template = template(["<s>"], [], {"<s>": 1})
    sp_config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    out.append(("mixtral", {
        "added_tokens": sp_added + [added(m, "[TOOL]", special=False, normalized=True)],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None, "post_processor": bos_template, "decoder": sp_decoder,
        "model": sp}, dict(sp_config, chat_template=MIXTRAL_V01)))
    out.append(("llama2", {
        "added_tokens": sp_added, "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
        "post_processor": bos_template, "decoder": sp_decoder,
        "model": sp}, dict(sp_config, chat_template=MISTRAL_SYSTEM)))
    out.append(("metaspace", {
        "added_tokens": sp_added, "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "ByteFallback"},
            {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}]},
        "model": sp}, dict(sp_config, bos_token="<s>", chat_template=DEEPSEEK_CHAT)))
    return [(name, dict({"version": "1.0", "truncation": None, "padding": None}, **j), c)
            for name, j, c in out]


def corpus():
    code = ('def fib(n):\n    """Return the n-th Fibonacci number."""\n    a, b = 0, 1\n'
            '    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n\n'
            'if __name__ == "__main__":\n\tprint(fib(10))  # 55\n')
    cpp = ('#include <vector>\nint main() {\n  std::vector<int> v{1, 2, 3};\n'
           '  for (auto& x : v) x *= 2;  // double\n  return v[0] == 2 ? 0 : 1;\n}\n')
    texts = [
        "", " ", "  ", "\n", "Hello world", " Hello world", "Hello world ", "   leading and trailing   ",
        "\n\nnewlines\n\n\n", "\ttabs\tand\t\ttabs\t", "a  b   c    d     e", "line1\r\nline2\rline3\n",
        "   \n  \n\t \n", "1234567890", "3.14159 2.71828 -42 +7", "in 2024, 12345678901234567890 items",
        "٣٤٥ arabic-indic, ①②③ circled, ½ fraction, Ⅻ roman", "x1y22z333w4444",
        "Cafe\u0301 de\u0301ja\u0300 vu (decomposed), A\u030a, \u212b, \u1100\u1161\u11a8 jamo",
        "He'S HERE, it'ſ, I'M, YOU'LL, they'RE, we'VE, I'D, don't, can't, K'K",
        "\u00a0nbsp\u3000ideographic\u2028line-sep\u0085nel\u200bzero-width\u2009thin",
        "\x0b\x0c vertical tab and form feed", "\x00\x01\x7f control", "ﬁ ligature and ﬀ",
        code, cpp, '{"key": [1, 2.5, "three"], "nested": {"a": null}}',
        "    return x  # comment\n", "<html>\n  <body class=\"x\">&amp;</body>\n</html>",
        "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
        "<s>Hello</s> world", "text<|endoftext|>more text", "<|im_start|><|im_end|>",
        "<|im_start partial <|im_end", " <s> spaced </s> ", "<s><s></s>",
        "a <|sep|> b", "a<|sep|>b", "ZZword here", "xZZword", "ZZwordy", "say ZZword.",
        "a    b        c", "[TOOL] call [TOOL]x", "a [TOOL] b",
        "<｜begin▁of▁sentence｜>User: hi\n\nAssistant:", "<|begin_of_text|>hello<|reserved_special_token_0|>",
        "▁ already has ▁ markers ▁▁",
    ] + MULTILINGUAL
    rng = random.Random(1234)
    pool = (list("abcXYZ  \n\t019.,'!?-_") + list("éüñçåøß") + ["e\u0301", "\u0308", "\u0327"] +
            list("你好世界日本語한국어") + ["👋", "🚀", "👨‍👩‍👧", "🇫🇷", "❤️"] +
            ["\u00a0", "\u3000", "\r\n", "   ", "٣", "½", "Ⅻ", "<s>", "<|im_end|>", "\u0301"])
    for _ in range(20):
        texts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 30))))
    long = " ".join(MULTILINGUAL[:8]) + "\n" + code
    texts.append(long)
    return texts


CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "What is 2+2?"}],
    [{"role": "user", "content": "A"}, {"role": "assistant", "content": "B"},
     {"role": "user", "content": "C"}, {"role": "assistant", "content": "D"}],
    [{"role": "user", "content": "Line 1\nLine 2 — café 你好 👋\n\n  indented"}],
    [{"role": "assistant", "content": "first"}],
    [{"role": "user", "content": "x"}, {"role": "user", "content": "y"}],
    [{"role": "system", "content": "sys only"}],
    [{"role": "user", "content": "x"}, {"role": "tool", "content": "y"}],
]


def render(tmpl, messages, add_generation_prompt, bos, eos):
    """transformers' rendering: jinja2 with trim_blocks/lstrip_blocks and raise_exception."""
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    try:
        return {"text": env.from_string(tmpl).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                                     bos_token=bos, eos_token=eos)}
    except jinja2.exceptions.UndefinedError as e:
        return {"error": str(e), "raised": False}
    except jinja2.exceptions.TemplateError as e:
        return {"error": str(e), "raised": True}


def token_text(value):
    if isinstance(value, dict):
        return value["content"]
    return value or ""


def check_with_transformers(tok, config, chat):
    try:
        from transformers import PreTrainedTokenizerFast
    except ImportError:
        print("  (transformers not installed: chat references not cross-checked)")
        return
    t = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=token_text(config["bos_token"]) or None,
                                eos_token=token_text(config["eos_token"]) or None)
    t.chat_template = config["chat_template"]
    for case in chat:
        try:
            got = t.apply_chat_template(case["messages"], tokenize=False,
                                        add_generation_prompt=case["add_generation_prompt"])
        except Exception:  # noqa: BLE001 - any error is what we compare against
            got = None
        want = case.get("text")
        assert got == want, f"transformers renders {got!r}, jinja2 {want!r}"


def cases(name, tok, config, texts, rng):
    chat = []
    for messages in CONVERSATIONS:
        for gen in (False, True):
            r = render(config["chat_template"], messages, gen, token_text(config["bos_token"]),
                       token_text(config["eos_token"]))
            chat.append(dict({"messages": messages, "add_generation_prompt": gen}, **r))
    check_with_transformers(tok, config, chat)
    texts = texts + [c["text"] for c in chat if "text" in c]

    encode = []
    for text in texts:
        with_special = tok.encode(text, add_special_tokens=True).ids
        encode.append({"text": text, "ids": with_special,
                       "ids_no_special": tok.encode(text, add_special_tokens=False).ids,
                       "decode": tok.decode(with_special, skip_special_tokens=False),
                       "decode_skip_special": tok.decode(with_special, skip_special_tokens=True)})

    size = tok.get_vocab_size(with_added_tokens=True)
    vocab = tok.get_vocab(with_added_tokens=False)
    id_lists = [[rng.randrange(size + 3) for _ in range(rng.randint(1, 12))] for _ in range(25)]
    if "<0x41>" in vocab:  # SentencePiece byte fallback: runs of byte tokens
        b = lambda *xs: [vocab[f"<0x{x:02X}>"] for x in xs]  # noqa: E731
        w = tok.encode("hello world", add_special_tokens=False).ids
        id_lists += [b(0xE4, 0xBD, 0xA0), b(0xE4, 0xBD), b(0x41, 0xE4) + w, b(0x0A) + w + b(0x0A),
                     b(0xF0, 0x9F, 0x91, 0x8B, 0x0A), b(0xFF, 0x41) + w, [1] + b(0xE4, 0xBD, 0xA0) + [2],
                     [vocab["▁"]], [vocab["▁"], vocab["▁"]] + w, [1, vocab["▁"]] + w]
    else:  # byte level: single bytes of the GPT-2 alphabet, cut and invalid sequences
        alphabet = {b: t for t, b in _byte_level_map().items()}
        b = lambda *xs: [vocab[alphabet[x]] for x in xs]  # noqa: E731
        w = tok.encode("hello world", add_special_tokens=False).ids
        id_lists += [b(0xF0, 0x9F, 0x91, 0x8B), b(0xF0, 0x9F, 0x91), b(0xF0, 0x9F) + w, b(0x80) + w,
                     b(0xFF, 0xFE), b(0xE4, 0xBD) + b(0xE4, 0xBD, 0xA0), w + b(0xC3), b(0xED, 0xA0, 0x80),
                     b(0xF4, 0x90, 0x80, 0x80), b(0xE0, 0x80, 0x41)]
    decode = [{"ids": ids, "decode": tok.decode(ids, skip_special_tokens=False),
               "decode_skip_special": tok.decode(ids, skip_special_tokens=True)} for ids in id_lists]

    added = json.loads(tok.to_str())["added_tokens"]
    probes = [a["content"] for a in added] + sorted(vocab, key=vocab.get)[::97] + ["not-a-token-xyz"]
    tokens = [{"token": t, "id": tok.token_to_id(t)} for t in probes]
    ids = [a["id"] for a in added] + list(range(0, size, 89)) + [size + 5]
    tokens += [{"id": i, "id_to_token": tok.id_to_token(i)} for i in ids]
    return {"vocab_size": size, "encode": encode, "decode": decode, "tokens": tokens, "chat": chat}


def _byte_level_map():
    """GPT-2's bytes_to_unicode(): byte -> character."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


PRE_TOKENIZER_CONFIGS = [
    ("gpt2_byte_level", byte_level(use_regex=True)),
    ("byte_level_prefix_space", byte_level(add_prefix_space=True, use_regex=True)),
    ("byte_level_no_regex", byte_level(add_prefix_space=True)),
    ("qwen2", {"type": "Sequence", "pretokenizers": [split(QWEN2_PATTERN), byte_level()]}),
    ("llama3", {"type": "Sequence", "pretokenizers": [split(LLAMA3_PATTERN), byte_level()]}),
    ("deepseek", {"type": "Sequence", "pretokenizers": [split(p) for p in DEEPSEEK_SPLITS] +
                  [{"type": "Digits", "individual_digits": True}, byte_level()]}),
    ("digits_grouped", {"type": "Digits", "individual_digits": False}),
    ("metaspace_always_split", {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}),
    ("metaspace_first", {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}),
    ("metaspace_never_split", {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": True}),
    ("split_string_removed", {"type": "Split", "pattern": {"String": " "}, "behavior": "Removed", "invert": False}),
    ("split_string_merged_previous", {"type": "Split", "pattern": {"String": "ab"}, "behavior": "MergedWithPrevious",
                                      "invert": False}),
    ("split_merged_next", split(r"\s+", "MergedWithNext")),
    ("split_contiguous", split(r"[.,!?]|\p{N}", "Contiguous")),
    ("split_invert", split(r"\p{L}+", "Isolated", invert=True)),
    ("split_anchors", split(r"^\s*\S|\S\s*$|\s+\z|\A.")),
    ("split_lazy_lookahead", split(r"\p{L}+?(?=\p{L}{2}\s)|a{2,3}|(?!x)\p{N}{2}|[^\p{L}\p{N}\s]")),
    ("split_classes", split(r"\p{Lu}\p{Ll}+|\p{Lo}+|\p{M}+|\p{Nd}+|\p{Lm}|\p{Lt}|[\x{1F300}-\x{1FAFF}]+|\u00e9")),
]


def pre_tokenizer_cases(texts):
    rng = random.Random(99)
    pool = [chr(c) for c in [*range(0x20, 0x7F), 0x9, 0xA, 0xD, 0xB, 0xC, 0x85, 0xA0, 0x1680, 0x2000,
                             0x2028, 0x202F, 0x3000, 0x200B, 0xE9, 0x301, 0x308, 0x5D0, 0x627, 0x660,
                             0x966, 0xE01, 0x4E00, 0x3042, 0xAC00, 0x2160, 0xBD, 0x1D7CE, 0x1F600,
                             0x1F3FD, 0x200D, 0xFE0F, 0x10400, 0x1C5, 0x2B0, 0x17F, 0x212A, 0xDF, 0xE000,
                             0x378, 0xFF10, 0xFF21, 0x2018, 0x3001]]
    inputs = [t for t in texts if len(t) < 100] + ["".join(rng.choice(pool) for _ in range(rng.randint(0, 24)))
                                                   for _ in range(30)]
    configs = []
    for name, config in PRE_TOKENIZER_CONFIGS:
        tok = Tokenizer.from_str(json.dumps({"version": "1.0", "model": {"type": "BPE", "vocab": {}, "merges": []},
                                             "pre_tokenizer": config}))
        expect = [[w for w, _ in tok.pre_tokenizer.pre_tokenize_str(t)] for t in inputs]
        configs.append({"name": name, "pre_tokenizer": config, "words": expect})
    return {"inputs": inputs, "configs": configs}


def nfc_cases():
    rng = random.Random(7)
    hf = normalizers.NFC()
    decomposable = [chr(c) for c in range(0x110000)
                    if not 0xD800 <= c <= 0xDFFF and unicodedata.decomposition(chr(c))
                    and not unicodedata.decomposition(chr(c)).startswith("<")]
    texts = []
    for i in range(0, len(decomposable), 60):
        chunk = "".join(decomposable[i:i + 60])
        texts += [chunk, unicodedata.normalize("NFD", chunk)]
    marks = ["\u0300", "\u0301", "\u0308", "\u0323", "\u0327", "\u031b", "\u0345", "\u05b0", "\u0e38", "\u3099",
             "\u0344", "\u0340"]
    bases = ["a", "e", "o", "u", "A", "E", "O", "ω", "α", "ι", "\u1100", "\u1161", "\u11a8", "가", "か", "\u0915", " "]
    for _ in range(300):
        texts.append("".join(rng.choice(bases) + "".join(rng.choice(marks) for _ in range(rng.randint(0, 3)))
                             for _ in range(rng.randint(1, 6))))
    texts += ["plain ascii", "", "\u1100\u1161\u11a8\u1100\u1161", "\uac00\u11a8", "e\u0301\u0323", "e\u0323\u0301"]
    return [[t, hf.normalize_str(t)] for t in texts]


def write_json(path, value):
    path.write_text(json.dumps(value, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n",
                    encoding="utf-8")


def main():
    lines = training_lines()
    bl, sp = train_byte_level(lines), train_sentencepiece(lines)
    texts = corpus()
    rng = random.Random(42)
    for name, tokenizer_json, config in variants(bl, sp):
        folder = OUT / name
        folder.mkdir(exist_ok=True)
        text = json.dumps(tokenizer_json, ensure_ascii=False)
        tok = Tokenizer.from_str(text)  # the references come from exactly what the C++ reads
        (folder / "tokenizer.json").write_text(text + "\n", encoding="utf-8")
        (folder / "tokenizer_config.json").write_text(
            json.dumps(dict(config, tokenizer_class="PreTrainedTokenizerFast"), ensure_ascii=False, indent=2)
            + "\n", encoding="utf-8")
        write_json(folder / "cases.json", cases(name, tok, config, texts, rng))
    write_json(OUT / "pre_tokenizer_cases.json", pre_tokenizer_cases(texts))
    write_json(OUT / "nfc_cases.json", nfc_cases())
    (OUT / "VERSION").write_text(f"tokenizers {tokenizers.__version__}\njinja2 {jinja2.__version__}\n")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file() and p.suffix != ".py")
    for p in sorted(OUT.rglob("*.json")):
        print(f"  {p.relative_to(OUT)}: {p.stat().st_size // 1024} KiB")
    print(f"fixtures: {total // 1024} KiB")


if __name__ == "__main__":
    main()
