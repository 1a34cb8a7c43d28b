#include "tokenizer/chat_template.h"

#include <algorithm>
#include <initializer_list>
#include <optional>

#include "core/error.h"
#include "tokenizer/chat_template_text.h"
#include "tokenizer/tokenizer_config.h"
#include "tokenizer/utf8.h"

namespace moeflow {
namespace {

using tokenizer_detail::TemplateText;

// A family's template: expressions it must contain (in canonical form) and the only string
// literals it may contain, so that a variant that prints anything else is not taken for it.
struct Family {
  ChatFormat format;
  std::initializer_list<std::string_view> expressions;
  std::initializer_list<std::string_view> literals;
};

constexpr std::string_view k_alternate = "{%if(message['role']=='user')!=(loop.index0%2==0)%}";

const Family k_families[] = {
    {ChatFormat::mistral_instruct,
     {"{{bos_token}}", k_alternate, "{{'[INST] '+message['content']+' [/INST]'}}",
      "{{message['content']+eos_token}}"},
     {"role", "user", "assistant", "content", "[INST] ", " [/INST]",
      "Conversation roles must alternate user/assistant/user/assistant/...",
      "Only user and assistant roles are supported!"}},
    {ChatFormat::mistral_instruct_system,
     {"{{bos_token}}", k_alternate, "{%ifmessages[0]['role']=='system'%}",
      "{{' [INST] '+system_message+'\n\n'+message['content']+' [/INST]'}}",
      "{{' [INST] '+message['content']+' [/INST]'}}", "{{' '+message['content']+eos_token}}"},
     {"role", "system", "user", "assistant", "content", " [INST] ", "\n\n", " [/INST]", " ",
      "After the optional system message, conversation roles must alternate "
      "user/assistant/user/assistant/...",
      "Only user and assistant roles are supported, with the exception of an initial optional "
      "system message!"}},
    {ChatFormat::chatml,
     {"{{'<|im_start|>'+message['role']+'\n'+message['content']+'<|im_end|>\n'}}",
      "{%ifadd_generation_prompt%}{{'<|im_start|>assistant\n'}}{%endif%}"},
     {"role", "content", "system", "<|im_start|>", "\n", "<|im_end|>\n",
      "<|im_start|>assistant\n"}},
    {ChatFormat::tulu,
     {"{{'<|system|>\n'+message['content']+'\n'}}", "{{'<|user|>\n'+message['content']+'\n'}}",
      "{{'<|assistant|>\n'+message['content']+eos_token+'\n'}}",
      "{{'<|assistant|>\n'+message['content']+eos_token}}",
      "{%ifloop.lastandadd_generation_prompt%}{{'<|assistant|>\n'}}{%endif%}"},
     {"role", "system", "user", "assistant", "content", "<|system|>\n", "\n", "<|user|>\n",
      "<|assistant|>\n"}},
    {ChatFormat::deepseek,
     {"{{bos_token}}", "{{'User: '+message['content']+'\n\n'}}",
      "{{'Assistant: '+message['content']+eos_token}}", "{{message['content']+'\n\n'}}",
      "{%ifadd_generation_prompt%}{{'Assistant:'}}{%endif%}"},
     {"role", "user", "assistant", "system", "content", "User: ", "\n\n",
      "Assistant: ", "Assistant:"}},
};

// ChatML's default system message: {% if loop.first and messages[0]['role'] != 'system' %}
// {{ '<|im_start|>system\n...<|im_end|>\n' }}{% endif %}.
std::optional<std::string> chatml_default_system(const TemplateText& text) {
  constexpr std::string_view guard = "{%ifloop.firstandmessages[0]['role']!='system'%}{{'";
  if (text.canonical.find(guard) == std::string::npos) return std::nullopt;
  constexpr std::string_view head = "<|im_start|>system\n", tail = "<|im_end|>\n";
  for (const std::string& literal : text.literals) {
    if (literal.size() >= head.size() + tail.size() && literal.starts_with(head) &&
        literal.ends_with(tail)) {
      return literal.substr(head.size(), literal.size() - head.size() - tail.size());
    }
  }
  return std::nullopt;
}

bool matches(const Family& family, const TemplateText& text, const std::string& extra_literal) {
  for (std::string_view e : family.expressions) {
    if (text.canonical.find(e) == std::string::npos) return false;
  }
  for (const std::string& literal : text.literals) {
    const bool allowed =
        literal == extra_literal ||
        std::find(family.literals.begin(), family.literals.end(), literal) != family.literals.end();
    if (!allowed) return false;
  }
  return true;
}

// The first characters of a template, on one line, for error messages.
std::string preview(std::string_view text) {
  const std::u32string chars = tokenizer_detail::decode_utf8(
      text.substr(0, std::min(text.size(), tokenizer_detail::find_invalid_utf8(text))));
  std::string out;
  for (size_t i = 0; i < chars.size() && i < 60; ++i) {
    if (chars[i] == '\n') {
      out += "\\n";
    } else {
      tokenizer_detail::append_utf8(out, chars[i]);
    }
  }
  return out + (chars.size() > 60 ? "..." : "");
}

}  // namespace

std::string_view chat_format_name(ChatFormat format) {
  switch (format) {
    case ChatFormat::mistral_instruct:
      return "Mistral [INST]";
    case ChatFormat::mistral_instruct_system:
      return "Mistral [INST] with system message";
    case ChatFormat::chatml:
      return "ChatML";
    case ChatFormat::tulu:
      return "Tulu (OLMoE)";
    case ChatFormat::deepseek:
      return "DeepSeek";
  }
  return "?";
}

ChatTemplate ChatTemplate::recognise(std::string_view text, std::string bos_token,
                                     std::string eos_token, const std::string& source) {
  const TemplateText read = tokenizer_detail::read_template_text(text);
  if (!read.prints_raw_text) {
    const std::optional<std::string> system = chatml_default_system(read);
    for (const Family& family : k_families) {
      const bool chatml = family.format == ChatFormat::chatml;
      const std::string extra =
          chatml && system ? "<|im_start|>system\n" + *system + "<|im_end|>\n" : "";
      if (!matches(family, read, extra)) continue;
      ChatTemplate t;
      t.format = family.format;
      t.bos_token = std::move(bos_token);
      t.eos_token = std::move(eos_token);
      if (chatml && system) t.default_system = *system;
      t.leading_bos = read.canonical.starts_with("{{bos_token}}");
      return t;
    }
  }
  throw Error(source + ": chat template not supported: \"" + preview(text) +
              "\" (recognised: the published templates of Mixtral/Mistral [INST], ChatML as in "
              "Qwen2-MoE, OLMoE's Tulu format, DeepSeek-MoE's User:/Assistant: format)");
}

ChatTemplate ChatTemplate::load(const std::filesystem::path& dir) {
  const TokenizerConfig config = TokenizerConfig::load(dir);
  if (!config.chat_template) {
    throw Error(config.source + ": field chat_template: this model has no chat template");
  }
  return recognise(*config.chat_template, config.bos_token, config.eos_token,
                   config.source + ": field chat_template");
}

}  // namespace moeflow
