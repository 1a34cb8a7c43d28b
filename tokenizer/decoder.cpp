#include "tokenizer/decoder.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace moeflow::tokenizer_detail {
namespace {

// "<0xNN>" as the crate's ByteFallback reads it (u8::from_str_radix on the two characters).
bool byte_token(std::string_view token, uint8_t& byte) {
  if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>') return false;
  unsigned value = 0;
  size_t i = 3;
  if (token[3] == '+') ++i;  // from_str_radix accepts a leading '+'
  for (; i < 5; ++i) {
    const char c = token[i];
    unsigned d = 0;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return false;
    }
    value = value * 16 + d;
  }
  byte = static_cast<uint8_t>(value);
  return true;
}

}  // namespace

Decoder Decoder::from_json(const JsonField& node) {
  Decoder d;
  if (node.is_null()) {
    Step join{};
    join.kind = Step::Kind::join;
    d.steps_.push_back(std::move(join));
  } else {
    d.add(node);
  }
  return d;
}

void Decoder::add(const JsonField& node) {
  node.require_object();
  const std::string type = node.string("type");
  Step step{};
  // After Fuse or ByteLevel the chain sees one growing token, so steps that need whole tokens
  // cannot follow (no published tokenizer puts them there).
  auto needs_whole_tokens = [&] {
    if (fused_) node.at("type").fail(type + " after Fuse or ByteLevel is not supported");
  };
  if (type == "Sequence") {
    const JsonField list = node.at("decoders");
    for (size_t i = 0; i < list.array_size(); ++i) add(list.at(i));
    return;
  } else if (type == "Replace") {
    step.kind = Step::Kind::replace;
    step.pattern = Pattern::from_json(node.at("pattern"));
    step.content = node.string("content");
    const JsonField pattern = node.at("pattern");
    if (fused_ && !(pattern.has("String") && decode_utf8(pattern.string("String")).size() == 1)) {
      node.fail("Replace after Fuse or ByteLevel must replace a single character");
    }
  } else if (type == "ByteFallback") {
    needs_whole_tokens();
    step.kind = Step::Kind::byte_fallback;
  } else if (type == "Fuse") {
    step.kind = Step::Kind::fuse;
    fused_ = true;
  } else if (type == "Strip") {
    step.kind = Step::Kind::strip;
    const std::u32string content = decode_utf8(node.string("content"));
    if (content.size() != 1) node.at("content").fail("expected one character");
    step.character = content[0];
    step.start = static_cast<size_t>(std::max<int64_t>(0, node.integer("start")));
    step.stop = static_cast<size_t>(std::max<int64_t>(0, node.integer("stop")));
  } else if (type == "ByteLevel") {
    needs_whole_tokens();
    step.kind = Step::Kind::byte_level;
    fused_ = true;
  } else if (type == "Metaspace") {
    step.kind = Step::Kind::metaspace;
    const std::u32string replacement = decode_utf8(node.string("replacement"));
    if (replacement.size() != 1) node.at("replacement").fail("expected one character");
    step.character = replacement[0];
    if (node.has("prepend_scheme")) {
      step.drop_first = node.string("prepend_scheme") != "never";
    } else {
      step.drop_first = node.boolean("add_prefix_space", true);
    }
  } else {
    node.at("type").fail("unsupported decoder \"" + type +
                         "\" (supported: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, "
                         "Sequence)");
  }
  steps_.push_back(std::move(step));
}

DecodeRun::DecodeRun(const Decoder& decoder) : decoder_(&decoder), states_(decoder.steps_.size()) {}

void DecodeRun::push(std::string_view token, std::string& out) {
  feed(0, Piece{std::string(token), false}, out);
}

void DecodeRun::finish(std::string& out) {
  for (size_t i = 0; i < states_.size(); ++i) flush(i, out);
  states_.assign(states_.size(), State{});
}

