// Vocab::from_gguf: the tokenizer.ggml.* metadata, with llama.cpp's defaults and its
// by-name fix-ups (end-of-generation tokens, control-looking tokens, Phi-3's rstrip).
#include <algorithm>
#include <cctype>
#include <vector>
#include <set>
#include <unordered_map>

#include "model/gguf_reader.h"
#include "model/tokenizer.h"
#include "model/tokenizer_internal.h"

namespace llmn::model {

namespace {

bool in_list(const std::string& s, const std::vector<std::string_view>& names) {
    return std::find(names.begin(), names.end(), std::string_view(s)) != names.end();
}

bool contains_any(const std::string& s, const std::vector<std::string_view>& parts) {
    for (auto p : parts)
        if (s.find(p) != std::string::npos) return true;
    return false;
}

const GgufValue* find_array(const GgufFile& f, std::string_view key, bool strings) {
    const GgufValue* v = f.find(key);
    if (!v) return nullptr;
    const bool ok = v->type == GgufType::array && ((v->elem_type == GgufType::string) == strings);
    if (!ok) throw TokenizerError("tokenizer: invalid GGUF type for " + std::string(key));
    return v;
}

// Text-based detection lists (llama.cpp's llama_vocab::impl::load).
const std::vector<std::string_view> kEotTexts = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
    "[EOT]", "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>", "<end_of_utterance>"};
const std::vector<std::string_view> kEomTexts = {"<|eom_id|>"};
const std::vector<std::string_view> kFimPre = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
    "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>", "<PRE>", "\xE2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"};
const std::vector<std::string_view> kFimSuf = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
    "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>", "<SUF>", "\xE2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"};
const std::vector<std::string_view> kFimMid = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
    "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>", "<MID>", "\xE2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"};
const std::vector<std::string_view> kFimPad = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
const std::vector<std::string_view> kFimRep = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"};
const std::vector<std::string_view> kFimSep = {"<|file_sep|>"};
const std::vector<std::string_view> kEogTexts = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
    "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>", "[e~["};

}  // namespace

