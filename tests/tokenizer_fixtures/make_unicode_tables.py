#!/usr/bin/env python3
"""Generate the Unicode tables the C++ tokenizer needs (no regex library in C++ knows \\p{L}).

Writes two C++ sources (do not edit them by hand):

  tokenizer/unicode_class_tables.cpp  code point ranges of the classes the split regexes of
                                      byte-level BPE tokenizers use (\\p{L}, \\p{N}, \\p{M},
                                      the letter subcategories, \\p{Nd}) and the case-insensitive
                                      equivalents of the ASCII letters (for (?i:'s|'t|...)).
  tokenizer/unicode_nfc_tables.cpp    canonical combining classes, canonical decompositions and
                                      primary compositions, for the NFC normalizer.

The class ranges are not taken from Python's unicodedata: they are measured on the regex engine
the Hugging Face `tokenizers` library itself uses (Oniguruma), by splitting a string that holds
every code point, so the C++ splitter agrees with the library on every code point. \\s is checked
against the White_Space list hard-coded in tokenizer/unicode_classes.cpp. The NFC data comes from
unicodedata, less what the library's (older) tables do not have: decompositions it does not make
and marks whose combining class it does not know; it is checked against the library's NFC
normalizer code point by code point.

Run (needs `pip install tokenizers` into the venv; about a minute):

    /opt/golden-venv/bin/python tests/tokenizer_fixtures/make_unicode_tables.py
"""
import pathlib
import sys
import unicodedata

from tokenizers import Regex, normalizers, pre_tokenizers

ROOT = pathlib.Path(__file__).resolve().parents[2]
SEP = "\x01"  # in none of the measured classes
ALL = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]

# name in C++, Oniguruma pattern for one code point
CLASSES = [
    ("letter", r"\p{L}"),
    ("uppercase_letter", r"\p{Lu}"),
    ("lowercase_letter", r"\p{Ll}"),
    ("titlecase_letter", r"\p{Lt}"),
    ("modifier_letter", r"\p{Lm}"),
    ("other_letter", r"\p{Lo}"),
    ("mark", r"\p{M}"),
    ("number", r"\p{N}"),
    ("decimal_number", r"\p{Nd}"),
]
WHITE_SPACE = set([*range(0x9, 0xE), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028,
                   0x2029, 0x202F, 0x205F, 0x3000])


def measure(pattern, cps=ALL):
    """The code points among `cps` that `pattern` (matching one code point) matches."""
    text = SEP.join(chr(c) for c in cps) + SEP
    pieces = pre_tokenizers.Split(Regex(pattern), "isolated").pre_tokenize_str(text)
    return sorted(ord(p) for p, _ in pieces if len(p) == 1 and p != SEP)


def ranges(cps):
    out = []
    for c in cps:
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def fmt_ranges(name, rs):
    body = ",".join(f"{{0x{a:X},0x{b:X}}}" for a, b in rs)
    lines = []
    line = " "
    for item in body.split("},"):
        item = item if item.endswith("}") else item + "}"
        if len(line) + len(item) + 1 > 98:
            lines.append(line)
            line = " "
        line += " " + item + ","
    lines.append(line)
    return (f"const CodeRange k_{name}[] = {{\n" + "\n".join(lines) + "\n};\n"
            f"const size_t k_{name}_count = sizeof(k_{name}) / sizeof(k_{name}[0]);\n")


def class_tables():
    out = [HEADER, '#include "tokenizer/unicode_tables.h"\n\nnamespace moeflow::tokenizer_detail {\n']
    for name, pattern in CLASSES:
        cps = measure(pattern)
        py = None
        if name == "letter":
            py = [c for c in ALL if unicodedata.category(chr(c)).startswith("L")]
        if name == "number":
            py = [c for c in ALL if unicodedata.category(chr(c)).startswith("N")]
        note = f"; unicodedata {unicodedata.unidata_version} differs on {len(set(cps) ^ set(py))}" if py else ""
        print(f"{pattern}: {len(cps)} code points, {len(ranges(cps))} ranges{note}")
        out.append(fmt_ranges(name, ranges(cps)))
    space = set(measure(r"\s"))
    if space != WHITE_SPACE:
        sys.exit(f"Oniguruma's \\s differs from White_Space: {sorted(space ^ WHITE_SPACE)}")
    # (?i:x) for each ASCII letter x: the non-ASCII code points it also matches.
    folds = []
    for x in "abcdefghijklmnopqrstuvwxyz":
        for c in measure(f"(?i:{x})"):
            if c not in (ord(x), ord(x.upper())):
                folds.append((ord(x), c))
    print("case-insensitive extras:", [(chr(a), hex(b)) for a, b in folds])
    out.append("const CaseFold k_ascii_case_folds[] = {" +
               ", ".join(f"{{'{chr(a)}', 0x{b:X}}}" for a, b in folds) + "};\n"
               "const size_t k_ascii_case_folds_count = sizeof(k_ascii_case_folds) / "
               "sizeof(k_ascii_case_folds[0]);\n")
    out.append("\n}  // namespace moeflow::tokenizer_detail\n")
    return "\n".join(out)


