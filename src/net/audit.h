// What a hop of an audited session signs (OPEN_SESSION.audit = 1).
//
// After each step a span hop sends the bytes on with a commitment (STEP.commit:
// its signature over the next hop's session id, the positions and the digest
// of those bytes) and sends its owner a RECEIPT (the digests of what it got and
// what it sent, signed, with the output). The next hop checks the commitment
// before it computes, so a hop cannot send its owner one output and the next
// hop another without signing both: every output the owner audits is one the
// hop is bound to, and a wrong one is pinned on the hop that signed it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "net/identity.h"
#include "net/messages.h"

namespace llmn::net {

// BLAKE2b-256 of hidden-state bytes as they travel.
Key32 hidden_digest(const std::vector<uint8_t>& bytes);

// Signed by the sending hop; verified by the next hop with the identity the
// owner named in OPEN_SESSION.prev_hop.
std::vector<uint8_t> commit_statement(uint64_t next_session_id, uint32_t pos, uint32_t n_tokens, uint8_t dtype, const Key32& digest);

// What RECEIPT.signature covers (every field but the signature and the output bytes, which out_digest stands for).
std::vector<uint8_t> receipt_statement(const Key32& model_id, const Receipt& r);
void sign_receipt(Receipt& r, const Key32& model_id, const Identity& id);
// The signature verifies under `hop` and out_digest is the digest of r.hidden.
bool receipt_valid(const Receipt& r, const Key32& model_id, const Key32& hop);

}  // namespace llmn::net
