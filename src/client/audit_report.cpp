#include "client/audit_report.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "net/audit.h"

namespace llmn::client {

namespace {

using nlohmann::json;

std::string hex(const uint8_t* p, size_t n) { return net::to_hex(p, n); }

template <size_t N>
bool from_hex(const std::string& s, std::array<uint8_t, N>& out) {
    if (s.size() != 2 * N) return false;
    for (size_t i = 0; i < N; ++i) {
        const std::string byte = s.substr(2 * i, 2);
        char* end = nullptr;
        const long v = std::strtol(byte.c_str(), &end, 16);
        if (*end != '\0' || !std::isxdigit(uint8_t(byte[0])) || !std::isxdigit(uint8_t(byte[1]))) return false;
        out[i] = uint8_t(v);
    }
    return true;
}

json receipt_json(const net::Receipt& r) {
    return json{{"session_id", r.session_id}, {"pos", r.pos}, {"n_tokens", r.n_tokens}, {"dtype", r.dtype},
                {"in_digest", hex(r.in_digest.data(), 32)}, {"out_digest", hex(r.out_digest.data(), 32)},
                {"prev_commit", hex(r.prev_commit.data(), 64)}, {"signature", hex(r.signature.data(), 64)}};
}

bool receipt_from_json(const json& j, net::Receipt& r) {
    try {
        r.session_id = j.at("session_id").get<uint64_t>();
        r.pos = j.at("pos").get<uint32_t>();
        r.n_tokens = j.at("n_tokens").get<uint32_t>();
        r.dtype = j.at("dtype").get<uint8_t>();
        return from_hex(j.at("in_digest").get<std::string>(), r.in_digest) && from_hex(j.at("out_digest").get<std::string>(), r.out_digest) &&
               from_hex(j.at("prev_commit").get<std::string>(), r.prev_commit) && from_hex(j.at("signature").get<std::string>(), r.signature);
    } catch (const json::exception&) {
        return false;
    }
}

}  // namespace

std::string make_audit_report(const net::Key32& model_id, const AuditFault& f, const ReportParty& accused, const ReportParty& replica,
                              double tolerance, const net::Identity& reporter) {
    json body{{"kind", "llm-node audit report v1"},
              {"model_id", hex(model_id.data(), 32)},
              {"accused", {{"address", accused.address}, {"id", hex(accused.id.data(), 32)}}},
              {"replica", {{"address", replica.address}, {"id", hex(replica.id.data(), 32)}}},
              {"pos", f.pos},
              {"what", f.what},
              {"relative_error", f.rel_error},
              {"tolerance", tolerance},
              {"accused_sketch", f.hop_sketch},
              {"replica_sketch", f.replica_sketch},
              {"reporter", hex(reporter.public_key().data(), 32)}};
    if (f.receipt) body["accused_receipt"] = receipt_json(*f.receipt);
    if (f.replica_receipt) body["replica_receipt"] = receipt_json(*f.replica_receipt);
    const std::string text = body.dump();
    const net::Sig64 sig = reporter.sign(reinterpret_cast<const uint8_t*>(text.data()), text.size());
    return json{{"report", body}, {"signature", hex(sig.data(), 64)}}.dump();
}

ReportCheck check_audit_report(const std::string& text) {
    ReportCheck c;
    try {
        const json j = json::parse(text);
        const json& body = j.at("report");
        net::Key32 model_id{}, accused{}, replica{}, reporter{};
        net::Sig64 sig{};
        if (!from_hex(body.at("model_id").get<std::string>(), model_id) || !from_hex(body.at("accused").at("id").get<std::string>(), accused) ||
            !from_hex(body.at("replica").at("id").get<std::string>(), replica) || !from_hex(body.at("reporter").get<std::string>(), reporter) ||
            !from_hex(j.at("signature").get<std::string>(), sig)) {
            c.why = "malformed ids or signature";
            return c;
        }
        c.accused = hex(accused.data(), 32);
        c.replica = hex(replica.data(), 32);
        c.reporter = hex(reporter.data(), 32);
        const std::string signed_text = body.dump();
        if (!net::verify_signature(reporter, sig, reinterpret_cast<const uint8_t*>(signed_text.data()), signed_text.size())) {
            c.why = "the reporter's signature does not verify";
            return c;
        }
        // A receipt is checked against the node it is attributed to: a report
        // cannot put words in a node's mouth.
        for (const auto& [field, node] : {std::pair{"accused_receipt", accused}, std::pair{"replica_receipt", replica}}) {
            if (!body.contains(field)) continue;
            net::Receipt r;
            if (!receipt_from_json(body.at(field), r)) {
                c.why = std::string("malformed ") + field;
                return c;
            }
            const std::vector<uint8_t> t = net::receipt_statement(model_id, r);
            if (!net::verify_signature(node, r.signature, t.data(), t.size())) {
                c.why = std::string(field) + " is not signed by the node it names";
                return c;
            }
        }
        if (!body.contains("accused_receipt")) {
            c.why = "no receipt of the accused";
            return c;
        }
        c.valid = true;
    } catch (const json::exception& e) {
        c.why = std::string("not a report: ") + e.what();
    }
    return c;
}

std::string audit_reports_path() {
    if (const char* p = std::getenv("LLM_NODE_REPORTS"); p && *p) return p;
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/llm-node/audit-reports.jsonl";
    if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/llm-node/audit-reports.jsonl";
    return "";
}

bool save_audit_report(const std::string& json_text) {
    const std::string path = audit_reports_path();
    if (path.empty()) return false;
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    std::ofstream out(path, std::ios::app);
    out << json_text << '\n';
    return bool(out);
}

std::map<std::string, Standing> weigh_reports(const std::vector<std::string>& reports) {
    std::map<std::string, std::set<std::string>> reporters, replicas;
    std::map<std::string, Standing> out;
    for (const std::string& r : reports) {
        const ReportCheck c = check_audit_report(r);
        if (!c.valid) continue;
        ++out[c.accused].reports;
        reporters[c.accused].insert(c.reporter);
        replicas[c.accused].insert(c.replica);
    }
    for (auto& [id, s] : out) {
        s.reporters = int(reporters[id].size());
        s.replicas = int(replicas[id].size());
        s.distrusted = s.reporters >= 2 && s.replicas >= 2;
    }
    return out;
}

}  // namespace llmn::client
