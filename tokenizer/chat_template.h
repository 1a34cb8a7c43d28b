#pragma once
// Chat templates without a Jinja interpreter: the templates the supported model families publish
// in tokenizer_config.json are recognised by their text and rendered in C++, to the same string
// transformers' apply_chat_template renders. An unrecognised template is refused.
//
// Recognised (layout-insensitive; see tokenizer/chat_template_text.h):
//   mistral_instruct         Mixtral-8x7B-Instruct-v0.1 (original): <s>[INST] ... [/INST]...</s>
//   mistral_instruct_system  the later Mistral template with an optional leading system message
//   chatml                   Qwen1.5-MoE / Qwen2-MoE: <|im_start|>role\ncontent<|im_end|>\n,
//                            with the template's default system message when it has one
//   tulu                     OLMoE-Instruct: <|user|>\n...\n<|assistant|>\n...
//   deepseek                 deepseek-moe-16b-chat: User: ...\n\nAssistant: ...
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace moeflow {

struct ChatMessage {
  std::string role, content;
};

enum class ChatFormat { mistral_instruct, mistral_instruct_system, chatml, tulu, deepseek };

std::string_view chat_format_name(ChatFormat format);

struct ChatTemplate {
  ChatFormat format = ChatFormat::chatml;
  std::string bos_token, eos_token;
  std::string default_system;  // chatml: the system message added when none is given
  bool leading_bos = true;     // tulu: the template starts with {{ bos_token }}

  // Recognises a template's text; throws moeflow::Error "<source>: chat template not supported:
  // ..." otherwise.
  static ChatTemplate recognise(std::string_view text, std::string bos_token, std::string eos_token,
                                const std::string& source);
  // From `dir`/tokenizer_config.json (chat_template, bos_token, eos_token).
  static ChatTemplate load(const std::filesystem::path& dir);
};

// The prompt text for `messages` (tokenize it with add_special_tokens = false: the template
// already holds the BOS where the model wants one). Throws moeflow::Error where the template
// raises an exception (e.g. Mixtral's roles that do not alternate user/assistant).
std::string apply_chat_template(const ChatTemplate& chat_template,
                                const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt);

}  // namespace moeflow
