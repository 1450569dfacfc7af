#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace llmn::cli {
namespace {

constexpr int kBarWidth = 24;
constexpr auto kRedraw = std::chrono::milliseconds(100);
constexpr auto kQuietStart = std::chrono::milliseconds(250);

std::string amount(double v, ProgressBar::Unit unit, double scale_of) {
    char buf[48];
    if (unit == ProgressBar::Unit::count) {
        std::snprintf(buf, sizeof buf, "%.0f", v);
    } else if (scale_of >= double(1u << 30)) {
        std::snprintf(buf, sizeof buf, "%.2f", v / double(1u << 30));
    } else {
        std::snprintf(buf, sizeof buf, "%.1f", v / double(1u << 20));
    }
    return buf;
}

const char* unit_name(ProgressBar::Unit unit, double scale_of) {
    if (unit == ProgressBar::Unit::count) return "";
    return scale_of >= double(1u << 30) ? " GiB" : " MiB";
}

std::string duration(double s) {
    char buf[32];
    if (s < 10) std::snprintf(buf, sizeof buf, "%.1fs", s);
    else if (s < 60) std::snprintf(buf, sizeof buf, "%.0fs", s);
    else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
    else std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, int(s) / 60 % 60);
    return buf;
}

}  // namespace

std::string format_progress(const std::string& label, uint64_t done, uint64_t total, double seconds, ProgressBar::Unit unit) {
    if (done > total) done = total;
    const double frac = total ? double(done) / double(total) : 1.0;
    const int filled = int(frac * kBarWidth);
    std::string s = label + " [" + std::string(size_t(filled), '#') + std::string(size_t(kBarWidth - filled), '.') + "]";
    char pct[16];
    std::snprintf(pct, sizeof pct, " %3d%%", int(frac * 100));
    s += pct;
    // One scale for done, total and rate, chosen by the total, so the numbers
    // do not jump between MiB and GiB as the work goes on.
    const double scale_of = double(total);
    s += "  " + amount(double(done), unit, scale_of) + "/" + amount(double(total), unit, scale_of) + unit_name(unit, scale_of);
    const double rate = seconds > 0 ? double(done) / seconds : 0;
    if (rate > 0) s += "  " + amount(rate, unit, scale_of) + unit_name(unit, scale_of) + "/s";
    if (done == total) s += "  in " + duration(seconds);
    else if (rate > 0) s += "  ETA " + duration(double(total - done) / rate);
    return s;
}

ProgressBar::ProgressBar(std::string label, Unit unit)
    : label_(std::move(label)), unit_(unit), enabled_(enabled()), start_(Clock::now()), last_draw_(start_) {}

bool ProgressBar::enabled() { return isatty(2) && !std::getenv("LLM_NODE_NO_PROGRESS"); }

void ProgressBar::update(uint64_t done, uint64_t total) {
    done_ = done;
    total_ = total;
    if (!enabled_ || finished_) return;
    const auto now = Clock::now();
    if (now - start_ < kQuietStart || (drawn_ && now - last_draw_ < kRedraw)) return;
    last_draw_ = now;
    draw();
}

void ProgressBar::finish() {
    if (finished_) return;
    finished_ = true;
    if (!drawn_) return;
    draw();
    std::fputc('\n', stderr);
    std::fflush(stderr);
}

void ProgressBar::draw() {
    const double s = std::chrono::duration<double>(Clock::now() - start_).count();
    // "\x1b[K" clears what a longer previous line left behind.
    std::fprintf(stderr, "\r%s\x1b[K", format_progress(label_, done_, total_, s, unit_).c_str());
    std::fflush(stderr);
    drawn_ = true;
}

void prefault_with_progress(const engine::Model& model, const engine::PrefaultParts& parts, const std::string& label) {
    ProgressBar bar(label, ProgressBar::Unit::bytes);
    engine::prefault(model, parts, [&](uint64_t done, uint64_t total) { bar.update(done, total); });
    bar.finish();
}

}  // namespace llmn::cli
