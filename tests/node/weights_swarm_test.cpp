// Weights through the swarm: three nodes that hold a model seed it as a
// torrent; a fourth node started with nothing but the model id fetches the
// header and only its span, and serves it with the single-process output; a
// client with only the id fetches only its parts; a seeder that serves
// corrupted pieces is caught and banned; a fetch killed with kill -9 resumes.
// Everything on 127.0.0.1 (one-machine DHT settings, no LSD or UPnP).
#include <gtest/gtest.h>

#include <libtorrent/add_torrent_params.hpp>
#include <libtorrent/session.hpp>
#include <libtorrent/settings_pack.hpp>
#include <libtorrent/torrent_handle.hpp>
#include <libtorrent/torrent_info.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "../cli/run_process.h"
#include "engine/model.h"
#include "engine/model_id.h"
#include "model/gguf_reader.h"
#include "model/partial_model.h"
#include "net/identity.h"
#include "support/node_process.h"
#include "support/random_model.h"
#include "swarm/weights.h"

namespace llmn::node {
namespace {

namespace fs = std::filesystem;
using testing::NodeProcess;
using Clock = std::chrono::steady_clock;

std::vector<std::string> local_dht(const std::string& listen, const std::string& bootstrap) {
    std::vector<std::string> f = {"--no-lan", "--no-upnp", "--one-machine", "--dht-listen", listen};
    if (bootstrap.empty()) f.push_back("--standalone");
    else f.insert(f.end(), {"--bootstrap", bootstrap});
    return f;
}

int free_udp_port() {
    static int next = 40000 + int(getpid() % 15000);
    return next++;
}

// An unsigned number after "key": in `text`, or -1.
long long number_after(const std::string& text, const std::string& key) {
    const auto at = text.rfind("\"" + key + "\":");
    if (at == std::string::npos) return -1;
    return std::atoll(text.c_str() + at + key.size() + 3);
}
double real_after(const std::string& text, const std::string& key) {
    const auto at = text.rfind("\"" + key + "\":");
    return at == std::string::npos ? -1.0 : std::atof(text.c_str() + at + key.size() + 3);
}

std::string token_ids(const std::string& out) {
    std::string s;
    for (size_t p = out.find("{\"id\":"); p != std::string::npos; p = out.find("{\"id\":", p + 1))
        s += out.substr(p + 6, out.find(',', p) - p - 6) + " ";
    return s;
}

struct WeightsSwarm {
    std::string model, id;
    uint64_t file_bytes = 0;
    std::string seed_dht = "127.0.0.1:" + std::to_string(free_udp_port());
    std::vector<std::unique_ptr<NodeProcess>> seeders;
    std::string root;

