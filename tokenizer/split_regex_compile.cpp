// Parsing a split pattern into a tree and compiling the tree into the backtracking program that
// SplitRegex runs.
#include "tokenizer/split_regex_compile.h"

#include <optional>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace moeflow::tokenizer_detail {
namespace {

using Op = SplitRegex::Op;
using CharSet = SplitRegex::CharSet;

struct Node {
  enum class Kind { empty, set, concat, alternate, repeat, assertion, lookahead };
  Kind kind = Kind::empty;
  int32_t set = -1;
  std::vector<Node> children;
  int32_t min = 0, max = -1;  // max -1: unbounded
  bool greedy = true;
  Op op = Op::match;  // assertion / lookahead kind
};

Node make_node(Node::Kind kind) {
  Node n;
  n.kind = kind;
  return n;
}
Node assertion(Op op) {
  Node n = make_node(Node::Kind::assertion);
  n.op = op;
  return n;
}

bool nullable(const Node& n) {
  switch (n.kind) {
    case Node::Kind::set:
      return false;
    case Node::Kind::concat:
      for (const Node& c : n.children) {
        if (!nullable(c)) return false;
      }
      return true;
    case Node::Kind::alternate:
      for (const Node& c : n.children) {
        if (nullable(c)) return true;
      }
      return false;
    case Node::Kind::repeat:
      return n.min == 0 || nullable(n.children[0]);
    default:
      return true;
  }
}

bool is_hex(char32_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
uint32_t hex_value(char32_t c) {
  if (c <= '9') return c - '0';
  return (c | 0x20) - 'a' + 10;
}

class Parser {
 public:
  Parser(std::string_view pattern, const std::string& context, std::vector<CharSet>& sets)
      : pattern_text_(pattern), p_(decode_utf8(pattern)), context_(context), sets_(sets) {}

  Node parse() {
    Node n = parse_alternation(false);
    if (i_ < p_.size()) fail("unbalanced ')'");
    return n;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(context_ + ": regex \"" + pattern_text_ + "\": " + what + " (at character " +
                std::to_string(i_) + "; see docs/tokenizer.md for the supported syntax)");
  }
  bool at_end() const { return i_ >= p_.size(); }
  char32_t peek(size_t k = 0) const { return i_ + k < p_.size() ? p_[i_ + k] : 0; }

  Node parse_alternation(bool icase) {
    Node alt = make_node(Node::Kind::alternate);
    alt.children.push_back(parse_concat(icase));
    while (!at_end() && peek() == '|') {
      ++i_;
      alt.children.push_back(parse_concat(icase));
    }
    return alt.children.size() == 1 ? std::move(alt.children[0]) : std::move(alt);
  }

  Node parse_concat(bool icase) {
    Node cat = make_node(Node::Kind::concat);
    while (!at_end() && peek() != '|' && peek() != ')') cat.children.push_back(parse_repeat(icase));
    return cat;
  }

  Node parse_repeat(bool icase) {
    Node atom = parse_atom(icase);
    int32_t min = 0, max = 0;
    if (!parse_quantifier(min, max)) return atom;
    if (atom.kind == Node::Kind::assertion || atom.kind == Node::Kind::lookahead) {
      fail("quantifier after an assertion");
    }
    bool greedy = true;
    if (peek() == '?') {
      greedy = false;
      ++i_;
    } else if (peek() == '+') {
      fail("unsupported possessive quantifier");
    }
    if (int32_t a = 0, b = 0; parse_quantifier(a, b)) fail("unsupported nested quantifier");
    if (max == -1 && nullable(atom)) fail("repetition of something that can match nothing");
    Node rep = make_node(Node::Kind::repeat);
    rep.min = min;
    rep.max = max;
    rep.greedy = greedy;
    rep.children.push_back(std::move(atom));
    return rep;
  }

  // ? * + {n} {n,} {,m} {n,m}; a '{' that starts none of these is a literal.
  bool parse_quantifier(int32_t& min, int32_t& max) {
    if (at_end()) return false;
    const char32_t c = peek();
    if (c == '?' || c == '*' || c == '+') {
      ++i_;
      min = c == '+' ? 1 : 0;
      max = c == '?' ? 1 : -1;
      return true;
    }
    if (c != '{') return false;
    size_t k = i_ + 1;
    auto number = [&](int32_t& out) {
      const size_t start = k;
      out = 0;
      while (k < p_.size() && p_[k] >= '0' && p_[k] <= '9' && out < 100000) {
        out = out * 10 + static_cast<int32_t>(p_[k] - '0');
        ++k;
      }
      return k > start;
    };
    int32_t a = 0, b = 0;
    const bool has_a = number(a);
    if (k < p_.size() && p_[k] == '}' && has_a) {
      min = max = a;
    } else if (k < p_.size() && p_[k] == ',') {
      ++k;
      const bool has_b = number(b);
      if (!(k < p_.size() && p_[k] == '}') || (!has_a && !has_b)) return false;
      min = has_a ? a : 0;
      max = has_b ? b : -1;
    } else {
      return false;
    }
    i_ = k + 1;
    if (max != -1 && max < min) fail("quantifier {n,m} with m < n");
    if (min > 1000 || max > 1000) fail("repetition count above 1000");
    return true;
  }

  Node set_node(CharSet set) {
    for (char32_t c = 0; c < 128; ++c) {
      if (set.contains_slow(c)) set.ascii[c >> 6] |= uint64_t{1} << (c & 63);
    }
    sets_.push_back(std::move(set));
    Node n = make_node(Node::Kind::set);
    n.set = static_cast<int32_t>(sets_.size() - 1);
    return n;
  }

  Node literal(char32_t c, bool icase) {
    CharSet set;
    const bool ascii_letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (icase && ascii_letter) {
      for (char32_t v : ascii_case_variants(c)) set.ranges.push_back({v, v});
    } else {
      if (icase && c >= 128 && (in_class(UnicodeClass::letter, c))) {
        fail("unsupported case-insensitive matching of a non-ASCII letter");
      }
      set.ranges.push_back({c, c});
    }
    return set_node(std::move(set));
  }

  Node parse_atom(bool icase) {
    const char32_t c = p_[i_++];
    switch (c) {
      case '(':
        return parse_group(icase);
      case '[':
        return parse_class(icase);
      case '.': {
        CharSet set;
        set.negated = true;
        set.ranges.push_back({'\n', '\n'});
        return set_node(std::move(set));
      }
      case '^':
        return assertion(Op::line_start);
      case '$':
        return assertion(Op::line_end);
      case '*':
      case '+':
      case '?':
        --i_;
        fail("quantifier with nothing to repeat");
      case '\\':
        return parse_escape_atom(icase);
      default:
        return literal(c, icase);
    }
  }

  Node parse_group(bool icase) {
    Node body;
    if (peek() == '?') {
      const char32_t kind = peek(1);
      if (kind == ':') {
        i_ += 2;
        body = parse_alternation(icase);
      } else if (kind == 'i' && peek(2) == ':') {
        i_ += 3;
        body = parse_alternation(true);
      } else if (kind == '=' || kind == '!') {
        i_ += 2;
        Node look = make_node(Node::Kind::lookahead);
        look.op = kind == '=' ? Op::lookahead : Op::negative_lookahead;
        look.children.push_back(parse_alternation(icase));
        body = std::move(look);
      } else {
        fail("unsupported group (?" + encode_utf8(std::u32string(1, kind)) +
             " (the groups supported are ( ), (?: ), (?i: ), (?= ) and (?! ))");
      }
    } else {
      body = parse_alternation(icase);  // a capturing group; captures are not used
    }
    if (peek() != ')') fail("missing ')'");
    ++i_;
    return body;
  }

  struct Escape {
    enum class Kind { character, cls, assertion } kind;
    char32_t c = 0;
    UnicodeClass cls = UnicodeClass::letter;
    bool negated = false;
    Op op = Op::match;
  };

  // Reads what follows a backslash.
  Escape parse_escape(bool in_class) {
    if (at_end()) fail("pattern ends with a backslash");
    const char32_t c = p_[i_++];
    auto chr = [](char32_t v) { return Escape{.kind = Escape::Kind::character, .c = v}; };
    switch (c) {
      case 'n':
        return chr('\n');
      case 'r':
        return chr('\r');
      case 't':
        return chr('\t');
      case 'f':
        return chr('\f');
      case 'v':
        return chr('\v');
      case 'a':
        return chr('\a');
      case 'e':
        return chr(0x1B);
      case 's':
      case 'S':
        return Escape{
            .kind = Escape::Kind::cls, .cls = UnicodeClass::white_space, .negated = c == 'S'};
      case 'p':
      case 'P':
        return parse_property(c == 'P');
      case 'x':
      case 'u':
        return chr(parse_hex_escape(c));
      case 'A':
      case 'z':
      case 'Z':
        if (in_class) fail("anchor inside a character class");
        return Escape{
            .kind = Escape::Kind::assertion,
            .op = c == 'A' ? Op::text_start : (c == 'z' ? Op::text_end : Op::text_end_newline)};
      default:
        break;
    }
    const bool ascii_alnum =
        (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (ascii_alnum) {
      --i_;
      fail("unsupported escape \\" + encode_utf8(std::u32string(1, c)));
    }
    return chr(c);  // escaped punctuation or any other character stands for itself
  }

  Escape parse_property(bool negated) {
    std::u32string name;
    if (peek() == '{') {
      ++i_;
      if (peek() == '^') {
        negated = !negated;
        ++i_;
      }
      while (!at_end() && peek() != '}') name += p_[i_++];
      if (at_end()) fail("unterminated \\p{");
      ++i_;
    } else if (!at_end()) {
      name = p_[i_++];
    }
    const auto cls = unicode_class_named(encode_utf8(name));
    if (!cls) fail("unsupported Unicode property \\p{" + encode_utf8(name) + "}");
    return Escape{.kind = Escape::Kind::cls, .cls = *cls, .negated = negated};
  }

  char32_t parse_hex_escape(char32_t kind) {
    const bool braced = kind == 'x' && peek() == '{';
    if (braced) ++i_;
    const size_t most = braced ? 8 : (kind == 'x' ? 2 : 4);
    uint32_t value = 0;
    size_t digits = 0;
    while (!at_end() && is_hex(peek()) && digits < most) {
      value = value * 16 + hex_value(p_[i_++]);
      ++digits;
    }
    if (braced) {
      if (peek() != '}' || digits == 0) fail("malformed \\x{...}");
      ++i_;
    } else if (digits == 0 || (kind == 'u' && digits != 4)) {
      fail("malformed hexadecimal escape");
    }
    if (value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) fail("escape out of range");
    return value;
  }

  Node parse_escape_atom(bool icase) {
    const Escape e = parse_escape(false);
    if (e.kind == Escape::Kind::assertion) return assertion(e.op);
    if (e.kind == Escape::Kind::character) return literal(e.c, icase);
    CharSet set;
    set.classes.push_back({e.cls, e.negated});
    return set_node(std::move(set));
  }

  Node parse_class(bool icase) {
    if (icase) fail("unsupported character class inside (?i:...)");
    CharSet set;
    if (peek() == '^') {
      set.negated = true;
      ++i_;
    }
    bool first = true;
    while (true) {
      if (at_end()) fail("missing ']'");
      char32_t c = p_[i_];
      if (c == ']' && !first) {
        ++i_;
        break;
      }
      first = false;
      if (c == '[') fail("unsupported nested character class");
      if (c == '&' && peek(1) == '&') fail("unsupported class intersection &&");
      ++i_;
      if (c == '\\') {
        const Escape e = parse_escape(true);
        if (e.kind == Escape::Kind::cls) {
          set.classes.push_back({e.cls, e.negated});
          continue;
        }
        c = e.c;
      }
      // A range unless the '-' is the last character of the class.
      if (peek() == '-' && peek(1) != ']' && i_ + 1 < p_.size()) {
        ++i_;
        char32_t last = p_[i_++];
        if (last == '\\') {
          const Escape e = parse_escape(true);
          if (e.kind != Escape::Kind::character) fail("class range ending in a class");
          last = e.c;
        } else if (last == '[') {
          fail("unsupported nested character class");
        }
        if (last < c) fail("class range out of order");
        set.ranges.push_back({c, last});
      } else {
        set.ranges.push_back({c, c});
      }
    }
    return set_node(std::move(set));
  }

  std::string pattern_text_;
  std::u32string p_;
  size_t i_ = 0;
  const std::string& context_;
  std::vector<CharSet>& sets_;
};

class Compiler {
 public:
  explicit Compiler(std::vector<SplitRegex::Instruction>& program) : program_(program) {}

  void emit(const Node& n) {
    switch (n.kind) {
      case Node::Kind::empty:
        return;
      case Node::Kind::set:
        push(Op::character, n.set);
        return;
      case Node::Kind::concat:
        for (const Node& c : n.children) emit(c);
        return;
      case Node::Kind::alternate: {
        std::vector<size_t> jumps;
        for (size_t k = 0; k + 1 < n.children.size(); ++k) {
          const size_t split = push(Op::split);
          program_[split].a = here();
          emit(n.children[k]);
          jumps.push_back(push(Op::jump));
          program_[split].b = here();
        }
        emit(n.children.back());
        for (size_t j : jumps) program_[j].a = here();
        return;
      }
      case Node::Kind::repeat:
        emit_repeat(n);
        return;
      case Node::Kind::assertion:
        push(n.op);
        return;
      case Node::Kind::lookahead: {
        const size_t look = push(n.op);
        program_[look].a = here();
        emit(n.children[0]);
        push(Op::match);
        program_[look].b = here();
        return;
      }
    }
  }

 private:
  int32_t here() const { return static_cast<int32_t>(program_.size()); }
  size_t push(Op op, int32_t a = 0) {
    program_.push_back({op, a, 0});
    return program_.size() - 1;
  }
  // Points a split at the body (taken first when greedy) and at the exit.
  void aim(size_t split, int32_t body, int32_t exit, bool greedy) {
    program_[split].a = greedy ? body : exit;
    program_[split].b = greedy ? exit : body;
  }

  void emit_repeat(const Node& n) {
    const Node& body = n.children[0];
    for (int32_t k = 0; k < n.min; ++k) emit(body);
    if (n.max == -1) {
      const size_t split = push(Op::split);
      emit(body);
      push(Op::jump, static_cast<int32_t>(split));
      aim(split, static_cast<int32_t>(split + 1), here(), n.greedy);
      return;
    }
    std::vector<size_t> splits;
    for (int32_t k = n.min; k < n.max; ++k) {
      splits.push_back(push(Op::split));
      emit(body);
    }
    for (size_t s : splits) aim(s, static_cast<int32_t>(s + 1), here(), n.greedy);
  }

  std::vector<SplitRegex::Instruction>& program_;
};

}  // namespace

void compile_split_regex(std::string_view pattern, const std::string& context,
                         std::vector<SplitRegex::CharSet>& sets,
                         std::vector<SplitRegex::Instruction>& program) {
  if (find_invalid_utf8(pattern) != std::string_view::npos) {
    throw Error(context + ": regex is not valid UTF-8");
  }
  Parser parser(pattern, context, sets);
  const Node root = parser.parse();
  Compiler(program).emit(root);
  program.push_back({SplitRegex::Op::match, 0, 0});
}

}  // namespace moeflow::tokenizer_detail
