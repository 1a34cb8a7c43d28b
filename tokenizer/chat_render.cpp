// apply_chat_template: each recognised family's template, written out in C++. Each function
// follows its Jinja source line by line, including the errors it raises.
#include "core/error.h"
#include "tokenizer/chat_template.h"

namespace moeflow {
namespace {

[[noreturn]] void raise(ChatFormat format, const std::string& what) {
  throw Error("chat template (" + std::string(chat_format_name(format)) + "): " + what);
}

std::string mistral_instruct(const ChatTemplate& t, const std::vector<ChatMessage>& messages) {
  std::string out = t.bos_token;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if ((m.role == "user") != (i % 2 == 0)) {
      raise(t.format, "Conversation roles must alternate user/assistant/user/assistant/...");
    }
    if (m.role == "user") {
      out += "[INST] " + m.content + " [/INST]";
    } else if (m.role == "assistant") {
      out += m.content + t.eos_token;
    } else {
      raise(t.format, "Only user and assistant roles are supported!");
    }
  }
  return out;
}

std::string mistral_instruct_system(const ChatTemplate& t,
                                    const std::vector<ChatMessage>& messages) {
  const bool has_system = messages[0].role == "system";
  const size_t first = has_system ? 1 : 0;
  std::string out = t.bos_token;
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if ((m.role == "user") != ((i - first) % 2 == 0)) {
      raise(t.format,
            "After the optional system message, conversation roles must alternate "
            "user/assistant/user/assistant/...");
    }
    if (m.role == "user") {
      if (i == first && has_system) {
        out += " [INST] " + messages[0].content + "\n\n" + m.content + " [/INST]";
      } else {
        out += " [INST] " + m.content + " [/INST]";
      }
    } else if (m.role == "assistant") {
      out += " " + m.content + t.eos_token;
    } else {
      raise(t.format,
            "Only user and assistant roles are supported, with the exception of an initial "
            "optional system message!");
    }
  }
  return out;
}

std::string chatml(const ChatTemplate& t, const std::vector<ChatMessage>& messages,
                   bool add_generation_prompt) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0 && !t.default_system.empty() && messages[0].role != "system") {
      out += "<|im_start|>system\n" + t.default_system + "<|im_end|>\n";
    }
    out += "<|im_start|>" + messages[i].role + "\n" + messages[i].content + "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string tulu(const ChatTemplate& t, const std::vector<ChatMessage>& messages,
                 bool add_generation_prompt) {
  std::string out = t.leading_bos ? t.bos_token : "";
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const bool last = i + 1 == messages.size();
    if (m.role == "system") {
      out += "<|system|>\n" + m.content + "\n";
    } else if (m.role == "user") {
      out += "<|user|>\n" + m.content + "\n";
    } else if (m.role == "assistant") {
      out += "<|assistant|>\n" + m.content + t.eos_token + (last ? "" : "\n");
    }
    if (last && add_generation_prompt) out += "<|assistant|>\n";
  }
  return out;
}

std::string deepseek(const ChatTemplate& t, const std::vector<ChatMessage>& messages,
                     bool add_generation_prompt) {
  std::string out = t.bos_token;
  for (const ChatMessage& m : messages) {
    if (m.role == "user") {
      out += "User: " + m.content + "\n\n";
    } else if (m.role == "assistant") {
      out += "Assistant: " + m.content + t.eos_token;
    } else if (m.role == "system") {
      out += m.content + "\n\n";
    }
  }
  if (add_generation_prompt) out += "Assistant:";
  return out;
}

}  // namespace

std::string apply_chat_template(const ChatTemplate& t, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt) {
  // transformers refuses an empty conversation before rendering.
  if (messages.empty()) throw Error("apply_chat_template: the conversation is empty");
  switch (t.format) {
    case ChatFormat::mistral_instruct:
      return mistral_instruct(t, messages);
    case ChatFormat::mistral_instruct_system:
      return mistral_instruct_system(t, messages);
    case ChatFormat::chatml:
      return chatml(t, messages, add_generation_prompt);
    case ChatFormat::tulu:
      return tulu(t, messages, add_generation_prompt);
    case ChatFormat::deepseek:
      return deepseek(t, messages, add_generation_prompt);
  }
  return "";
}

}  // namespace moeflow
