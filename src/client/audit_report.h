// Signed reports of audits that found a hop wrong (client/audit.h).
//
// A report names the accused hop and the replica that disagreed with it, and
// carries both nodes' own signed receipts for the positions (net/audit.h:
// digests of the input and of the output each of them computed), sketches of
// the two outputs at the first wrong position, and the reporter's signature.
// Anyone can check that the two nodes did sign those conflicting outputs; no
// one but a third re-run can tell which of them lied. So a report counts
// against both, and weigh_reports distrusts a node only when it disagreed with
// several replicas for several reporters: one forged or mistaken report (a
// lying replica) does not sink an honest node.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "client/audit.h"
#include "net/identity.h"

namespace llmn::client {

struct ReportParty {
    std::string address;
    net::Key32 id{};
};

// JSON, one line, signed by `reporter`.
std::string make_audit_report(const net::Key32& model_id, const AuditFault& f, const ReportParty& accused, const ReportParty& replica,
                              double tolerance, const net::Identity& reporter);

struct ReportCheck {
    bool valid = false;
    std::string why;                        // when not valid
    std::string accused, replica, reporter;  // node ids (hex)
};
// Checks the reporter's signature and that each receipt is signed by the node it names.
ReportCheck check_audit_report(const std::string& json);

// Appends the report to the reports file (default ~/.cache/llm-node/audit-reports.jsonl;
// LLM_NODE_REPORTS overrides); false when it cannot be written.
bool save_audit_report(const std::string& json);
std::string audit_reports_path();

struct Standing {
    int reports = 0;
    int reporters = 0;  // distinct
    int replicas = 0;   // distinct nodes that disagreed with it
    bool distrusted = false;  // >= 2 reporters and >= 2 replicas
};
// By node id (hex), over the valid reports among `reports`; invalid ones are ignored.
std::map<std::string, Standing> weigh_reports(const std::vector<std::string>& reports);

}  // namespace llmn::client
