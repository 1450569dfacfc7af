// The shared generation loop: stop strings held back until they are decided,
// and generate()'s finish reasons on a tiny random model.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

#include "engine/generator.h"
#include "engine/local_session.h"
#include "model/tokenizer.h"
#include "support/random_model.h"
#include "support/test_support.h"
#include "tensor/thread_pool.h"

namespace llmn::engine {
namespace {

TEST(StopStringFilter, StopSplitAcrossPushesEndsTheTextBeforeIt) {
    StopStringFilter f({"STOP"});
    EXPECT_EQ(f.push("hello ST"), "hello ");
    EXPECT_FALSE(f.stopped());
    EXPECT_EQ(f.push("OP and more"), "");
    EXPECT_TRUE(f.stopped());
    EXPECT_EQ(f.push("later"), "");
    EXPECT_EQ(f.flush(), "");
}

TEST(StopStringFilter, EarliestOfSeveralStopsWins) {
    StopStringFilter f({"xy", "abc", "\n\n"});
    EXPECT_EQ(f.push("a\n"), "a");  // "\n" might begin "\n\n"
    EXPECT_EQ(f.push("z"), "\nz");
    EXPECT_EQ(f.push("abcxy"), "");
    EXPECT_TRUE(f.stopped());

    StopStringFilter g({"xy", "abc", "\n\n"});
    EXPECT_EQ(g.push("one\n\ntwo xy"), "one");
    EXPECT_TRUE(g.stopped());
}

TEST(StopStringFilter, HeldPrefixIsReleasedWhenItIsNotAStop) {
    StopStringFilter f({"STOP"});
    EXPECT_EQ(f.push("ST"), "");
    EXPECT_EQ(f.push("AR"), "STAR");
    EXPECT_EQ(f.push("ry S"), "ry ");
    EXPECT_EQ(f.push("TO"), "");
    // The generation ends here: what was held is final text after all.
    EXPECT_EQ(f.flush(), "STO");
    EXPECT_FALSE(f.stopped());
}

TEST(StopStringFilter, WithoutStopsTextPassesThroughAtOnce) {
    StopStringFilter f({});
    EXPECT_EQ(f.push("any </s> text"), "any </s> text");
    EXPECT_EQ(f.push(""), "");
    EXPECT_EQ(f.flush(), "");
    StopStringFilter g({""});  // an empty stop string matches nothing
    EXPECT_EQ(g.push("abc"), "abc");
    EXPECT_FALSE(g.stopped());
}

// A small random llama model, its tokenizer and a prompt.
class Generate : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        testing::RandomModelSpec spec;
        spec.n_layer = 2;
        model_ = Model::load(testing::write_random_model(spec, testing::temp_path("generator-llama.gguf")));
        tok_ = model::Tokenizer::create(model::Vocab::from_gguf(model_->file())).release();
    }
    static void TearDownTestSuite() {
        delete tok_;
        model_.reset();
    }

    std::unique_ptr<LocalSession> session(int n_ctx = 256) {
        SessionConfig sc;
        sc.n_ctx = n_ctx;
        return std::make_unique<LocalSession>(model_, sc, pool_);
    }
    std::vector<int32_t> prompt() const { return tok_->encode("once upon a time", true, false); }

    // Greedy, never stopping at end-of-generation: every run is the same.
    GenerateResult run(Session& s, GenerateOptions go, std::string& streamed, int cancel_after = -1) {
        SamplerConfig sc;
        sc.temp = 0;
        Sampler sampler(sc);
        go.ignore_eos = true;
        int calls = 0;
        return generate(s, *tok_, sampler, prompt(), go, [&](const std::string& t) {
            EXPECT_FALSE(t.empty()) << "empty pieces are not streamed";
            streamed += t;
            return ++calls != cancel_after;
        });
    }

    static std::shared_ptr<const Model> model_;
    static model::Tokenizer* tok_;
    tensor::ThreadPool pool_{2};
};
std::shared_ptr<const Model> Generate::model_;
model::Tokenizer* Generate::tok_ = nullptr;

