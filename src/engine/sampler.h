// Token sampling from one position's logits, in llama.cpp's default order.
//
// A Sampler turns the logits of the last position into one token id. With a
// positive temperature it runs the chain
//
//     repetition penalty -> top-k -> top-p -> min-p -> temperature -> softmax -> draw
//
// which is the order of llama.cpp's default sampler chain, so the same settings
// give the same candidate set as llama.cpp. With temp <= 0 it is greedy: the
// argmax of the penalised logits, ties going to the lowest id (top-k, top-p and
// min-p always keep the argmax, so they are skipped). Ids passed to
// set_excluded() are never returned in either mode.
//
// Draws come from a std::mt19937_64 seeded from SamplerConfig::seed; the uniform
// number is built from the generator's raw 64-bit output, so a fixed seed gives
// the same tokens on every platform and standard library. A Sampler is not
// thread-safe; use one per sequence.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace llmn::engine {

// Seed value that asks for a random seed (llama.cpp's LLAMA_DEFAULT_SEED).
inline constexpr uint64_t random_seed = 0xFFFFFFFFu;

struct SamplerConfig {
    // Softmax temperature; <= 0 selects greedy decoding.
    float temp = 0.8f;
    // Keep the k highest logits; <= 0 disables the filter.
    int top_k = 40;
    // Keep the smallest prefix (by probability) whose mass reaches top_p; >= 1 disables it.
    float top_p = 0.95f;
    // Drop tokens whose probability is below min_p times the best one's; <= 0 disables it.
    float min_p = 0.05f;
    // llama.cpp repetition penalty: each distinct id among the last repeat_last_n
    // ids of the history has a positive logit divided by it and a negative one
    // multiplied by it. 1 disables it.
    float repeat_penalty = 1.0f;
    // Window of the penalty in ids; 0 disables it and -1 means the whole history.
    int repeat_last_n = 64;
    // Generator seed; random_seed (0xFFFFFFFF) draws one from std::random_device.
    uint64_t seed = random_seed;
};

class Sampler {
public:
    // Throws std::invalid_argument when a setting is out of range (a NaN,
    // top_p or min_p outside [0, 1], repeat_penalty <= 0, repeat_last_n < -1).
    explicit Sampler(SamplerConfig config);

    // Picks one id in [0, n_vocab) from `logits` (n_vocab floats, not modified).
    // `history` holds the ids so far, prompt included; only the repetition
    // penalty reads it. Logits that are NaN or -inf are never chosen. Throws
    // std::invalid_argument when logits is null, n_vocab <= 0, or no id is left
    // (every id excluded or non-finite).
    int32_t sample(const float* logits, int32_t n_vocab, const std::vector<int32_t>& history);

    // Restarts the generator: a fixed seed replays the same draws again; with
    // random_seed a fresh random seed is drawn.
    void reset();

    // Ids that are never sampled (for example end-of-generation ids while a
    // minimum length is enforced). Replaces any earlier set; ids outside the
    // vocabulary are ignored at sampling time.
    void set_excluded(std::vector<int32_t> ids);
    const std::vector<int32_t>& excluded() const { return excluded_; }

    // The generator's state, to draw the same values again after a rewind (engine::Rewind).
    using State = std::mt19937_64;
    const State& state() const { return rng_; }
    void restore(const State& s) { rng_ = s; }

    const SamplerConfig& config() const { return config_; }
    // The seed actually in use (differs from config().seed when that was random_seed).
    uint64_t seed() const { return seed_; }

private:
    struct Candidate {
        int32_t id;
        float logit;
    };

    void load_candidates(const float* logits, int32_t n_vocab, const std::vector<int32_t>& history);
    double next_uniform();

    SamplerConfig config_;
    uint64_t seed_ = 0;
    std::mt19937_64 rng_;
    std::vector<int32_t> excluded_;
    // Scratch reused across calls so that sampling does not allocate per token.
    std::vector<float> work_;
    std::vector<int32_t> window_;
    std::vector<Candidate> cand_;
    std::vector<double> probs_;
};

}  // namespace llmn::engine
