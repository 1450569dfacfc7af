// Signed node records (DHT values and HELLO payloads): decode arbitrary bytes,
// verify the signature, and re-encode whatever decodes to the same bytes.
#include "swarm/node_record.h"

using namespace llmn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    swarm::NodeRecord r;
    try {
        r = swarm::NodeRecord::decode(bytes);
    } catch (const swarm::RecordError&) {
        return 0;
    }
    (void)r.verify(), (void)r.expired(0), (void)r.signed_bytes();
    if (r.encode() != bytes) __builtin_trap();
    return 0;
}