    explicit WeightsSwarm(const std::string& name) {
        testing::RandomModelSpec spec;
        spec.arch = "llama";
        spec.n_layer = 8;
        spec.n_embd = 256;
        spec.n_head = 4;
        spec.n_head_kv = 2;
        spec.n_ff = 768;
        spec.n_vocab = 4000;
        spec.weight_type = tensor::DType::q8_0;
        root = testing::temp_path(name + "-" + std::to_string(getpid()));
        fs::remove_all(root);
        fs::create_directories(root);
        model = testing::write_random_model(spec, root + "/model.gguf");
        const auto m = engine::Model::load(model);
        const net::Key32 k = engine::model_id(*m);
        id = net::to_hex(k.data(), k.size());
        file_bytes = m->file().file_size();
    }
    // Three nodes that hold the file (and so seed it): 0:3, 3:8 and 0:8.
    void start_seeders() {
        const char* spans[] = {"0:3", "3:8", "0:8"};
        for (int i = 0; i < 3; ++i) {
            std::vector<std::string> cmd = {"start", model, "--layers", spans[i], "--listen", "127.0.0.1:0", "-t", "1",
                                            "--weights-dir", root + "/seed" + std::to_string(i)};
            auto f = local_dht(i == 0 ? seed_dht : "127.0.0.1:0", i == 0 ? "" : seed_dht);
            cmd.insert(cmd.end(), f.begin(), f.end());
            seeders.push_back(std::make_unique<NodeProcess>(cmd));
        }
    }
    std::vector<std::string> fetcher_cmd(const std::string& layers, const std::string& wdir) const {
        std::vector<std::string> cmd = {"start", id, "--layers", layers, "--listen", "127.0.0.1:0", "-t", "1", "--weights-dir", wdir};
        auto f = local_dht("127.0.0.1:0", seed_dht);
        cmd.insert(cmd.end(), f.begin(), f.end());
        return cmd;
    }
    // Bytes of the pieces that hold the header and `tensors` (what a fetch of them needs).
    uint64_t piece_bytes(const std::vector<std::string>& tensors, uint64_t header) const {
        const uint32_t piece = swarm::weights_piece_size(file_bytes);
        const auto fp = model::GgufFile::open(model);
        const model::GgufFile& f = *fp;
        std::set<uint64_t> pieces;
        auto add = [&](uint64_t off, uint64_t n) {
            for (uint64_t p = off / piece; n && p <= (off + n - 1) / piece; ++p) pieces.insert(p);
        };
        add(0, header);
        for (const auto& t : tensors) add(f.tensor(t)->offset, f.tensor(t)->nbytes);
        uint64_t sum = 0;
        for (uint64_t p : pieces) sum += std::min<uint64_t>(piece, file_bytes - p * piece);
        return sum;
    }
    uint64_t tensor_bytes(const std::vector<std::string>& tensors) const {
        const auto fp = model::GgufFile::open(model);
        const model::GgufFile& f = *fp;
        uint64_t sum = 0;
        for (const auto& t : tensors) sum += f.tensor(t)->nbytes;
        return sum;
    }
    uint64_t header_bytes() const { return model::GgufFile::open(model)->header_bytes().size(); }
};

std::vector<std::string> needed(const std::string& model, int a, int b, bool stages) {
    const auto fp = model::GgufFile::open(model);
    const model::GgufFile& f = *fp;
    return model::tensors_needed(f, a, b, stages);
}

TEST(WeightsSwarm, ANodeAndAClientJoinWithOnlyTheModelIdAndFetchOnlyTheirParts) {
    WeightsSwarm sw("weights-join");
    sw.start_seeders();
    // The fourth node: layers 3:6 of a model it does not have.
    const auto t0 = Clock::now();
    NodeProcess d(sw.fetcher_cmd("3:6", sw.root + "/d"), std::chrono::seconds(90));
    const double join_s = std::chrono::duration<double>(Clock::now() - t0).count();
    const std::string out = testing::read_file(d.out_path());
    // "downloaded": the span's fetch; "total_downloaded": also the manifest and the header before it.
    const long long got = number_after(out, "downloaded"), total = number_after(out, "total_downloaded");
    const uint64_t span = sw.tensor_bytes(needed(sw.model, 3, 6, false)), header = sw.header_bytes();
    const uint64_t manifest = 64 + 40 * 200;  // a generous bound on the manifest's size for this model
    std::printf("[weights] node 3:6 joined with the model id in %.1f s: downloaded %lld bytes in all (%lld for the span) for "
                "%llu bytes of span tensors (%.1f%% of the %llu-byte file; header %llu bytes); span fetched at %.1f MB/s\n",
                join_s, total, got, (unsigned long long)span, 100.0 * double(total) / double(sw.file_bytes),
                (unsigned long long)sw.file_bytes, (unsigned long long)header,
                double(got) / 1e6 / std::max(1e-3, real_after(out, "seconds")));
    ASSERT_GT(got, 0) << out << d.log();
    EXPECT_LE(uint64_t(total), span + span / 10 + header + manifest) << "fetched more than its span + 10% + metadata";
    EXPECT_GE(uint64_t(got), span) << "cannot have its span without downloading it";

    // The swarm's catalog lists the model: four nodes (three seeders and the new one), every layer covered.
    // (Nodes announce on the catalog 8-12 s after they serve: polled, bounded.)
    {
        std::vector<std::string> cmd = {testing::llm_node_binary(), "models", "--swarm", "--json"};
        auto lf = local_dht("127.0.0.1:0", sw.seed_dht);
        cmd.insert(cmd.end(), lf.begin(), lf.end());
        auto listed = testing::run_process(cmd, 60);
        for (int i = 0; i < 10 && number_after(listed.out, "nodes") < 4; ++i) {
            std::this_thread::sleep_for(std::chrono::seconds(2));
            listed = testing::run_process(cmd, 60);
        }
        ASSERT_EQ(listed.exit_code, 0) << listed.describe();
        EXPECT_NE(listed.out.find("\"model_id\":\"" + sw.id + "\""), std::string::npos) << listed.out << listed.err;
        EXPECT_EQ(number_after(listed.out, "nodes"), 4) << listed.out << listed.err;
        EXPECT_EQ(number_after(listed.out, "layers_covered"), 8) << listed.out;
        EXPECT_EQ(number_after(listed.out, "size_bytes"), (long long)sw.file_bytes) << listed.out;
    }

    // A client with only the id, through the seeders and the new node: the single-process output.
    std::vector<std::string> gen = {testing::llm_node_binary(), "generate", "-m", sw.id, "-p", "weights travel", "-n", "12",
                                    "--temp", "0", "--json", "-t", "1", "--wire-dtype", "f32",
                                    "--route", sw.seeders[0]->address() + "," + d.address() + "," + sw.seeders[1]->address(),
                                    "--weights-dir", sw.root + "/client"};
    auto f = local_dht("127.0.0.1:0", sw.seed_dht);
    gen.insert(gen.end(), f.begin(), f.end());
    const auto remote = testing::run_process(gen, 120);
    const auto local = testing::run_process({testing::llm_node_binary(), "generate", "-m", sw.model, "-p", "weights travel", "-n",
                                             "12", "--temp", "0", "--json", "-t", "1"}, 60);
    ASSERT_EQ(remote.exit_code, 0) << remote.describe();
    ASSERT_EQ(local.exit_code, 0) << local.describe();
    EXPECT_EQ(token_ids(remote.out), token_ids(local.out));
    EXPECT_FALSE(token_ids(local.out).empty());
    std::smatch m;
    ASSERT_TRUE(std::regex_search(remote.err, m, std::regex("fetched (\\d+) KiB for (\\d+) KiB of client tensors"))) << remote.err;
    const uint64_t client_got = std::stoull(m[1]) << 10;
    const uint64_t parts = sw.tensor_bytes(needed(sw.model, 0, 0, true)) + header;
    std::printf("[weights] client: downloaded %llu KiB for %llu KiB of parts (tokenizer/header, embeddings, norm, head; %.1f%% of the file)\n",
                (unsigned long long)(client_got >> 10), (unsigned long long)(parts >> 10), 100.0 * double(client_got) / double(sw.file_bytes));
    EXPECT_LE(client_got, parts + parts / 10 + manifest + 1024) << "the client fetched more than its parts + 10%";
}

// A libtorrent seeder that claims every piece of the model's torrent but
// serves a corrupted copy (every byte of tensor data flipped).
class HostileSeeder {
public:
    HostileSeeder(const std::string& torrent_file, const std::string& model, const std::string& manifest, const std::string& dir,
                  const std::string& bootstrap) {
        const std::string name = lt::torrent_info(torrent_file).name();
        fs::create_directories(dir + "/" + name);
        // The manifest is honest (it must be, or the fetcher drops the torrent at once); in place
        // before the torrent is added, so libtorrent never finds a file missing.
        fs::copy_file(manifest, dir + "/" + name + "/manifest", fs::copy_options::overwrite_existing);
        std::string bytes = testing::read_file(model);
        const auto fp = model::GgufFile::open(model);
        const model::GgufFile& f = *fp;
        for (size_t i = f.data_offset(); i < bytes.size(); ++i) bytes[i] = char(~bytes[i]);
        std::ofstream(dir + "/" + name + "/model.gguf", std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
        lt::settings_pack sp;
        sp.set_str(lt::settings_pack::listen_interfaces, "127.0.0.1:0");
        sp.set_bool(lt::settings_pack::enable_lsd, false);
        sp.set_bool(lt::settings_pack::enable_upnp, false);
        sp.set_bool(lt::settings_pack::enable_natpmp, false);
        sp.set_bool(lt::settings_pack::enable_dht, true);
        sp.set_str(lt::settings_pack::dht_bootstrap_nodes, bootstrap);
        sp.set_bool(lt::settings_pack::dht_restrict_routing_ips, false);
        sp.set_bool(lt::settings_pack::dht_restrict_search_ips, false);
        sp.set_bool(lt::settings_pack::allow_multiple_connections_per_ip, true);
        sp.set_int(lt::settings_pack::min_reconnect_time, 1);  // else it waits 60 s to dial a peer that dropped it
        ses_ = std::make_unique<lt::session>(lt::session_params(std::move(sp)));
        lt::add_torrent_params p;
        p.ti = std::make_shared<lt::torrent_info>(torrent_file);
        p.save_path = dir;
        // "Resume data" that claims every piece, so it serves without checking.
        p.have_pieces.resize(p.ti->num_pieces(), true);
        p.flags &= ~(lt::torrent_flags::auto_managed | lt::torrent_flags::paused);
        h_ = ses_->add_torrent(std::move(p));
    }
    ~HostileSeeder() {
        stop_ = true;
        if (dialer_.joinable()) dialer_.join();
    }
    // Dials the node every 300 ms, as a peer set on serving bad pieces would
    // (libtorrent drops seeds between the header and the span, and once banned
    // refuses them).
    void keep_connecting(const std::string& ip, int port) {
        const lt::tcp::endpoint ep(lt::make_address(ip), uint16_t(port));
        dialer_ = std::thread([this, ep] {
            for (int i = 0; i < 600 && !stop_; ++i) {
                if (h_.status().errc) {  // never stop serving bad pieces
                    h_.clear_error();
                    h_.resume();
                }
                h_.connect_peer(ep);
                std::this_thread::sleep_for(std::chrono::milliseconds(300));
            }
        });
    }

private:
    std::unique_ptr<lt::session> ses_;
    lt::torrent_handle h_;
    std::atomic<bool> stop_{false};
    std::thread dialer_;
};

TEST(WeightsSwarm, CorruptedPiecesAreRejectedAndFetchedAgainFromAnHonestPeer) {
    WeightsSwarm sw("weights-hostile");
    sw.start_seeders();
    const std::string mdir = sw.root + "/seed0/" + sw.id;
    HostileSeeder bad(mdir + "/torrent", sw.model, mdir + "/manifest", sw.root + "/hostile", sw.seed_dht);
    // A slow fetch (256 KiB/s) so the hostile seeder is asked for pieces before it ends.
    auto cmd = sw.fetcher_cmd("0:8", sw.root + "/d");
    cmd.insert(cmd.end(), {"--max-download", "256K"});
    NodeProcess d(cmd, std::chrono::seconds(0));  // returns at once: we watch its log
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    std::smatch m;
    std::string log;
    while (Clock::now() < deadline && !std::regex_search(log, m, std::regex("BitTorrent port (\\d+)"))) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        log = d.log();
    }
    ASSERT_FALSE(m.empty()) << log;
    bad.keep_connecting("127.0.0.1", std::stoi(m[1]));
    ASSERT_TRUE(d.wait_listening(std::chrono::seconds(120))) << d.log();
    const std::string out = testing::read_file(d.out_path());
    const long long failures = number_after(out, "hash_failures"), banned = number_after(out, "banned_peers");
    std::printf("[weights] hostile seeder: %lld pieces failed their hash, %lld peers banned; the node then served 0:8\n", failures, banned);
    EXPECT_GT(failures, 0) << "the hostile seeder was never asked for a piece: " << d.log();
    EXPECT_GE(banned, 1) << d.log();
    // Every tensor it serves verified: the route through it gives the single-process output.
    const auto remote = testing::run_process({testing::llm_node_binary(), "generate", "-m", sw.model, "-p", "honest bytes", "-n",
                                              "8", "--temp", "0", "--json", "-t", "1", "--wire-dtype", "f32", "--route", d.address()}, 60);
    const auto local = testing::run_process({testing::llm_node_binary(), "generate", "-m", sw.model, "-p", "honest bytes", "-n",
                                             "8", "--temp", "0", "--json", "-t", "1"}, 60);
    ASSERT_EQ(remote.exit_code, 0) << remote.describe();
    EXPECT_EQ(token_ids(remote.out), token_ids(local.out));
}

TEST(WeightsSwarm, AFetchKilledWithKillNineResumesWithLessThanAPieceFetchedAgain) {
    WeightsSwarm sw("weights-resume");
    sw.start_seeders();
    const std::string wdir = sw.root + "/d";
    auto slow = sw.fetcher_cmd("0:8", wdir);
    slow.insert(slow.end(), {"--max-download", "512K"});
    const std::string part = wdir + "/" + sw.id + "/files/llm-node-" + sw.id + "/model.gguf";
    {
        NodeProcess d(slow, std::chrono::seconds(0));
        // Kill a few seconds into the span's download (about a third of it at this rate).
        const auto deadline = Clock::now() + std::chrono::seconds(60);
        while (Clock::now() < deadline && !fs::exists(part + ".llmn-manifest")) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        ASSERT_TRUE(fs::exists(part + ".llmn-manifest")) << d.log();
        std::this_thread::sleep_for(std::chrono::seconds(4));
        d.kill_now();
    }
    // What the killed fetch left: whole pieces equal to the original's.
    const uint32_t piece = swarm::weights_piece_size(sw.file_bytes);
    const std::string orig = testing::read_file(sw.model), have = testing::read_file(part);
    ASSERT_EQ(orig.size(), have.size());
    const auto tensors = needed(sw.model, 0, 8, false);
    const uint64_t wanted = sw.piece_bytes(tensors, sw.header_bytes());
    uint64_t kept = 0;
    const auto fp = model::GgufFile::open(sw.model);
    const model::GgufFile& f = *fp;
    std::set<uint64_t> pieces;
    for (uint64_t p = 0; p * piece < sw.header_bytes(); ++p) pieces.insert(p);
    for (const auto& t : tensors)
        for (uint64_t p = f.tensor(t)->offset / piece; p <= (f.tensor(t)->offset + f.tensor(t)->nbytes - 1) / piece; ++p) pieces.insert(p);
    for (uint64_t p : pieces) {
        const uint64_t n = std::min<uint64_t>(piece, orig.size() - p * piece);
        if (orig.compare(p * piece, n, have, p * piece, n) == 0) kept += n;
    }
    ASSERT_GT(kept, 0u);
    ASSERT_LT(kept, wanted) << "the fetch ended before the kill";
    NodeProcess again(sw.fetcher_cmd("0:8", wdir), std::chrono::seconds(90));
    const std::string out = testing::read_file(again.out_path());
    // Blocks asked of two seeders at the end of a fetch (libtorrent's end game)
    // arrive twice; they are not bytes the kill lost.
    const long long got = number_after(out, "downloaded"), redundant = number_after(out, "redundant");
    const long long refetched = got - redundant - (long long)(wanted - kept);
    std::printf("[weights] kill -9 after %llu of %llu bytes of needed pieces; the restart downloaded %lld bytes (%lld of them "
                "end-game duplicates): %lld fetched again (piece %u bytes)\n",
                (unsigned long long)kept, (unsigned long long)wanted, got, redundant, refetched, piece);
    EXPECT_LT(refetched, (long long)piece) << again.log();
}

}  // namespace
}  // namespace llmn::node