void DecodeRun::feed(size_t i, Piece piece, std::string& out) {
  if (i == states_.size()) {
    out += piece.text;
    return;
  }
  const Decoder::Step& step = decoder_->steps_[i];
  State& s = states_[i];
  using Kind = Decoder::Step::Kind;
  switch (step.kind) {
    case Kind::replace: {
      const std::u32string chars = decode_utf8(piece.text);
      std::string text;
      for (const MatchSpan& span : step.pattern->find(chars)) {
        text +=
            span.is_match
                ? step.content
                : encode_utf8(std::u32string_view(chars).substr(span.begin, span.end - span.begin));
      }
      piece.text = std::move(text);
      feed(i + 1, std::move(piece), out);
      return;
    }
    case Kind::byte_fallback: {
      uint8_t byte = 0;
      if (byte_token(piece.text, byte)) {
        s.bytes += static_cast<char>(byte);  // a run is only final once a non-byte token ends it
        return;
      }
      flush(i, out);
      feed(i + 1, std::move(piece), out);
      return;
    }
    case Kind::fuse:
      piece.continues = s.emitted;
      s.emitted = true;
      feed(i + 1, std::move(piece), out);
      return;
    case Kind::strip: {
      if (!piece.continues) {
        if (s.tokens > 0) end_strip_token(i, out);
        ++s.tokens;
        s.strip_left = step.start;
        s.emitted = false;
      }
      std::string text;
      for (char32_t c : decode_utf8(piece.text)) {
        if (s.strip_left > 0 && c == step.character) {
          --s.strip_left;
          continue;
        }
        s.strip_left = 0;
        if (step.stop > 0 && c == step.character) {
          append_utf8(s.held, c);  // stripped if nothing but more of it follows in this token
          continue;
        }
        text += s.held;
        s.held.clear();
        append_utf8(text, c);
      }
      if (!text.empty()) {
        const bool continues = s.emitted;
        s.emitted = true;
        feed(i + 1, Piece{std::move(text), continues}, out);
      }
      return;
    }
    case Kind::byte_level: {
      // A token spelled in the byte-level alphabet becomes those bytes; any other token (an
      // added token with other characters) stands for its own UTF-8, as in the crate.
      const std::u32string chars = decode_utf8(piece.text);
      std::string bytes;
      bool all_mapped = true;
      for (char32_t c : chars) {
        const auto b = byte_level_byte(c);
        if (!b) {
          all_mapped = false;
          break;
        }
        bytes += static_cast<char>(*b);
      }
      s.bytes += all_mapped ? bytes : piece.text;
      std::string text;
      s.bytes.erase(0, append_utf8_lossy(text, s.bytes, false));
      if (!text.empty()) {
        const bool continues = s.emitted;
        s.emitted = true;
        feed(i + 1, Piece{std::move(text), continues}, out);
      }
      return;
    }
    case Kind::metaspace: {
      if (!piece.continues) ++s.tokens;
      const bool first = s.tokens == 1;
      std::string text;
      for (char32_t c : decode_utf8(piece.text)) {
        if (c != step.character) {
          append_utf8(text, c);
        } else if (!(first && step.drop_first)) {
          text += ' ';
        }
      }
      piece.text = std::move(text);
      feed(i + 1, std::move(piece), out);
      return;
    }
    case Kind::join:
      if (!piece.continues && s.tokens++ > 0) piece.text.insert(0, " ");
      feed(i + 1, std::move(piece), out);
      return;
  }
}

void DecodeRun::end_strip_token(size_t i, std::string& out) {
  const Decoder::Step& step = decoder_->steps_[i];
  State& s = states_[i];
  // Drops up to `stop` of the held trailing characters; the rest were not trailing after all.
  std::u32string held = decode_utf8(s.held);
  held.resize(held.size() - std::min(held.size(), step.stop));
  s.held.clear();
  std::string text = encode_utf8(held);
  if (!text.empty() || !s.emitted) {
    const bool continues = s.emitted;
    s.emitted = true;
    feed(i + 1, Piece{std::move(text), continues}, out);
  }
}

void DecodeRun::flush(size_t i, std::string& out) {
  const Decoder::Step& step = decoder_->steps_[i];
  State& s = states_[i];
  using Kind = Decoder::Step::Kind;
  switch (step.kind) {
    case Kind::byte_fallback:
      // The whole run decodes as UTF-8, or each of its bytes becomes U+FFFD (as in the crate).
      if (!s.bytes.empty()) {
        if (find_invalid_utf8(s.bytes) == std::string::npos) {
          feed(i + 1, Piece{s.bytes, false}, out);
        } else {
          const size_t n = s.bytes.size();
          for (size_t k = 0; k < n; ++k) {
            feed(i + 1, Piece{std::string(k_replacement_character), false}, out);
          }
        }
        s.bytes.clear();
      }
      return;
    case Kind::strip:
      if (s.tokens > 0) end_strip_token(i, out);
      return;
    case Kind::byte_level: {
      std::string text;
      append_utf8_lossy(text, s.bytes, true);
      s.bytes.clear();
      if (!text.empty()) {
        const bool continues = s.emitted;
        s.emitted = true;
        feed(i + 1, Piece{std::move(text), continues}, out);
      }
      return;
    }
    default:
      return;
  }
}

}  // namespace moeflow::tokenizer_detail
