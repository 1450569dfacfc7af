// Chat prompt formats: turning a list of messages into the prompt text a chat
// model was trained on.
//
// There is no Jinja engine here. As llama.cpp's llama_chat_apply_template does,
// the GGUF's tokenizer.chat_template text is only searched for distinctive
// markers to pick one of a fixed set of formats, and each format is rendered by
// hand-written code whose output matches llama.cpp's for the same messages.
// The rendered text never starts with the BOS token: the tokenizer adds BOS.
// Special-token texts inside it ("<|im_start|>", "</s>", ...) are meant to be
// tokenized with special-token parsing enabled.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmn::model {

struct ChatMessage {
    std::string role;  // "system", "user" or "assistant" (other roles are passed through where the format allows)
    std::string content;
};

// The supported formats. The names returned by ChatTemplate::name() are
// llama.cpp's (--chat-template values), shown here after each value.
enum class ChatFormat {
    chatml,            // "chatml":     <|im_start|>role\ncontent<|im_end|>\n
    llama2,            // "llama2":     [INST] ... [/INST], system text folded in without <<SYS>>
    llama2_sys,        // "llama2-sys": as llama2 with the system text inside <<SYS>> ... <</SYS>>
    llama2_sys_bos,    // "llama2-sys-bos": as llama2-sys with <s> before every later [INST]
    llama2_sys_strip,  // "llama2-sys-strip": as llama2-sys with every content trimmed
    mistral_v1,        // "mistral-v1": " [INST] sys\n\nuser [/INST] answer</s>"
    mistral_v3,        // "mistral-v3": "[INST] sys\n\nuser[/INST] answer</s>" (answer trimmed)
    mistral_v3_tekken, // "mistral-v3-tekken": "[INST]sys\n\nuser[/INST]answer</s>"
    mistral_v7,        // "mistral-v7": [SYSTEM_PROMPT] ...[/SYSTEM_PROMPT][INST] ...[/INST] answer</s>
    llama3,            // "llama3":     <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>
    phi3,              // "phi3":       <|role|>\ncontent<|end|>\n
    phi4,              // "phi4":       <|im_start|>role<|im_sep|>content<|im_end|>
    zephyr,            // "zephyr":     <|role|>\ncontent<|endoftext|>\n
    gemma,             // "gemma":      <start_of_turn>role\ncontent<end_of_turn>\n (assistant -> model)
};

// How ChatTemplate::detect() reached its choice (for a log line).
enum class ChatTemplateSource {
    explicit_format,  // constructed from a ChatFormat or a name
    template_text,    // markers in tokenizer.chat_template
    vocab,            // special tokens present in the vocabulary
    arch,             // general.architecture
    fallback,         // nothing matched: chatml
};

class ChatTemplate {
public:
    explicit ChatTemplate(ChatFormat format = ChatFormat::chatml,
                          ChatTemplateSource source = ChatTemplateSource::explicit_format)
        : format_(format), source_(source) {}

    // Picks the format for a model, trying in turn:
    //  1. `jinja_template` (tokenizer.chat_template; may be empty): a llama.cpp
    //     template name ("llama3", "chatml", ...) is taken as is; otherwise the
    //     text is searched for markers in llama.cpp's order ("<|im_start|>" ->
    //     chatml or phi4, "[INST]" -> a mistral or llama2 variant, "<|end|>" with
    //     "<|assistant|>" or "<|user|>" -> phi3, "<|user|>" with "<|endoftext|>"
    //     -> zephyr, "<start_of_turn>" -> gemma, "<|start_header_id|>" -> llama3).
    //  2. `vocab_tokens` (the token texts; may be empty): "<|im_start|>" ->
    //     chatml, "<|start_header_id|>" or "<|eot_id|>" -> llama3, "<|user|>"
    //     with "<|end|>" -> phi3, "<start_of_turn>" -> gemma.
    //  3. `arch` (general.architecture): phi3 -> phi3, gemma* -> gemma,
    //     qwen* -> chatml.
    //  4. Otherwise chatml, which is also llama.cpp's default when a model has
    //     no template. A template whose markers are not recognised therefore
    //     falls through to steps 2-4 instead of failing. Nothing is logged.
    static ChatTemplate detect(std::string_view jinja_template, std::string_view arch,
                               const std::vector<std::string>& vocab_tokens);

    // The format for a llama.cpp template name, or nullopt when unknown.
    static std::optional<ChatFormat> format_from_name(std::string_view name);
    // Only step 1 of detect(): the format the template text implies, if any.
    static std::optional<ChatFormat> format_from_template(std::string_view jinja_template);

    // Renders `messages` in this format. With `add_assistant_prompt` the text
    // ends with the header of an assistant turn so that the model answers next;
    // the llama2 and mistral formats ignore it because their user turns already
    // end with "[/INST]". The BOS token text is never emitted at the start.
    std::string render(const std::vector<ChatMessage>& messages, bool add_assistant_prompt) const;

    // Texts that end an assistant turn in this format (its end-of-turn marker
    // and the header of the next turn), for models that spell them out with
    // ordinary tokens instead of an end-of-generation token.
    std::vector<std::string> turn_stops() const;

    // llama.cpp's name for the format ("chatml", "llama2-sys", ...).
    std::string_view name() const;
    ChatFormat format() const { return format_; }
    ChatTemplateSource source() const { return source_; }

private:
    ChatFormat format_;
    ChatTemplateSource source_;
};

// llama.cpp's name for `format`.
std::string_view chat_format_name(ChatFormat format);

}  // namespace llmn::model