TEST_F(Generate, TokenBudgetEndsWithLength) {
    auto s = session();
    GenerateOptions go;
    go.max_tokens = 12;
    std::string streamed;
    const GenerateResult r = run(*s, go, streamed);
    EXPECT_EQ(r.finish_reason, "length");
    EXPECT_EQ(r.n_gen, 12);
    EXPECT_EQ(r.n_prompt, int(prompt().size()));
    EXPECT_FALSE(r.text.empty());
    EXPECT_EQ(streamed, r.text);
    // The last sampled token is never evaluated: the cache holds prompt + n_gen - 1.
    EXPECT_EQ(s->n_past(), r.n_prompt + r.n_gen - 1);
}

TEST_F(Generate, StopStringEndsWithStopAndTruncatesTheText) {
    GenerateOptions go;
    go.max_tokens = 24;
    std::string full_stream;
    auto s1 = session();
    const std::string full = run(*s1, go, full_stream).text;
    ASSERT_GE(full.size(), 8u);
    // A stop string taken from the middle of what greedy decoding writes.
    const std::string stop = full.substr(full.size() / 2, 3);
    go.stop = {"never-in-this-text", stop};
    std::string streamed;
    auto s2 = session();
    const GenerateResult r = run(*s2, go, streamed);
    EXPECT_EQ(r.finish_reason, "stop");
    EXPECT_EQ(r.text, full.substr(0, full.find(stop)));
    EXPECT_EQ(streamed, r.text);
    EXPECT_LT(r.n_gen, go.max_tokens);
}

TEST_F(Generate, OnTextReturningFalseCancels) {
    auto s = session();
    GenerateOptions go;
    go.max_tokens = 50;
    std::string streamed;
    const GenerateResult r = run(*s, go, streamed, /*cancel_after=*/2);
    EXPECT_EQ(r.finish_reason, "cancelled");
    EXPECT_LT(r.n_gen, go.max_tokens);
    EXPECT_EQ(streamed, r.text);
}

TEST_F(Generate, FullContextEndsWithLengthBeforeTheBudget) {
    const int n_prompt = int(prompt().size());
    auto s = session(n_prompt + 4);
    GenerateOptions go;
    go.max_tokens = 100;
    std::string streamed;
    const GenerateResult r = run(*s, go, streamed);
    EXPECT_EQ(r.finish_reason, "length");
    // Four more positions are evaluated, and one more token is sampled from the last.
    EXPECT_EQ(r.n_gen, 5);
    EXPECT_EQ(s->n_past(), s->n_ctx());
    EXPECT_EQ(streamed, r.text);
}

TEST_F(Generate, ContinuingASessionEqualsEvaluatingEverythingAfresh) {
    // What chat relies on: a session that already holds a prefix, fed only the
    // new ids, continues exactly as a fresh session fed all of them.
    SamplerConfig sc;
    sc.temp = 0;
    GenerateOptions go;
    go.max_tokens = 6;
    go.ignore_eos = true;
    auto keep = [](const std::string&) { return true; };
    std::vector<int32_t> gen;
    auto warm = session();
    Sampler s0(sc);
    generate(*warm, *tok_, s0, prompt(), go, keep, [&](int32_t id) { gen.push_back(id); });
    ASSERT_EQ(gen.size(), 6u);
    ASSERT_EQ(warm->n_past(), int(prompt().size()) + 5);  // the last id is not in the cache yet

    const std::vector<int32_t> more = tok_->encode(" and then", false, false);
    ASSERT_FALSE(more.empty());
    std::vector<int32_t> suffix = {gen.back()};
    suffix.insert(suffix.end(), more.begin(), more.end());
    std::vector<int32_t> all = prompt();
    all.insert(all.end(), gen.begin(), gen.end());
    all.insert(all.end(), more.begin(), more.end());

    go.max_tokens = 10;
    std::vector<int32_t> cont_ids, fresh_ids;
    Sampler s1(sc), s2(sc);
    const GenerateResult cont = generate(*warm, *tok_, s1, suffix, go, keep, [&](int32_t id) { cont_ids.push_back(id); });
    auto fresh = session();
    const GenerateResult again = generate(*fresh, *tok_, s2, all, go, keep, [&](int32_t id) { fresh_ids.push_back(id); });
    EXPECT_EQ(cont_ids, fresh_ids);
    EXPECT_EQ(cont.text, again.text);
    EXPECT_EQ(warm->n_past(), fresh->n_past());
}

