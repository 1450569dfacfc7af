#include "model/chat_template.h"

#include <algorithm>
#include <array>
#include <utility>

namespace llmn::model {

namespace {

struct NamedFormat {
    ChatFormat format;
    std::string_view name;
};

constexpr std::array<NamedFormat, 14> format_names = {{
    {ChatFormat::chatml, "chatml"},
    {ChatFormat::llama2, "llama2"},
    {ChatFormat::llama2_sys, "llama2-sys"},
    {ChatFormat::llama2_sys_bos, "llama2-sys-bos"},
    {ChatFormat::llama2_sys_strip, "llama2-sys-strip"},
    {ChatFormat::mistral_v1, "mistral-v1"},
    {ChatFormat::mistral_v3, "mistral-v3"},
    {ChatFormat::mistral_v3_tekken, "mistral-v3-tekken"},
    {ChatFormat::mistral_v7, "mistral-v7"},
    {ChatFormat::llama3, "llama3"},
    {ChatFormat::phi3, "phi3"},
    {ChatFormat::phi4, "phi4"},
    {ChatFormat::zephyr, "zephyr"},
    {ChatFormat::gemma, "gemma"},
}};

// Drops ASCII whitespace at both ends (what llama.cpp's trim() does).
std::string trim(std::string_view s) {
    constexpr std::string_view ws = " \t\n\r\f\v";
    size_t begin = s.find_first_not_of(ws);
    if (begin == std::string_view::npos) return {};
    size_t end = s.find_last_not_of(ws);
    return std::string(s.substr(begin, end - begin + 1));
}

// The [INST] family: the llama2 variants and mistral v1/v3/v3-tekken share one
// loop whose pieces differ.
struct InstStyle {
    std::string_view open;        // opens a user turn
    std::string_view reopen;      // opens every later user turn
    std::string_view close;       // ends a user message
    std::string_view before_ans;  // before an assistant message
    std::string_view sys_open, sys_close;
    bool trim_all = false;
    bool trim_answer = false;
    bool open_when_empty = true;  // llama2 variants emit "[INST] " even for no messages
};

InstStyle inst_style(ChatFormat f) {
    switch (f) {
    case ChatFormat::llama2:
        return {"[INST] ", "[INST] ", " [/INST]", "", "", "\n"};
    case ChatFormat::llama2_sys:
        return {"[INST] ", "[INST] ", " [/INST]", "", "<<SYS>>\n", "\n<</SYS>>\n\n"};
    case ChatFormat::llama2_sys_bos:
        return {"[INST] ", "<s>[INST] ", " [/INST]", "", "<<SYS>>\n", "\n<</SYS>>\n\n"};
    case ChatFormat::llama2_sys_strip:
        return {"[INST] ", "[INST] ", " [/INST]", "", "<<SYS>>\n", "\n<</SYS>>\n\n", true};
    case ChatFormat::mistral_v1:
        return {" [INST] ", " [INST] ", " [/INST]", " ", "", "\n\n", false, false, false};
    case ChatFormat::mistral_v3:
        return {"[INST] ", "[INST] ", "[/INST]", " ", "", "\n\n", false, true, false};
    default:  // mistral_v3_tekken
        return {"[INST]", "[INST]", "[/INST]", "", "", "\n\n", false, false, false};
    }
}

void render_inst(const InstStyle& st, const std::vector<ChatMessage>& messages, std::string& out) {
    // The llama2 variants open the first turn even when the chat is empty (as
    // llama.cpp does); the mistral ones open a turn at the first message.
    bool first = true;
    bool in_turn = false;
    for (const ChatMessage& m : messages) {
        if (!in_turn) {
            out += first ? st.open : st.reopen;
            in_turn = true;
            first = false;
        }
        std::string content = st.trim_all ? trim(m.content) : m.content;
        if (m.role == "system") {
            out.append(st.sys_open).append(content).append(st.sys_close);
        } else if (m.role == "user") {
            out.append(content).append(st.close);
        } else {
            out.append(st.before_ans).append(st.trim_answer ? trim(content) : content).append("</s>");
            in_turn = false;
        }
    }
    if (first && st.open_when_empty) out += st.open;
}

void render_llama3(const std::vector<ChatMessage>& messages, bool add_ass, std::string& out) {
    for (const ChatMessage& m : messages)
        out.append("<|start_header_id|>").append(m.role).append("<|end_header_id|>\n\n")
            .append(trim(m.content)).append("<|eot_id|>");
    if (add_ass) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
}

void render_gemma(const std::vector<ChatMessage>& messages, bool add_ass, std::string& out) {
    // Gemma has no system role: the system text opens the next user turn.
    std::string system;
    for (const ChatMessage& m : messages) {
        if (m.role == "system") {
            system += trim(m.content);
            continue;
        }
        std::string_view role = m.role == "assistant" ? std::string_view("model") : std::string_view(m.role);
        out.append("<start_of_turn>").append(role).append("\n");
        if (!system.empty() && role != "model") {
            out.append(system).append("\n\n");
            system.clear();
        }
        out.append(trim(m.content)).append("<end_of_turn>\n");
    }
    if (add_ass) out += "<start_of_turn>model\n";
}

void render_mistral_v7(const std::vector<ChatMessage>& messages, std::string& out) {
    for (const ChatMessage& m : messages) {
        if (m.role == "system") out.append("[SYSTEM_PROMPT] ").append(m.content).append("[/SYSTEM_PROMPT]");
        else if (m.role == "user") out.append("[INST] ").append(m.content).append("[/INST]");
        else out.append(" ").append(m.content).append("</s>");
    }
}

// One header line per message: prefix + role + infix + content + suffix.
void render_simple(const std::vector<ChatMessage>& messages, bool add_ass, std::string_view prefix,
                   std::string_view infix, std::string_view suffix, std::string_view assistant_prompt,
                   std::string& out) {
    for (const ChatMessage& m : messages)
        out.append(prefix).append(m.role).append(infix).append(m.content).append(suffix);
    if (add_ass) out += assistant_prompt;
}

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

std::optional<ChatFormat> format_from_vocab(const std::vector<std::string>& vocab) {
    bool im_start = false, header = false, eot_id = false, user = false, end = false, turn = false;
    for (const std::string& t : vocab) {
        if (t.size() < 5 || t.size() > 19 || t[0] != '<') continue;
        im_start = im_start || t == "<|im_start|>";
        header = header || t == "<|start_header_id|>";
        eot_id = eot_id || t == "<|eot_id|>";
        user = user || t == "<|user|>";
        end = end || t == "<|end|>";
        turn = turn || t == "<start_of_turn>";
    }
    if (im_start) return ChatFormat::chatml;
    if (header || eot_id) return ChatFormat::llama3;
    if (user && end) return ChatFormat::phi3;
    if (turn) return ChatFormat::gemma;
    return std::nullopt;
}

std::optional<ChatFormat> format_from_arch(std::string_view arch) {
    if (arch == "phi3") return ChatFormat::phi3;
    if (arch.starts_with("gemma")) return ChatFormat::gemma;
    if (arch.starts_with("qwen")) return ChatFormat::chatml;
    return std::nullopt;
}

}  // namespace

std::string_view chat_format_name(ChatFormat format) {
    for (const NamedFormat& nf : format_names)
        if (nf.format == format) return nf.name;
    return "unknown";
}

std::string_view ChatTemplate::name() const { return chat_format_name(format_); }

std::optional<ChatFormat> ChatTemplate::format_from_name(std::string_view name) {
    for (const NamedFormat& nf : format_names)
        if (nf.name == name) return nf.format;
    return std::nullopt;
}

std::optional<ChatFormat> ChatTemplate::format_from_template(std::string_view t) {
    if (t.empty()) return std::nullopt;
    if (auto named = format_from_name(t)) return named;
    auto has = [t](std::string_view s) { return contains(t, s); };

    if (has("<|im_start|>")) return has("<|im_sep|>") ? ChatFormat::phi4 : ChatFormat::chatml;
    if (t.starts_with("mistral") || has("[INST]")) {
        if (has("[SYSTEM_PROMPT]")) return ChatFormat::mistral_v7;
        // Mistral's official v1, v3 and v3-tekken templates.
        if (has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]")) {
            if (has(" [INST]")) return ChatFormat::mistral_v1;
            if (has("\"[INST]\"")) return ChatFormat::mistral_v3_tekken;
            return ChatFormat::mistral_v3;
        }
        if (has("content.strip()")) return ChatFormat::llama2_sys_strip;
        if (has("bos_token + '[INST]")) return ChatFormat::llama2_sys_bos;
        if (has("<<SYS>>")) return ChatFormat::llama2_sys;
        return ChatFormat::llama2;
    }
    if (has("<|end|>") && (has("<|assistant|>") || has("<|user|>"))) return ChatFormat::phi3;
    if (has("<|user|>") && has("<|endoftext|>")) return ChatFormat::zephyr;
    if (has("<start_of_turn>")) return ChatFormat::gemma;
    if (has("<|start_header_id|>") && has("<|end_header_id|>")) return ChatFormat::llama3;
    return std::nullopt;
}

