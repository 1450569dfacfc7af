// Progress of long work (warming gigabytes of weights, ...) as one line on
// stderr, redrawn in place. Only a person watching a terminal wants it: it is
// drawn when stderr is a terminal and LLM_NODE_NO_PROGRESS is not set, so logs,
// pipes and tests never see it.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

#include "engine/prefault.h"

namespace llmn::cli {

class ProgressBar {
public:
    enum class Unit { count, bytes };
    explicit ProgressBar(std::string label, Unit unit = Unit::count);
    ~ProgressBar() { finish(); }
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;

    // Records the state and redraws at most ten times a second. Nothing is drawn
    // during the first quarter second, so work that ends at once prints nothing.
    void update(uint64_t done, uint64_t total);
    // Draws the last state and ends the line (only if a bar was drawn at all).
    void finish();

    // True when bars are drawn: stderr is a terminal, LLM_NODE_NO_PROGRESS unset.
    static bool enabled();

private:
    using Clock = std::chrono::steady_clock;
    void draw();

    std::string label_;
    Unit unit_;
    bool enabled_;
    bool drawn_ = false, finished_ = false;
    uint64_t done_ = 0, total_ = 0;
    Clock::time_point start_, last_draw_;
};

// The text of one bar line (no '\r'), e.g.
// "loading weights [#######.............]  35%  412.0/1177.2 MiB  210.5 MiB/s  ETA 4s".
// When done == total the ETA becomes the elapsed time ("in 5.6s"). Pure, for tests.
std::string format_progress(const std::string& label, uint64_t done, uint64_t total, double seconds, ProgressBar::Unit unit);

// Warms `parts` of the model's weights into memory (engine::prefault) with a
// bar labelled `label`.
void prefault_with_progress(const engine::Model& model, const engine::PrefaultParts& parts, const std::string& label);

}  // namespace llmn::cli
