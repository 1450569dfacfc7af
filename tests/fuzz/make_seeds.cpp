// Writes the seed corpus of every fuzz target into DIR/<target>/:
//   build-fuzz/tests/fuzz/make_fuzz_seeds tests/fuzz/corpus
// Wire seeds: one frame per message kind (STYLE.md rule 9: a new message gets a
// seed here). GGUF seeds: a tiny random model per architecture, a vocab-only BPE
// file, truncated and v2 variants. Real chat templates and tokenizer test texts
// come from ../shared/models when it is present. Keys and signatures are fresh
// on every run, so rerunning rewrites those files.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fuzz_tokenizers.h"
#include "model/gguf_writer.h"
#include "net/identity.h"
#include "net/link_detail.h"
#include "support/random_model.h"
#include "swarm/node_record.h"

using namespace llmn;
namespace fs = std::filesystem;

namespace {

fs::path g_root;

void put(const std::string& target, const std::string& name, const std::string& bytes) {
    fs::create_directories(g_root / target);
    std::ofstream(g_root / target / name, std::ios::binary) << bytes;
}
std::string str(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }
std::string le32(uint32_t n) { return std::string{char(n), char(n >> 8), char(n >> 16), char(n >> 24)}; }
std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<std::pair<std::string, net::Message>> every_message() {
    net::Key32 k{};
    for (size_t i = 0; i < k.size(); ++i) k[i] = uint8_t(i * 7 + 1);
    const std::vector<uint8_t> hidden(32, 0x3c);
    net::Hello hello{net::kProtocolVersion, k, k};
    net::Auth auth;
    auth.signature.fill(0x55);
    net::OpenSession open{42, k, 0, 4, 128, "10.0.0.2:7000", 43, uint8_t(net::WireDType::f16), k};
    net::Step step{42, 0, 2, uint8_t(net::WireDType::f16), hidden};
    net::Step committed = step;
    committed.commit.fill(0x6b);
    net::Receipt receipt;
    receipt.session_id = 42;
    receipt.n_tokens = 2;
    receipt.in_digest = k;
    receipt.out_digest = k;
    receipt.signature.fill(0x44);
    receipt.hidden = hidden;
    net::Result result{42, 2, 1, uint8_t(net::WireDType::f32), hidden};
    net::Error error{42, uint16_t(net::Errc::bad_message), "bad_message: frame #3 truncated"};
    net::NodeInfo info{k, 22, 0, 11, 4, "0.1.0", 12345, k};
    net::OnionLayer layer{1, "[::1]:7001", 9, k, 0, 2, 64, 1, k, k, hidden};
    return {{"hello", hello}, {"auth", auth}, {"open_session", open}, {"step", step}, {"result", result},
            {"close", net::Close{42}}, {"error", error}, {"ping", net::Ping{7}}, {"pong", net::Pong{7}},
            {"opened", net::Opened{42, 512}}, {"node_info", info}, {"circuit_extend", net::CircuitExtend{5, hidden}},
            {"circuit_cell", net::CircuitCell{5, hidden}}, {"circuit_join", net::CircuitJoin{77}},
            {"circuit_ready", net::CircuitReady{77}}, {"onion_layer", layer}, {"dial_back", net::DialBack{7001, k}},
            {"dial_back_result", net::DialBackResult{1, "100.64.11.2:40000", ""}}, {"relay_register", net::RelayRegister{}},
            {"relay_registered", net::RelayRegistered{1, "100.64.11.2:40001", "", 16, 1u << 24}},
            {"relay_dial", net::RelayDial{k, 1500}}, {"relay_incoming", net::RelayIncoming{9}}, {"relay_accept", net::RelayAccept{9}},
            {"relay_ready", net::RelayReady{"100.64.12.2:40002", 3, 1500}},
            {"probe_request", net::ProbeRequest{5, "10.0.0.2:7000,10.0.0.3:7000"}},
            {"probe_answer", net::ProbeAnswer{5, "10.0.0.2:7000", k, 900, hidden}},
            {"step_committed", committed}, {"receipt", receipt}};
}

void wire_and_link_seeds() {
    std::string all;
    for (const auto& [name, m] : every_message()) {
        const std::string body = str(net::encode(m));
        put("wire_frame", name, body);
        const std::string record = std::string(1, '\1') + le32(uint32_t(body.size())) + body;  // sealed, tag message
        put("link_handshake", "sealed_" + name, "\2" + record);
        all += record;
    }
    put("link_handshake", "sealed_all", "\2" + all);
    const std::string ping = str(net::encode(net::Ping{1}));
    put("link_handshake", "sealed_rekey_final",
        "\2\2" + le32(uint32_t(ping.size())) + ping + "\1" + le32(uint32_t(ping.size())) + ping + "\3" + le32(1) + "\x08");
    put("link_handshake", "raw_after_handshake", std::string("\2\0", 2) + le32(8) + le32(4) + "abcd");
    put("link_handshake", "raw_huge_length", std::string("\2\0", 2) + le32(4) + le32(0xffffffffu));
    const auto framed = [](const std::vector<uint8_t>& b) { return le32(uint32_t(b.size())) + str(b); };
    net::Hello hello;
    hello.identity.fill(9);
    put("link_handshake", "hello_stage", std::string(1, '\0') + framed(net::encode(hello)));
    put("link_handshake", "auth_stage", "\1" + framed(net::encode(net::Auth{})));
    put("link_handshake", "auth_stage_ping", "\1" + framed(net::encode(net::Ping{1})));
}

void record_seeds() {
    const net::Identity id = net::Identity::generate();
    swarm::NodeRecord r;
    r.address = "192.0.2.7:7000";
    r.span_start = 0, r.span_end = 11, r.n_layer = 22;
    r.model_id.fill(0xab);
    r.tokens_per_s = 31.5f, r.free_sessions = 3, r.version = "0.1.0", r.expires_unix = 1900000000;
    r.sign(id);
    put("node_record", "signed", r.encode());
    r.address = "[2001:db8::1]:7000", r.span_start = 5, r.span_end = 6;
    put("node_record", "unsigned_v6", r.encode());
}

void gguf_seeds() {
    for (const char* arch : {"llama", "qwen2", "qwen3", "phi3"}) {
        testing::RandomModelSpec s;
        s.arch = arch, s.n_layer = 1, s.n_embd = 16, s.n_head = 2, s.n_head_kv = 1, s.n_ff = 32, s.n_vocab = 259;
        s.weight_type = tensor::DType::f16;
        s.tied = std::string(arch) == "qwen2";
        if (std::string(arch) == "qwen3") s.weight_type = tensor::DType::q8_0, s.n_embd = 32;
        const std::string path = (g_root / "gguf" / (std::string("random_") + arch)).string();
        fs::create_directories(g_root / "gguf");
        testing::write_random_model(s, path);
    }
    const model::Vocab bpe = fuzz::tiny_bpe("qwen2");
    model::GgufWriter w;
    w.set_string("general.architecture", "qwen2");
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_string("tokenizer.ggml.pre", "qwen2");
    w.set_array_strings("tokenizer.ggml.tokens", bpe.tokens);
    std::vector<int32_t> types;
    for (auto t : bpe.types) types.push_back(int32_t(t));
    w.set_array_i32("tokenizer.ggml.token_type", types);
    w.set_array_strings("tokenizer.ggml.merges", bpe.merges);
    w.set_u32("tokenizer.ggml.eos_token_id", uint32_t(bpe.eos_id));
    w.set_string("tokenizer.chat_template", "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}");
    const std::string vocab = str(w.to_bytes());
    put("gguf", "vocab_only_bpe", vocab);
    std::string v2 = vocab;
    v2[4] = 2;  // GGUF v2 has the v3 layout
    put("gguf", "vocab_only_bpe_v2", v2);
    const std::string llama = read_file((g_root / "gguf" / "random_llama").string());
    put("gguf", "truncated_header", llama.substr(0, 24));
    put("gguf", "truncated_metadata", llama.substr(0, 300));
    const std::string stories = read_file(LLM_NODE_SOURCE_DIR "/models/stories260K.gguf");
    const auto f = model::GgufFile::parse(std::vector<uint8_t>(stories.begin(), stories.end()));
    put("gguf", "stories260K_index_only", stories.substr(0, f->data_offset()));  // tensors past EOF
}

// Texts made here (used with every vocab slot), then llama.cpp's tokenizer test
// texts (one slot each).
std::pair<std::vector<std::string>, size_t> test_texts() {
    std::vector<std::string> texts = {"", "Hello world", " Hello  world\n", "\t\tindent\n\n\nlines", "hello<s>there</s>",
        "<|user|>\nhi<|end|>\n<|assistant|>", "<|im_start|>user\nhi<|im_end|>", "<|endoftext|>tail", "1234567890 3.14",
        "caf\xC3\xA9 na\xC3\xAFve \xF0\x9F\xA6\x99\xF0\x9F\x91\x8D", "\xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C",
        "\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7", "e\xCC\x81\xCC\x81 combining", "don't I'll we've 's", "\xFF\xFE\x80 bad utf8 \xC3",
        "\xE2\x96\x81sp mark", "    \n   \r\n  "};
    const size_t n_own = texts.size();
    for (const char* vocab : {"phi3-mini-vocab-only.gguf.inp", "gpt2-vocab-only.gguf.inp"}) {
        std::string inp = read_file(fuzz::shared_model((std::string("real/vocab/") + vocab).c_str()));
        const std::string sep = "\n__ggml_vocab_test__\n";
        for (size_t at = 0, next; at < inp.size(); at = next + sep.size()) {
            next = inp.find(sep, at);
            if (next == std::string::npos) next = inp.size();
            texts.push_back(inp.substr(at, next - at));
        }
    }
    return {texts, n_own};
}

void tokenizer_seeds() {
    const auto [texts, n_own] = test_texts();
    for (const auto& [target, n_slots] : {std::pair<std::string, int>{"tokenizer_spm", 5}, {"tokenizer_bpe", 9}}) {
        for (size_t i = 0; i < texts.size(); ++i) {
            for (int slot = 0; slot < n_slots; ++slot) {
                if (i >= n_own && slot != int(i % n_slots)) continue;
                const std::string head = std::string(1, char(slot)) + le32(uint32_t(i * 37 + slot));
                put(target, "text" + std::to_string(i) + "_slot" + std::to_string(slot), head + texts[i]);
            }
        }
    }
}

void chat_seeds() {
    std::vector<std::pair<std::string, std::string>> templates = {
        {"chatml_name", "chatml"}, {"llama3_name", "llama3"}, {"mistral_v7_name", "mistral-v7"}, {"empty", ""},
        {"llama2", "{% if messages[0]['role'] == 'system' %}<<SYS>>\n{% endif %}[INST] {{ m }} [/INST]{{ eos_token }}"},
        {"mistral", "{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }}[/INST]{% endfor %}"},
        {"gemma", "<start_of_turn>user\n{{ m }}<end_of_turn>\n<start_of_turn>model\n"},
        {"zephyr", "<|user|>\n{{ m }}<|endoftext|>\n<|assistant|>\n"},
        {"phi4", "<|im_start|>system<|im_sep|>{{ m }}<|im_end|>"},
        {"llama3", "<|start_header_id|>{{ role }}<|end_header_id|>\n\n{{ m }}<|eot_id|>"}};
    for (const char* f : {"real/vocab/phi3-mini-vocab-only.gguf", "synthetic/qwen2-q8_0.gguf",
                          "synthetic/qwen3-q4_k_m.gguf", "synthetic/llama-bpe-q4_0.gguf"}) {
        try {
            const auto file = model::GgufFile::open(fuzz::shared_model(f));
            templates.push_back({fs::path(f).stem().string(), file->get_string("tokenizer.chat_template")});
        } catch (const std::exception&) {
        }
    }
    static const char kMsgs[] = "system\0You are terse.\0user\0Hi there\0assistant\0 Hello! \0user\0Bye";
    const std::string msgs(kMsgs, sizeof kMsgs - 1);
    for (const auto& [name, text] : templates)
        for (const char* arch : {"llama", "phi3", "gemma2", "qwen2"})
            put("chat_template", name + "_" + arch, text + '\0' + arch + '\0' + msgs);
}

void api_seeds() {
    put("api_request", "chat_minimal", R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");
    put("api_request", "chat_full", R"({"model":"stories","messages":[{"role":"developer","content":"be brief"},)"
        R"({"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},{"role":"assistant","content":null}],)"
        R"("max_tokens":32,"max_completion_tokens":16,"temperature":0.7,"top_p":0.9,"top_k":40,"min_p":0.05,"repeat_penalty":1.1,)"
        R"("presence_penalty":0,"frequency_penalty":0.5,"seed":-3,"n":1,"logprobs":false,"tools":[],"stop":["\n","END"],)"
        R"("stream":true,"stream_options":{"include_usage":true}})");
    put("api_request", "completion", R"({"model":"m","prompt":"Once upon a time","max_tokens":8,"stop":"\n","echo":false,"suffix":null})");
    put("api_request", "completion_array", R"({"model":"m","prompt":["x"],"seed":18446744073709551615,"temperature":2})");
    put("api_request", "bad_types", R"({"model":1,"prompt":[1,2],"messages":{},"n":2,"logprobs":true,"stream":"yes"})");
    put("api_request", "unicode", "{\"model\":\"m\",\"prompt\":\"\\ud83e\\udd99 caf\xC3\xA9\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    g_root = argv[1];
    wire_and_link_seeds();
    record_seeds();
    gguf_seeds();
    tokenizer_seeds();
    chat_seeds();
    api_seeds();
    return 0;
}