ChatTemplate ChatTemplate::detect(std::string_view jinja_template, std::string_view arch,
                                  const std::vector<std::string>& vocab_tokens) {
    if (auto f = format_from_template(jinja_template)) return ChatTemplate(*f, ChatTemplateSource::template_text);
    if (auto f = format_from_vocab(vocab_tokens)) return ChatTemplate(*f, ChatTemplateSource::vocab);
    if (auto f = format_from_arch(arch)) return ChatTemplate(*f, ChatTemplateSource::arch);
    return ChatTemplate(ChatFormat::chatml, ChatTemplateSource::fallback);
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_assistant_prompt) const {
    std::string out;
    const bool add = add_assistant_prompt;
    switch (format_) {
    case ChatFormat::chatml:
        render_simple(messages, add, "<|im_start|>", "\n", "<|im_end|>\n", "<|im_start|>assistant\n", out);
        break;
    case ChatFormat::llama2:
    case ChatFormat::llama2_sys:
    case ChatFormat::llama2_sys_bos:
    case ChatFormat::llama2_sys_strip:
    case ChatFormat::mistral_v1:
    case ChatFormat::mistral_v3:
    case ChatFormat::mistral_v3_tekken:
        render_inst(inst_style(format_), messages, out);
        break;
    case ChatFormat::mistral_v7:
        render_mistral_v7(messages, out);
        break;
    case ChatFormat::llama3:
        render_llama3(messages, add, out);
        break;
    case ChatFormat::phi3:
        render_simple(messages, add, "<|", "|>\n", "<|end|>\n", "<|assistant|>\n", out);
        break;
    case ChatFormat::phi4:
        render_simple(messages, add, "<|im_start|>", "<|im_sep|>", "<|im_end|>", "<|im_start|>assistant<|im_sep|>",
                      out);
        break;
    case ChatFormat::zephyr:
        render_simple(messages, add, "<|", "|>\n", "<|endoftext|>\n", "<|assistant|>\n", out);
        break;
    case ChatFormat::gemma:
        render_gemma(messages, add, out);
        break;
    }
    return out;
}

std::vector<std::string> ChatTemplate::turn_stops() const {
    switch (format_) {
        case ChatFormat::chatml:
        case ChatFormat::phi4: return {"<|im_end|>", "<|im_start|>"};
        case ChatFormat::llama3: return {"<|eot_id|>", "<|start_header_id|>"};
        case ChatFormat::phi3: return {"<|end|>", "<|user|>", "<|endoftext|>"};
        case ChatFormat::zephyr: return {"<|endoftext|>", "<|user|>"};
        case ChatFormat::gemma: return {"<end_of_turn>", "<start_of_turn>"};
        default: return {"</s>", "[INST]"};  // the llama2 and mistral families
    }
}

}  // namespace llmn::model