// A session whose positions from `cheat_at` on come back wrong (another token
// wins) until an audit, `lag` positions later or at settle(), catches it and
// rewinds: what ResilientSession does when a replica disagrees with a hop.
class CaughtLateSession : public Session {
public:
    CaughtLateSession(std::function<std::unique_ptr<Session>()> fresh, int cheat_at, int lag)
        : fresh_(std::move(fresh)), inner_(fresh_()), cheat_at_(cheat_at), lag_(lag) {}
    void eval(const std::vector<int32_t>& ids, std::vector<float>& logits, bool all_positions) override {
        if (!caught_ && inner_->n_past() >= cheat_at_ + lag_) catch_it();
        inner_->eval(ids, logits, all_positions);
        history_.insert(history_.end(), ids.begin(), ids.end());
        if (!caught_ && inner_->n_past() > cheat_at_) {  // the wrong hop's answer: the runner-up wins
            auto best = std::max_element(logits.begin(), logits.end());
            *best = -1e30f;
            ++wrong_;
        }
    }
    int n_past() const override { return inner_->n_past(); }
    int n_ctx() const override { return inner_->n_ctx(); }
    int n_vocab() const override { return inner_->n_vocab(); }
    int verified() const override { return caught_ ? n_past() : std::min(n_past(), cheat_at_); }
    void settle() override {
        if (!caught_ && n_past() > cheat_at_) catch_it();
    }
    int wrong() const { return wrong_; }

private:
    [[noreturn]] void catch_it() {
        caught_ = true;
        inner_ = fresh_();
        history_.resize(size_t(cheat_at_));
        std::vector<float> unused;
        if (!history_.empty()) inner_->eval(history_, unused);
        throw Rewind(cheat_at_, "caught");
    }
    std::function<std::unique_ptr<Session>()> fresh_;
    std::unique_ptr<Session> inner_;
    std::vector<int32_t> history_;
    int cheat_at_, lag_;
    bool caught_ = false;
    int wrong_ = 0;
};

TEST_F(Generate, ARewindAfterWrongPositionsStillGivesTheSingleProcessOutput) {
    GenerateOptions go;
    go.max_tokens = 20;
    go.ignore_eos = true;
    auto keep = [](const std::string&) { return true; };
    const int n_prompt = int(prompt().size());
    for (float temp : {0.0f, 0.8f}) {
        SamplerConfig sc;
        sc.temp = temp;
        sc.seed = 1234;
        std::vector<int32_t> want, got;
        auto plain = session();
        Sampler s0(sc);
        const GenerateResult ref = generate(*plain, *tok_, s0, prompt(), go, keep, [&](int32_t id) { want.push_back(id); });
        // Caught mid-generation (lag 4), at the end (settle), and inside the prompt.
        for (auto [cheat_at, lag] : {std::pair{n_prompt + 3, 4}, std::pair{n_prompt + 15, 100}, std::pair{n_prompt - 2, 3}}) {
            got.clear();
            CaughtLateSession s([&] { return std::unique_ptr<Session>(session()); }, cheat_at, lag);
            Sampler s1(sc);
            std::string streamed;
            const GenerateResult r = generate(s, *tok_, s1, prompt(), go, [&](const std::string& t) {
                streamed += t;
                return true;
            }, [&](int32_t id) { got.push_back(id); });
            EXPECT_GT(s.wrong(), 0) << "the test cheats at " << cheat_at;
            EXPECT_EQ(got, want) << "temp " << temp << ", cheat at " << cheat_at;
            EXPECT_EQ(r.text, ref.text);
            EXPECT_EQ(streamed, ref.text);  // nothing wrong was ever streamed
            EXPECT_EQ(r.n_gen, ref.n_gen);
        }
    }
}

}  // namespace
}  // namespace llmn::engine
