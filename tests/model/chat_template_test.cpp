#include "model/chat_template.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "model/gguf_reader.h"
#include "support/test_support.h"

namespace llmn::model {
namespace {

// The conversation llama.cpp's test-chat-template uses, so the expected strings
// below are exactly what llama_chat_apply_template returns for it (with the
// assistant prompt requested). Note the padded second answer: formats that trim
// show it trimmed.
std::vector<ChatMessage> conversation() {
    return {
        {"system", "You are a helpful assistant"},
        {"user", "Hello"},
        {"assistant", "Hi there"},
        {"user", "Who are you"},
        {"assistant", "   I am an assistant   "},
        {"user", "Another question"},
    };
}

struct RenderCase {
    ChatFormat format;
    std::string expected;
};

const std::vector<RenderCase>& render_cases() {
    static const std::vector<RenderCase> cases = {
        {ChatFormat::chatml,
         "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
         "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
         "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n"
         "<|im_start|>assistant\n"},
        {ChatFormat::llama2,
         "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an "
         "assistant   </s>[INST] Another question [/INST]"},
        {ChatFormat::llama2_sys,
         "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>[INST] Who are you "
         "[/INST]   I am an assistant   </s>[INST] Another question [/INST]"},
        {ChatFormat::llama2_sys_bos,
         "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s><s>[INST] Who are you "
         "[/INST]   I am an assistant   </s><s>[INST] Another question [/INST]"},
        {ChatFormat::llama2_sys_strip,
         "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>[INST] Who are you "
         "[/INST]I am an assistant</s>[INST] Another question [/INST]"},
        {ChatFormat::mistral_v1,
         " [INST] You are a helpful assistant\n\nHello [/INST] Hi there</s> [INST] Who are you [/INST]    I am an "
         "assistant   </s> [INST] Another question [/INST]"},
        {ChatFormat::mistral_v3,
         "[INST] You are a helpful assistant\n\nHello[/INST] Hi there</s>[INST] Who are you[/INST] I am an "
         "assistant</s>[INST] Another question[/INST]"},
        {ChatFormat::mistral_v3_tekken,
         "[INST]You are a helpful assistant\n\nHello[/INST]Hi there</s>[INST]Who are you[/INST]   I am an "
         "assistant   </s>[INST]Another question[/INST]"},
        {ChatFormat::mistral_v7,
         "[SYSTEM_PROMPT] You are a helpful assistant[/SYSTEM_PROMPT][INST] Hello[/INST] Hi there</s>[INST] Who "
         "are you[/INST]    I am an assistant   </s>[INST] Another question[/INST]"},
        {ChatFormat::llama3,
         "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
         "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
         "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
         "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>"
         "<|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>"
         "<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|>"
         "<|start_header_id|>assistant<|end_header_id|>\n\n"},
        {ChatFormat::phi3,
         "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n"
         "<|user|>\nWho are you<|end|>\n<|assistant|>\n   I am an assistant   <|end|>\n<|user|>\nAnother "
         "question<|end|>\n<|assistant|>\n"},
        {ChatFormat::phi4,
         "<|im_start|>system<|im_sep|>You are a helpful assistant<|im_end|><|im_start|>user<|im_sep|>Hello<|im_end|>"
         "<|im_start|>assistant<|im_sep|>Hi there<|im_end|><|im_start|>user<|im_sep|>Who are you<|im_end|>"
         "<|im_start|>assistant<|im_sep|>   I am an assistant   <|im_end|><|im_start|>user<|im_sep|>Another "
         "question<|im_end|><|im_start|>assistant<|im_sep|>"},
        {ChatFormat::zephyr,
         "<|system|>\nYou are a helpful assistant<|endoftext|>\n<|user|>\nHello<|endoftext|>\n<|assistant|>\nHi "
         "there<|endoftext|>\n<|user|>\nWho are you<|endoftext|>\n<|assistant|>\n   I am an assistant   "
         "<|endoftext|>\n<|user|>\nAnother question<|endoftext|>\n<|assistant|>\n"},
        {ChatFormat::gemma,
         "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n<start_of_turn>model\nHi "
         "there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\nI am an "
         "assistant<end_of_turn>\n<start_of_turn>user\nAnother question<end_of_turn>\n<start_of_turn>model\n"},
    };
    return cases;
}

TEST(ChatTemplate, EveryFormatRendersLlamaCppOutput) {
    ASSERT_EQ(render_cases().size(), 14u) << "one case per ChatFormat";
    for (const RenderCase& c : render_cases()) {
        ChatTemplate t(c.format);
        EXPECT_EQ(t.render(conversation(), true), c.expected) << t.name();
    }
}

TEST(ChatTemplate, AssistantPromptIsOptional) {
    auto msgs = conversation();
    EXPECT_EQ(ChatTemplate(ChatFormat::chatml).render({{"user", "Hi"}}, false), "<|im_start|>user\nHi<|im_end|>\n");
    EXPECT_EQ(ChatTemplate(ChatFormat::llama3).render({{"user", " Hi "}}, false),
              "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
    EXPECT_EQ(ChatTemplate(ChatFormat::phi3).render({{"user", "Hi"}}, false), "<|user|>\nHi<|end|>\n");
    EXPECT_EQ(ChatTemplate(ChatFormat::gemma).render({{"user", "Hi"}}, false), "<start_of_turn>user\nHi<end_of_turn>\n");
    // The [INST] formats end with [/INST] either way.
    for (ChatFormat f : {ChatFormat::llama2_sys, ChatFormat::mistral_v7})
        EXPECT_EQ(ChatTemplate(f).render(msgs, false), ChatTemplate(f).render(msgs, true));
}

TEST(ChatTemplate, NeverEmitsBos) {
    std::vector<ChatMessage> msgs = {{"system", "S"}, {"user", "U"}, {"assistant", "A"}, {"user", "V"}};
    for (const RenderCase& c : render_cases()) {
        std::string out = ChatTemplate(c.format).render(msgs, true);
        EXPECT_FALSE(out.starts_with("<s>")) << chat_format_name(c.format);
        EXPECT_FALSE(out.starts_with("<|begin_of_text|>")) << chat_format_name(c.format);
        EXPECT_FALSE(out.starts_with("<bos>")) << chat_format_name(c.format);
    }
}

TEST(ChatTemplate, EmptyConversation) {
    EXPECT_EQ(ChatTemplate(ChatFormat::chatml).render({}, true), "<|im_start|>assistant\n");
    EXPECT_EQ(ChatTemplate(ChatFormat::llama2_sys).render({}, true), "[INST] ");
    EXPECT_EQ(ChatTemplate(ChatFormat::mistral_v3).render({}, true), "");
}

TEST(ChatTemplate, NamesRoundTrip) {
    for (const RenderCase& c : render_cases()) {
        ChatTemplate t(c.format);
        auto back = ChatTemplate::format_from_name(t.name());
        ASSERT_TRUE(back.has_value()) << t.name();
        EXPECT_EQ(*back, c.format);
    }
    EXPECT_EQ(ChatTemplate(ChatFormat::llama2_sys_bos).name(), "llama2-sys-bos");
    EXPECT_FALSE(ChatTemplate::format_from_name("vicuna").has_value());
}

struct DetectCase {
    const char* what;
    std::string jinja;
    ChatFormat expected;
};

TEST(ChatTemplate, DetectsFormatFromTemplateText) {
    const std::vector<DetectCase> cases = {
        {"qwen2.5 chatml",
         "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + "
         "'<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' "
         "}}{%- endif %}",
         ChatFormat::chatml},
        {"phi-4", "{{'<|im_start|>system<|im_sep|>' + message['content'] + '<|im_end|>'}}", ChatFormat::phi4},
        {"llama-2-chat official",
         "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
         "{% elif message['role'] == 'system' %}{{ '<<SYS>>\\n' + content.strip() + '\\n<</SYS>>\\n\\n' }}",
         ChatFormat::llama2_sys_strip},
        {"llama2 with bos in history",
         "{{- bos_token + '[INST] ' + messages[idx]['content'] + ' [/INST]' -}}{{- '[INST] <<SYS>>\\n' -}}",
         ChatFormat::llama2_sys_bos},
        {"llama2 with <<SYS>>", "{{ '[INST] <<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' }}", ChatFormat::llama2_sys},
        {"mistral v0.2", "{{ bos_token }}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + "
                         "' [/INST]' }}{% endif %}",
         ChatFormat::llama2},
        {"mistral v1", "{{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}",
         ChatFormat::mistral_v1},
        {"mistral v3", "{{- \"[AVAILABLE_TOOLS] [\" }}{{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}",
         ChatFormat::mistral_v3},
        {"mistral v3 tekken", "{{- \"[AVAILABLE_TOOLS][\" }}{{- \"[INST]\" + message[\"content\"] + \"[/INST]\" }}",
         ChatFormat::mistral_v3_tekken},
        {"mistral v7", "{{ '[SYSTEM_PROMPT] ' + message['content'] + '[/SYSTEM_PROMPT]' }}{{ '[INST] ' }}",
         ChatFormat::mistral_v7},
        {"phi-3 mini",
         "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|user|>' + '\\n' + "
         "message['content'] + '<|end|>' + '\\n' + '<|assistant|>' + '\\n'}}{% endif %}{% endfor %}",
         ChatFormat::phi3},
        {"zephyr / stablelm",
         "{% for message in messages %}{{'<|' + message['role'] + '|>\\n' + message['content'] + "
         "'<|endoftext|>\\n'}}{% endfor %}{{ '<|user|>' }}",
         ChatFormat::zephyr},
        {"gemma",
         "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}",
         ChatFormat::gemma},
        {"llama 3",
         "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ "
         "message['content'] | trim + '<|eot_id|>' %}",
         ChatFormat::llama3},
        {"a llama.cpp name", "llama3", ChatFormat::llama3},
    };
    for (const DetectCase& c : cases) {
        ChatTemplate t = ChatTemplate::detect(c.jinja, "llama", {});
        EXPECT_EQ(t.format(), c.expected) << c.what << " -> " << t.name();
        EXPECT_EQ(t.source(), ChatTemplateSource::template_text) << c.what;
    }
}

TEST(ChatTemplate, DetectsFormatFromVocabWithoutTemplate) {
    auto detect = [](std::vector<std::string> vocab) { return ChatTemplate::detect("", "llama", vocab); };
    EXPECT_EQ(detect({"<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "hello"}).format(), ChatFormat::chatml);
    EXPECT_EQ(detect({"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>"}).format(), ChatFormat::llama3);
    EXPECT_EQ(detect({"<|begin_of_text|>", "<|eot_id|>"}).format(), ChatFormat::llama3);
    EXPECT_EQ(detect({"<s>", "</s>", "<|user|>", "<|assistant|>", "<|end|>"}).format(), ChatFormat::phi3);
    EXPECT_EQ(detect({"<bos>", "<start_of_turn>", "<end_of_turn>"}).format(), ChatFormat::gemma);
    EXPECT_EQ(detect({"<|im_start|>"}).source(), ChatTemplateSource::vocab);
    // "<|user|>" alone is not enough for phi3.
    EXPECT_EQ(detect({"<s>", "<|user|>"}).source(), ChatTemplateSource::fallback);
}

TEST(ChatTemplate, DetectsFormatFromArch) {
    EXPECT_EQ(ChatTemplate::detect("", "phi3", {}).format(), ChatFormat::phi3);
    EXPECT_EQ(ChatTemplate::detect("", "gemma2", {}).format(), ChatFormat::gemma);
    ChatTemplate q = ChatTemplate::detect("", "qwen3", {});
    EXPECT_EQ(q.format(), ChatFormat::chatml);
    EXPECT_EQ(q.source(), ChatTemplateSource::arch);
}

TEST(ChatTemplate, TemplateWinsOverVocabAndArch) {
    ChatTemplate t = ChatTemplate::detect("{{ '<|start_header_id|>' }}{{ '<|end_header_id|>' }}", "qwen2",
                                          {"<|im_start|>"});
    EXPECT_EQ(t.format(), ChatFormat::llama3);
}

TEST(ChatTemplate, UnknownTemplateFallsBack) {
    const std::string odd = "{% for m in messages %}### {{ m.role }}: {{ m.content }}\\n{% endfor %}";
    EXPECT_FALSE(ChatTemplate::format_from_template(odd).has_value());

    ChatTemplate plain = ChatTemplate::detect(odd, "llama", {"<s>", "</s>", "hello"});
    EXPECT_EQ(plain.format(), ChatFormat::chatml);
    EXPECT_EQ(plain.source(), ChatTemplateSource::fallback);
    EXPECT_EQ(plain.name(), "chatml");

    // An unknown template still lets the vocabulary decide.
    ChatTemplate by_vocab = ChatTemplate::detect(odd, "llama", {"<|eot_id|>"});
    EXPECT_EQ(by_vocab.format(), ChatFormat::llama3);
    EXPECT_EQ(by_vocab.source(), ChatTemplateSource::vocab);

    EXPECT_EQ(ChatTemplate::detect("", "", {}).source(), ChatTemplateSource::fallback);
}

// The templates and vocabularies of the shared test models (written by llama.cpp's tools).
TEST(ChatTemplate, DetectsTheSharedModels) {
    LLMN_REQUIRE_SHARED();
    struct Case {
        const char* rel;
        ChatFormat expected;
        ChatTemplateSource source;
    };
    const Case cases[] = {
        {"models/synthetic/qwen2-q8_0.gguf", ChatFormat::chatml, ChatTemplateSource::template_text},
        {"models/synthetic/llama-bpe-f16.gguf", ChatFormat::llama3, ChatTemplateSource::template_text},
        {"models/synthetic/phi3-q5_k_m.gguf", ChatFormat::phi3, ChatTemplateSource::template_text},
        {"models/real/vocab/phi3-mini-vocab-only.gguf", ChatFormat::phi3, ChatTemplateSource::template_text},
        {"models/real/llama-stories260k-f32.gguf", ChatFormat::chatml, ChatTemplateSource::fallback},
    };
    for (const Case& c : cases) {
        std::string path = llmn::testing::shared_path(c.rel);
        if (!std::filesystem::exists(path)) continue;
        auto f = GgufFile::open(path);
        std::vector<std::string> vocab;
        if (const GgufValue* v = f->find("tokenizer.ggml.tokens"))
            for (std::string_view t : v->strings) vocab.emplace_back(t);
        ChatTemplate t = ChatTemplate::detect(f->get_string("tokenizer.chat_template"),
                                              f->get_string("general.architecture"), vocab);
        EXPECT_EQ(t.format(), c.expected) << c.rel << " -> " << t.name();
        EXPECT_EQ(t.source(), c.source) << c.rel;
        // Without the template, the vocabulary alone still finds the chat tokens.
        if (c.source == ChatTemplateSource::template_text) {
            ChatTemplate by_vocab = ChatTemplate::detect("", "", vocab);
            EXPECT_EQ(by_vocab.format(), c.expected) << c.rel << " by vocab -> " << by_vocab.name();
        }
    }
}

}  // namespace
}  // namespace llmn::model
