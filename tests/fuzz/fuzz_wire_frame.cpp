// Wire messages: decode arbitrary bytes with the default limits; whatever
// decodes must encode back to the same bytes (the encoding is canonical).
#include "net/messages.h"

using namespace llmn::net;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Message m;
    try {
        m = decode(data, size);
    } catch (const NetError&) {
        return 0;
    }
    (void)to_string(m);
    const std::vector<uint8_t> again = encode(m);
    if (again.size() != size || !std::equal(again.begin(), again.end(), data)) __builtin_trap();
    return 0;
}