Vocab Vocab::from_gguf(const GgufFile& file) {
    Vocab v;
    v.model = file.get_string("tokenizer.ggml.model");
    const std::string pre = file.get_string("tokenizer.ggml.pre");
    v.pre = pre.empty() ? "default" : pre;
    const bool spm = v.model == "llama", bpe = v.model == "gpt2";
    if (!spm && !bpe) throw TokenizerError("unsupported tokenizer model '" + v.model + "' (supported: llama, gpt2)");

    if (spm) {
        v.bos_id = 1, v.eos_id = 2, v.unk_id = 0;
        v.add_space_prefix = true, v.add_bos = true, v.add_eos = false;
    } else {
        v.bos_id = 11, v.eos_id = 11;
        v.add_space_prefix = false;
        if (detail::pre_type_from_name(v.pre) == detail::PreType::llama3) v.add_bos = true;
        const GgufValue* merges = find_array(file, "tokenizer.ggml.merges", true);
        if (!merges) throw TokenizerError("tokenizer: cannot find tokenizer merges in model file");
        v.merges.assign(merges->strings.begin(), merges->strings.end());
    }
    v.add_space_prefix = file.get_bool("tokenizer.ggml.add_space_prefix", v.add_space_prefix);

    const GgufValue* tokens = find_array(file, "tokenizer.ggml.tokens", true);
    if (!tokens) throw TokenizerError("tokenizer: cannot find tokenizer vocab in model file");
    const size_t n = tokens->strings.size();
    v.tokens.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        std::string word(tokens->strings[i]);
        if (word.empty()) word = "[EMPTY_" + std::to_string(i) + "]";
        v.tokens.push_back(std::move(word));
    }
    if (const GgufValue* s = find_array(file, "tokenizer.ggml.scores", false)) {
        if (s->numbers.size() < n) throw TokenizerError("tokenizer: fewer scores than tokens");
        v.scores.assign(s->numbers.begin(), s->numbers.begin() + n);
    }
    if (const GgufValue* t = find_array(file, "tokenizer.ggml.token_type", false)) {
        if (t->numbers.size() < n) throw TokenizerError("tokenizer: fewer token types than tokens");
        v.types.reserve(n);
        for (size_t i = 0; i < n; ++i) v.types.push_back(static_cast<TokenType>(static_cast<int32_t>(t->numbers[i])));
    }
    v.attrs.assign(n, TokenAttr::normal);
    if (!v.types.empty())
        for (size_t i = 0; i < n; ++i) v.attrs[i] = TokenAttr::from_type(v.types[i]);

    // Same container and insertion order as llama.cpp: its detection loops walk this map.
    std::unordered_map<std::string, int32_t> to_id;
    for (size_t i = 0; i < n; ++i) {
        if (!to_id.emplace(v.tokens[i], static_cast<int32_t>(i)).second)
            throw TokenizerError("tokenizer: duplicate token in vocabulary: '" + v.tokens[i] + "'");
    }

    int32_t sep_id = -1, fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
    const std::pair<const char*, int32_t*> special_keys[] = {
        {"tokenizer.ggml.bos_token_id", &v.bos_id},      {"tokenizer.ggml.eos_token_id", &v.eos_id},
        {"tokenizer.ggml.eot_token_id", &v.eot_id},      {"tokenizer.ggml.eom_token_id", &v.eom_id},
        {"tokenizer.ggml.unknown_token_id", &v.unk_id},  {"tokenizer.ggml.seperator_token_id", &sep_id},
        {"tokenizer.ggml.padding_token_id", &v.pad_id},  {"tokenizer.ggml.fim_pre_token_id", &fim_pre},
        {"tokenizer.ggml.fim_suf_token_id", &fim_suf},   {"tokenizer.ggml.fim_mid_token_id", &fim_mid},
        {"tokenizer.ggml.fim_pad_token_id", &fim_pad},   {"tokenizer.ggml.fim_rep_token_id", &fim_rep},
        {"tokenizer.ggml.fim_sep_token_id", &fim_sep},   {"tokenizer.ggml.prefix_token_id", &fim_pre},
        {"tokenizer.ggml.suffix_token_id", &fim_suf},    {"tokenizer.ggml.middle_token_id", &fim_mid},
    };
    for (const auto& [key, id] : special_keys) {
        if (*id >= 0 && static_cast<size_t>(*id) >= n) *id = -1;  // default out of range: disabled
        if (!file.find(key)) continue;
        const int64_t val = file.get_int(key, -1);
        if (val >= 0 && static_cast<uint64_t>(val) < n) *id = static_cast<int32_t>(val);  // else keep default
    }
    v.add_bos = file.get_bool("tokenizer.ggml.add_bos_token", v.add_bos);
    v.add_eos = file.get_bool("tokenizer.ggml.add_eos_token", v.add_eos);
    if (v.add_bos && v.bos_id < 0) throw TokenizerError("tokenizer: add_bos_token is true, but bos_token_id is not set");
    if (v.add_eos && v.eos_id < 0) throw TokenizerError("tokenizer: add_eos_token is true, but eos_token_id is not set");

    // Tokens that look like control tokens become control tokens.
    const auto make_control = [&](int32_t id) { v.attrs[id] |= TokenAttr::control; };
    for (const auto& [text, id] : to_id) {
        const std::pair<const std::vector<std::string_view>*, int32_t*> detect[] = {
            {&kEotTexts, &v.eot_id}, {&kEomTexts, &v.eom_id}, {&kFimPre, &fim_pre}, {&kFimSuf, &fim_suf},
            {&kFimMid, &fim_mid},    {&kFimPad, &fim_pad},    {&kFimRep, &fim_rep}, {&kFimSep, &fim_sep},
        };
        for (const auto& [names, slot] : detect) {
            if (*slot == -1 && in_list(text, *names)) {
                *slot = id;
                make_control(id);
            }
        }
    }
    for (const auto& [text, id] : to_id)
        if ((v.attrs[id] & TokenAttr::control) && text.find("unused") != std::string::npos) v.attrs[id] |= TokenAttr::unused;

    std::set<int32_t> eog;
    for (int32_t id : {fim_pad, fim_rep, fim_sep})
        if (id >= 0) eog.insert(id);
    for (const auto& [text, id] : to_id) {
        if (in_list(text, kEogTexts)) {
            eog.insert(id);
            make_control(id);
        }
    }
    for (const auto& [text, id] : to_id)
        if (in_list(text, {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"})) v.attrs[id] = TokenAttr::user_defined;
    for (int32_t id : {v.eos_id, v.eot_id, v.eom_id})
        if (id >= 0) eog.insert(id);
    {
        bool has_return = false, has_call = false, has_end = false, has_flush = false, has_tool_response = false;
        int32_t end_id = -1, s_id = -1;
        for (int32_t id : eog) {
            const std::string& t = v.tokens[id];
            has_return |= t == "<|return|>";
            has_call |= t == "<|call|>" || t == "<|calls|>";
            has_flush |= t == "<|flush|>";
            has_tool_response |= t == "<|tool_response>";
            if (t == "<|end|>") has_end = true, end_id = id;
            if (t == "</s>") s_id = id;
        }
        if ((has_return && has_call && has_end) || (has_call && has_flush && has_end)) {
            eog.erase(end_id);
            v.attrs[end_id] = TokenAttr::user_defined;
        }
        if (has_tool_response && s_id >= 0) {
            eog.erase(s_id);
            v.attrs[s_id] = TokenAttr::normal;
        }
    }
    v.eog_ids.assign(eog.begin(), eog.end());

    // Per-model token attributes llama.cpp sets by name.
    std::string name = file.get_string("general.name");
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    const std::string arch = file.get_string("general.architecture");
    const auto set_attr = [&](std::string_view text, uint32_t bit, bool on) {
        auto it = to_id.find(std::string(text));
        if (it == to_id.end()) return;
        v.attrs[it->second] = on ? (v.attrs[it->second] | bit) : (v.attrs[it->second] & ~bit);
    };
    if (contains_any(pre, {"jina-v2-de", "jina-v2-es", "jina-v2-code"}) || contains_any(arch, {"nomic-bert-moe", "jina-bert-v3"})) {
        set_attr("<mask>", TokenAttr::lstrip, true);
    } else if (contains_any(name, {"phi-3", "phi3"})) {
        constexpr uint32_t kSpecial = TokenAttr::control | TokenAttr::user_defined | TokenAttr::unknown;
        for (size_t i = 0; i < n; ++i)
            if (v.attrs[i] & kSpecial) v.attrs[i] |= TokenAttr::rstrip;
        set_attr("</s>", TokenAttr::rstrip, true);
        for (auto t : {"<unk>", "<s>", "<|endoftext|>"}) set_attr(t, TokenAttr::rstrip, false);
    } else if (contains_any(name, {"modern-bert"})) {
        set_attr("[MASK]", TokenAttr::lstrip, true);
    }
    return v;
}

}  // namespace llmn::model
