// A real `llm-node api` process for the API tests, over three `llm-node serve`
// processes (spans 0:2 2:4 4:6 of a small random model) or in-process layers
// (--local); all on 127.0.0.1.
#pragma once
#include <httplib.h>

#include <memory>
#include <string>
#include <vector>

#include "support/node_process.h"
#include "support/random_model.h"

namespace llmn::testing {

inline std::string api_test_model() {
    static const std::string path = [] {
        RandomModelSpec spec;
        spec.n_layer = 6;
        spec.n_embd = 128;
        spec.n_ff = 256;
        spec.ctx_len = 256;
        return write_random_model(spec, temp_path("api-model.gguf"));
    }();
    return path;
}

struct ApiSwarm {
    std::vector<std::unique_ptr<NodeProcess>> nodes;
    std::unique_ptr<NodeProcess> api;
    std::string model_id = "api-model";

    explicit ApiSwarm(bool local, std::vector<std::string> extra = {}) {
        const std::string model = api_test_model();
        std::vector<std::string> cmd = {"api", "-m", model, "--listen", "127.0.0.1:0", "-t", "1"};
        if (local) {
            cmd.push_back("--local");
        } else {
            std::string list;
            for (const char* span : {"0:2", "2:4", "4:6"}) {
                nodes.push_back(std::make_unique<NodeProcess>(model, span, std::vector<std::string>{"--max-sessions", "8"}));
                list += (list.empty() ? "" : ",") + nodes.back()->address();
            }
            cmd.insert(cmd.end(), {"--nodes", list});
        }
        cmd.insert(cmd.end(), extra.begin(), extra.end());
        api = std::make_unique<NodeProcess>(cmd);
    }
    std::unique_ptr<httplib::Client> client() const {
        auto c = std::make_unique<httplib::Client>("http://" + api->address());
        c->set_read_timeout(60, 0);
        return c;
    }
};

}  // namespace llmn::testing