def library_ccc_agrees(c, hf_nfd):
    """Whether the library reorders mark `c` as its combining class says (a mark the library's
    older tables do not know is a starter to it)."""
    k = unicodedata.combining(chr(c))
    other = "\u0323" if k >= 220 + 10 or k < 220 else "\u0301"  # a mark of another class
    for s in ("a" + chr(c) + other, "a" + other + chr(c)):
        if hf_nfd.normalize_str(s) != unicodedata.normalize("NFD", s):
            return False
    return True


def nfc_tables():
    hf_nfd = normalizers.NFD()
    ccc = [(c, unicodedata.combining(chr(c))) for c in ALL if unicodedata.combining(chr(c))]
    unknown_marks = [c for c, _ in ccc if not library_ccc_agrees(c, hf_nfd)]
    ccc = [(c, k) for c, k in ccc if c not in unknown_marks]
    ccc_ranges = []
    for c, k in ccc:
        if ccc_ranges and ccc_ranges[-1][1] == c - 1 and ccc_ranges[-1][2] == k:
            ccc_ranges[-1][1] = c
        else:
            ccc_ranges.append([c, c, k])
    hf = normalizers.NFC()
    decomp, comp, not_composed = [], [], []
    print(f"marks the library does not know: {[hex(c) for c in unknown_marks]}")
    for c in ALL:
        d = unicodedata.decomposition(chr(c))
        if not d or d.startswith("<"):
            continue
        parts = [int(p, 16) for p in d.split()]
        if hf_nfd.normalize_str(chr(c)) == chr(c):
            not_composed.append(c)  # newer than the library's tables: neither way
            continue
        decomp.append((c, parts[0], parts[1] if len(parts) > 1 else 0))
        # A primary composite, if the library composes the pair (it does not compose U+11938,
        # which Python's unicodedata does).
        if len(parts) == 2 and unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == chr(c):
            if hf.normalize_str(chr(parts[0]) + chr(parts[1])) == chr(c):
                comp.append((parts[0], parts[1], c))
            else:
                not_composed.append(c)
    comp.sort()
    # Check against the library, each code point as it is and decomposed.
    bad = [c for c in ALL if c not in not_composed and (
           hf.normalize_str(chr(c)) != unicodedata.normalize("NFC", chr(c))
           or hf.normalize_str(unicodedata.normalize("NFD", chr(c))) != unicodedata.normalize("NFC", chr(c)))]
    print(f"NFC: {len(ccc_ranges)} ccc ranges, {len(decomp)} decompositions, {len(comp)} compositions;"
          f" the library does not decompose or compose {[hex(c) for c in not_composed]};"
          f" differs from unicodedata elsewhere on {len(bad)} code points {[hex(c) for c in bad[:10]]}")

    def rows(items, fmt, per_line):
        lines = []
        for i in range(0, len(items), per_line):
            lines.append("  " + " ".join(fmt(x) + "," for x in items[i:i + per_line]))
        return "\n".join(lines)

    return (HEADER + '#include "tokenizer/unicode_tables.h"\n\nnamespace moeflow::tokenizer_detail {\n\n'
            "const CombiningClassRange k_combining_classes[] = {\n" +
            rows(ccc_ranges, lambda r: f"{{0x{r[0]:X},0x{r[1]:X},{r[2]}}}", 5) + "\n};\n"
            "const size_t k_combining_classes_count =\n"
            "    sizeof(k_combining_classes) / sizeof(k_combining_classes[0]);\n\n"
            "const Decomposition k_decompositions[] = {\n" +
            rows(decomp, lambda r: f"{{0x{r[0]:X},0x{r[1]:X},0x{r[2]:X}}}", 4) + "\n};\n"
            "const size_t k_decompositions_count = sizeof(k_decompositions) / sizeof(k_decompositions[0]);\n\n"
            "const Composition k_compositions[] = {\n" +
            rows(comp, lambda r: f"{{0x{r[0]:X},0x{r[1]:X},0x{r[2]:X}}}", 4) + "\n};\n"
            "const size_t k_compositions_count = sizeof(k_compositions) / sizeof(k_compositions[0]);\n\n"
            "}  // namespace moeflow::tokenizer_detail\n")


HEADER = ("// Generated by tests/tokenizer_fixtures/make_unicode_tables.py; do not edit.\n"
          "// clang-format off\n")

if __name__ == "__main__":
    (ROOT / "tokenizer/unicode_class_tables.cpp").write_text(class_tables())
    (ROOT / "tokenizer/unicode_nfc_tables.cpp").write_text(nfc_tables())
