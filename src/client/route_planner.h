// Choosing a route: from the nodes a client knows of, the chain of spans that
// covers every layer, and for an onion circuit an entry and an exit relay.
//
// In an open swarm nothing a node says about itself is believed: its speed is
// what this client measured, or else its claim, but never faster than the
// median claim (so claiming 4 billion tokens/s buys nothing). The planner then
// draws at random among the routes within `slack` of the cheapest, so a few
// fast-looking nodes cannot take every route, and keeps the hops of one
// circuit apart: no two in one network (/16 for IPv4, /48 for IPv6) or under
// one identity. A swarm the operator runs itself (`trusted`) gets the fastest
// route by the nodes' own figures, the same each time.
#pragma once
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "net/message_types.h"

namespace llmn::client {

struct Candidate {
    std::string address;               // "host:port", "[v6]:port" or "ID@relay-host:port" (a node behind a relay)
    int span_start = 0, span_end = 0;  // layers it serves; equal: relay only
    double seconds_per_layer = 0;      // CLAIMED compute time per token per layer (NODE_INFO; 0: none claimed)
    double rtt_seconds = 0;            // round trip this client measured (0: unknown, as for a node known from a record only)
    int free_sessions = 1;             // free session slots it reports
    net::Key32 identity{};             // its long-term public key (all zero: unknown)
    double measured_seconds_per_layer = 0;  // what this client observed from its own steps (0: not measured)
    uint8_t isa = 0, isa_set = 0;      // NODE_INFO: the kernel set it runs on, and those it can run on request

    bool relay_only() const { return span_end <= span_start; }
};

struct PlannerConfig {
    double default_seconds_per_layer = 1e-3;  // for nodes that claim nothing
    double busy_penalty_seconds = 1.0;         // added for a node with no free session slot
    int first_layer = 0;                       // the route starts here (the client runs the layers below: --local-layers)
    // The operator runs every node (--nodes in a private swarm): believe the
    // claims, take the fastest route and the old relay order (relay-only nodes
    // first, then the nearest), and drop the network rule. Identities still
    // never repeat in one circuit.
    bool trusted = false;
    // Open swarm: a plan costs at most this many times the cheapest (each
    // node's cost is scaled by its own random factor in [1, slack] per plan).
    // 1: always the cheapest (ties go to the earlier candidate).
    double slack = 1.5;
    double default_rtt_seconds = 0.05;  // unknown round trips count as the median known one, or this when none is known
};

struct CircuitChoice {
    std::vector<std::string> spans;  // span nodes in layer order, covering [first_layer, n_layer)
    std::string entry_relay;         // "" when none was asked for
    std::string exit_relay;          // "" when none was asked for
};

// The network a hop's address belongs to, for the rule that keeps the hops of
// one circuit apart: "66.77.0.0/16" for IPv4, "2001:0db8:0001::/48" for IPv6,
// the relay's network for "ID@relay:port", "host <lower-case name>" for a
// host name (the planner resolves nothing). "" for addresses exempt from the rule:
// loopback, private (10/8, 172.16/12, 192.168/16, 100.64/10), link-local,
// unique-local (fc00::/7) and unspecified ones, and "localhost".
std::string network_of(const std::string& address);

// The hops of a circuit through `candidates`, skipping `banned` addresses:
// spans covering [cfg.first_layer, n_layer) (a span may run only the tail of
// what it serves, from where the previous one stopped), then an entry relay
// and/or an exit relay when asked for. Relays are nodes off the route, relay
// only or not, drawn uniformly among those that keep the rules.
//
// Cost of a hop: layers run x seconds per layer + round trip (+ busy penalty
// when it has no free slot). Seconds per layer: the measured figure, else the
// claim (or default_seconds_per_layer), raised to at least the slower of the
// median claim and the best measured figure among nodes that lived up to
// their own claim (measured within 2x of it); in `trusted` mode the measured
// figure, else the claim, as given. Unknown round trips count as the median.
//
// Rules for every circuit, open or trusted: no two hops (entry, each span,
// exit) share an identity (Candidate::identity, the ID of an "ID@relay"
// address, the address itself, and for a relayed node its relay's address).
// Open swarm only: no two hops share a network (network_of; exempt addresses
// never clash), and the entry and exit relays avoid a private /24 (IPv6
// unique-local /64) that another hop already uses, when another choice exists.
//
// Returns nullopt when no circuit keeps the rules, with the reason in `why`
// ("no route covers layers 0:8 ...", "an onion circuit needs 2 relay(s) ...").
// Without relays it is the plain route of an open swarm, under the same rules.
// Draws from `rng` only when !cfg.trusted, so a seed replays a plan.
std::optional<CircuitChoice> plan_circuit(const std::vector<Candidate>& candidates, int n_layer, const std::set<std::string>& banned,
                                          const PlannerConfig& cfg, bool entry_relay, bool exit_relay, std::mt19937_64& rng,
                                          std::string* why = nullptr);

// The fastest route in trusted mode (cfg.trusted is taken as true): the spans
// of plan_circuit without relays, or an empty vector when the candidates
// cannot cover every layer. For nodes the operator runs and for tests.
std::vector<std::string> plan_route(const std::vector<Candidate>& candidates, int n_layer, const std::set<std::string>& banned = {},
                                    const PlannerConfig& cfg = {});

}  // namespace llmn::client
