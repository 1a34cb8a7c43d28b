// Chat templates: the five recognised families render what transformers' apply_chat_template
// renders (references in each fixture's cases.json), raise where the template raises, and
// anything else is refused by name.
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/support/temp_dir.h"
#include "tests/tokenizer/fixtures.h"
#include "tokenizer/tokenizer_config.h"

namespace moeflow {
namespace {

using test_support::shown;
using test_support::tokenizer_fixture;

std::vector<ChatMessage> messages_of(const nlohmann::json& list) {
  std::vector<ChatMessage> out;
  for (const auto& m : list) out.push_back({m["role"], m["content"]});
  return out;
}

class ChatTemplateFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(ChatTemplateFixture, RendersLikeTransformers) {
  const ChatTemplate tmpl = ChatTemplate::load(tokenizer_fixture(GetParam()));
  const nlohmann::json cases =
      test_support::read_json_file(tokenizer_fixture(GetParam()) / "cases.json")["chat"];
  ASSERT_GE(cases.size(), 10u);
  for (const auto& c : cases) {
    const auto messages = messages_of(c["messages"]);
    const bool generation = c["add_generation_prompt"];
    SCOPED_TRACE(c["messages"].dump() + (generation ? " +generation prompt" : ""));
    if (c.contains("text")) {
      EXPECT_EQ(apply_chat_template(tmpl, messages, generation), c["text"].get<std::string>());
      continue;
    }
    try {
      const std::string text = apply_chat_template(tmpl, messages, generation);
      ADD_FAILURE() << "expected an error, rendered " << shown(text);
    } catch (const Error& e) {
      if (c["raised"]) {
        EXPECT_NE(std::string(e.what()).find(c["error"].get<std::string>()), std::string::npos)
            << e.what();
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ChatTemplateFixture,
                         ::testing::ValuesIn(test_support::tokenizer_variants()),
                         [](const auto& info) { return info.param; });

TEST(ChatTemplate, RecognisesEachFamily) {
  const std::pair<const char*, ChatFormat> expected[] = {
      {"qwen2", ChatFormat::chatml},
      {"llama3", ChatFormat::chatml},
      {"neox", ChatFormat::tulu},
      {"deepseek", ChatFormat::deepseek},
      {"mixtral", ChatFormat::mistral_instruct},
      {"llama2", ChatFormat::mistral_instruct_system}};
  for (const auto& [name, format] : expected) {
    EXPECT_EQ(ChatTemplate::load(tokenizer_fixture(name)).format, format) << name;
  }
  const ChatTemplate qwen = ChatTemplate::load(tokenizer_fixture("qwen2"));
  EXPECT_EQ(qwen.default_system, "You are a helpful assistant.");
  EXPECT_EQ(qwen.eos_token, "<|im_end|>");
  EXPECT_EQ(qwen.bos_token, "");
  EXPECT_EQ(ChatTemplate::load(tokenizer_fixture("llama3")).default_system, "");
  // bos_token given as an AddedToken object.
  EXPECT_EQ(ChatTemplate::load(tokenizer_fixture("deepseek")).bos_token,
            "<\xEF\xBD\x9C"
            "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>");
}

TEST(ChatTemplate, IgnoresLayoutButNotText) {
  const std::string chatml =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
      "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
      "{{ '<|im_start|>assistant\\n' }}{% endif %}";
  // The same template with real newlines in its literals, double quotes, joined literals and
  // trimmed, re-indented tags.
  const std::string relaid =
      "{%- for message in messages -%}\n  {{- \"<|im_start|>\" + message[\"role\"] + \"\n\" + "
      "message[\"content\"] + \"<|im_end|>\n\" -}}\n{%- endfor -%}\n{%- if add_generation_prompt "
      "-%}\n  {{- '<|im_start|>assistant\n' -}}\n{%- endif -%}\n";
  const std::vector<ChatMessage> messages = {{"user", "hi"}};
  const std::string want = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n";
  for (const std::string& text : {chatml, relaid}) {
    const ChatTemplate t = ChatTemplate::recognise(text, "", "", "test");
    EXPECT_EQ(t.format, ChatFormat::chatml);
    EXPECT_EQ(apply_chat_template(t, messages, true), want);
  }
  // Text the renderer would not print: another literal, raw text outside the tags.
  for (const std::string& text :
       {chatml + "{{ 'extra' }}", "Prompt: " + chatml, chatml + "{{ tools }}x",
        std::string("{% for message in messages %}{{ message['content'] }}{% endfor %}")}) {
    EXPECT_THROW(ChatTemplate::recognise(text, "", "", "test"), Error) << text;
  }
}

TEST(ChatTemplate, RefusesAnUnknownTemplateByName) {
  // Llama-2-chat's template: not one of the supported families.
  const std::string llama2 =
      "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set "
      "system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
      "{% set system_message = false %}{% endif %}{% for message in loop_messages %}...";
  try {
    ChatTemplate::recognise(llama2, "<s>", "</s>",
                            "dir/tokenizer_config.json: field chat_template");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find("dir/tokenizer_config.json: field chat_template: chat template not "
                        "supported: \"" +
                        llama2.substr(0, 60) + "...\""),
              0u)
        << what;
  }
}

TEST(ChatTemplate, RefusesAMissingTemplateOrConfig) {
  test_support::TempDir dir;
  EXPECT_THROW(ChatTemplate::load(dir.path()), Error);  // no tokenizer_config.json
  { std::ofstream(dir.path() / "tokenizer_config.json") << R"({"bos_token": "<s>"})"; }
  try {
    ChatTemplate::load(dir.path());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("field chat_template: this model has no chat template"),
              std::string::npos)
        << e.what();
  }
  { std::ofstream(dir.path() / "tokenizer_config.json") << R"({"bos_token": "<s>", )"; }
  EXPECT_THROW(ChatTemplate::load(dir.path()), Error);  // malformed JSON
}

TEST(ChatTemplate, ReadsChatTemplateJinjaAndNamedTemplates) {
  test_support::TempDir dir;
  const std::string tulu = test_support::read_json_file(tokenizer_fixture("neox") /
                                                        "tokenizer_config.json")["chat_template"];
  {
    std::ofstream(dir.path() / "tokenizer_config.json") << R"({"eos_token": "</s>"})";
    std::ofstream(dir.path() / "chat_template.jinja") << tulu;
  }
  EXPECT_EQ(ChatTemplate::load(dir.path()).format, ChatFormat::tulu);
  {
    nlohmann::json config = {{"chat_template",
                              {{{"name", "tool_use"}, {"template", "{{ x }}"}},
                               {{"name", "default"}, {"template", tulu}}}}};
    std::ofstream(dir.path() / "tokenizer_config.json") << config.dump();
  }
  EXPECT_EQ(ChatTemplate::load(dir.path()).format, ChatFormat::tulu);
}

TEST(ChatTemplate, RefusesAnEmptyConversationLikeTransformers) {
  const ChatTemplate t = ChatTemplate::load(tokenizer_fixture("qwen2"));
  EXPECT_THROW(apply_chat_template(t, {}, true), Error);
}

}  // namespace
}  // namespace moeflow
