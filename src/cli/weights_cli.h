// The command-line side of weights through the swarm: -m MODEL_ID on a machine
// without the file, --weights-dir / --max-download, `llm-node share` and
// `llm-node models --swarm`.
#pragma once
#include <string>
#include <vector>

#include "cli/args.h"
#include "swarm/weights.h"

namespace llmn::cli {

// --max-download (one of swarm_flags(), with --weights-dir): bytes/s from "500K", "20M", "1G" or a plain number; 0 when absent.
uint64_t max_download(const Args& args);
// A progress callback drawing one bar labelled `label` (on a terminal only).
swarm::WeightsProgress weights_bar(const std::string& label);

// What a client (generate / chat / api) loads for -m SPEC: SPEC itself, or
// when SPEC is a 64-hex model id and no such file exists, the GGUF fetched from
// the swarm with only the client's parts (tokenizer and header, embeddings,
// final norm, head) downloaded and verified.
std::string client_model(const Args& args, const std::string& spec);

int cmd_share(int argc, char** argv);
// `llm-node models --swarm`: the models the swarm's nodes serve.
int list_swarm_models(const Args& args);

}  // namespace llmn::cli
