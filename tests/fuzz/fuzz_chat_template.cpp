// Chat templates: detection from a template text, an architecture name and vocab
// tokens, then rendering messages taken from the input. The input is split on
// NUL bytes: template, arch, then alternating role and content fields.
#include <string>
#include <vector>

#include "model/chat_template.h"

using namespace llmn::model;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<std::string> f(1);
    for (size_t i = 0; i < size; ++i) {
        if (data[i]) f.back().push_back(char(data[i]));
        else f.emplace_back();
    }
    f.resize(std::max<size_t>(f.size(), 2));
    const std::vector<std::string> vocab(f.begin() + 2, f.end());  // the fields as token texts too
    std::vector<ChatMessage> msgs;
    for (size_t i = 2; i + 1 < f.size(); i += 2) msgs.push_back({f[i], f[i + 1]});
    const ChatTemplate detected = ChatTemplate::detect(f[0], f[1], vocab);
    (void)ChatTemplate::format_from_name(f[0]);
    for (const ChatTemplate& t : {detected, ChatTemplate(ChatFormat(size % (int(ChatFormat::gemma) + 1)))}) {
        (void)t.render(msgs, true), (void)t.render(msgs, false), (void)t.turn_stops(), (void)t.name();
    }
    return 0;
}
