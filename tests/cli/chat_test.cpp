// llm-node chat driven through stdin, as a script drives it: one reply per
// message on stdout and nothing else there, the first greedy reply equal to
// `generate --chat`, a later turn (continued from the cached ids) equal to a
// fresh evaluation of the whole conversation, /reset, /system, /exit, end of
// input, and a full context handled by starting over. On a random llama
// model and on the bundled stories260K (both without ../shared).
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "cli/cli_fixture.h"
#include "engine/model.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"

namespace llmn::testing {
namespace {

constexpr int kReplyTokens = 12;

class Chat : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        if (GetParam() == "stories260K" && !std::filesystem::exists(bundled_model()))
            GTEST_SKIP() << "models/stories260K.gguf is not in this checkout";
    }
    std::string model() const { return GetParam() == "stories260K" ? bundled_model() : random_llama_model(); }

    // `llm-node chat` reading `input` on stdin (greedy, in this process).
    ProcessResult chat(const std::string& input, std::vector<std::string> extra = {}) const {
        const std::string in = temp_path("chat-input.txt");
        write_bytes(in, input);
        std::vector<std::string> a = {llm_node_binary(), "chat", "-m", model(), "--local", "--temp", "0",
                                      "-n", std::to_string(kReplyTokens), "-t", "2"};
        a.insert(a.end(), extra.begin(), extra.end());
        return run_process(a, kCliTimeout, in);
    }
    // What `generate` prints (the continuation and a newline) for `prompt`.
    std::string generate(const std::string& prompt, bool chat_template, int n = kReplyTokens) const {
        std::vector<std::string> a = {"generate", "-m", model(), "-p", prompt, "--temp", "0", "-n", std::to_string(n), "-t", "2"};
        if (chat_template) a.push_back("--chat");
        const ProcessResult p = llm_node(a);
        EXPECT_EQ(p.exit_code, 0) << p.describe();
        return p.out;
    }
    // The conversation as chat renders it (the model's template, ready for the
    // assistant), and its token count.
    std::string render(const std::vector<model::ChatMessage>& messages) const {
        const auto m = engine::Model::load(model());
        const auto tok = model::Tokenizer::create(model::Vocab::from_gguf(m->file()));
        return model::ChatTemplate::detect(m->file().get_string("tokenizer.chat_template", ""), m->config().spec.arch,
                                           tok->vocab().tokens)
            .render(messages, true);
    }
    size_t n_tokens(const std::string& text) const {
        const auto m = engine::Model::load(model());
        return model::Tokenizer::create(model::Vocab::from_gguf(m->file()))->encode(text, true, true).size();
    }
};

std::string without_newline(std::string s) {
    if (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
}

TEST_P(Chat, FirstReplyEqualsGenerateChatAndTheSecondAFreshRunOfTheWholeConversation) {
    const std::string first = generate("Hello", true);
    const std::string prompt2 = render({{"user", "Hello"}, {"assistant", without_newline(first)}, {"user", "How are you?"}});
    const std::string second = generate(prompt2, false);
    const ProcessResult p = chat("Hello\nHow are you?\n", {"--verbose"});
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    EXPECT_EQ(p.out, first + second) << "stdout must hold the two replies and nothing else";
    EXPECT_EQ(p.err.find("> "), std::string::npos) << "no prompt when stdin is not a terminal: " << p.err;
    // Each turn reports how much of its prompt came from the cache.
    std::vector<int> cached;
    const std::regex line(R"(\[chat\] prompt (\d+) tokens \((\d+) from the cache\))");
    for (std::sregex_iterator it(p.err.begin(), p.err.end(), line), end; it != end; ++it) cached.push_back(std::stoi((*it)[2]));
    ASSERT_EQ(cached.size(), 2u) << p.err;
    EXPECT_EQ(cached[0], 0);
    // stories260K's reply re-tokenizes to the ids it was generated as, so the
    // second turn evaluates only its new ids (the random vocabulary's pieces may not).
    if (GetParam() == "stories260K") {
        EXPECT_GT(cached[1], 0) << p.err;
    }
}

TEST_P(Chat, ResetStartsANewConversation) {
    const std::string first = generate("Hello", true);
    const ProcessResult p = chat("Hello\n/reset\nHello\n");
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    EXPECT_EQ(p.out, first + first);
}

TEST_P(Chat, SystemPromptIsRenderedBeforeTheConversation) {
    const std::string expected = generate(render({{"system", "Be brief."}, {"user", "Hello"}}), false);
    ASSERT_EQ(chat("Hello\n", {"--system", "Be brief."}).out, expected);
    // The same through the /system command, with /help and blank lines on the way.
    const ProcessResult p = chat("/help\n\n/system Be brief.\n\nHello\n");
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    EXPECT_EQ(p.out, expected);
    EXPECT_NE(p.err.find("/reset"), std::string::npos) << "/help lists the commands on stderr: " << p.err;
}

TEST_P(Chat, ExitAndEndOfInputLeaveWithStatusZero) {
    const std::string first = generate("Hello", true);
    ProcessResult p = chat("Hello\n/exit\nHow are you?\n");
    EXPECT_EQ(p.exit_code, 0) << p.describe();
    EXPECT_EQ(p.out, first);
    p = chat("Hello");  // a last line without its newline is still a message
    EXPECT_EQ(p.exit_code, 0) << p.describe();
    EXPECT_EQ(p.out, first);
    p = chat("");
    EXPECT_EQ(p.exit_code, 0) << p.describe();
    EXPECT_EQ(p.out, "");
}

TEST_P(Chat, FullContextStartsOverInsteadOfFailing) {
    // Room for the prompt and a three-token reply: the first reply fills the
    // context, so the second message starts a new conversation and gets the same reply.
    const size_t n_prompt = n_tokens(render({{"user", "Hello"}}));
    const int n_ctx = int(n_prompt) + 2;
    const std::string reply = generate("Hello", true, 3);
    const ProcessResult p = chat("Hello\nHello\n", {"-c", std::to_string(n_ctx)});
    ASSERT_EQ(p.exit_code, 0) << p.describe();
    EXPECT_NE(p.err.find("context of " + std::to_string(n_ctx) + " tokens is full"), std::string::npos) << p.err;
    EXPECT_EQ(p.out, reply + reply);
}

TEST_P(Chat, MessageLongerThanTheContextIsRefusedAndTheChatGoesOn) {
    const ProcessResult p = chat("Hello\n", {"-c", "8"});
    EXPECT_EQ(p.exit_code, 0) << p.describe();
    EXPECT_EQ(p.out, "");
    EXPECT_NE(p.err.find("does not fit"), std::string::npos) << p.err;
}

INSTANTIATE_TEST_SUITE_P(Models, Chat, ::testing::Values("random_llama", "stories260K"));

TEST(ChatUsage, UnknownOptionAndTwoModelsAreUsageErrors) {
    EXPECT_EQ(llm_node({"chat", "--no-such-flag"}).exit_code, 2);
    EXPECT_EQ(llm_node({"chat", "-m", random_llama_model(), random_llama_model(), "--local"}).exit_code, 2);
    EXPECT_EQ(llm_node({"chat", "-m", random_llama_model(), "--local", "-n", "0"}).exit_code, 2);
}

}  // namespace
}  // namespace llmn::testing
