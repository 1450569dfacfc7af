#include "node/compute_queue.h"

#include <unordered_set>

#include "engine/ops.h"
#include "tensor/kernels.h"

namespace llmn::node {

ComputeQueue::ComputeQueue(std::shared_ptr<const engine::SpanWeights> weights, int threads,
                           std::function<void(ComputeDone)> on_done, int max_batch_tokens)
    : weights_(std::move(weights)), on_done_(std::move(on_done)), max_batch_tokens_(max_batch_tokens), pool_(threads),
      runner_(weights_) {
    thread_ = std::thread([this] { loop(); });
}

ComputeQueue::~ComputeQueue() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void ComputeQueue::push(ComputeJob job) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        queue_.push_back(std::move(job));
    }
    pool_.wake();  // the workers' wake-up overlaps the compute thread's
    cv_.notify_one();
}

std::optional<ComputeDone> ComputeQueue::try_run_inline(ComputeJob& job) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (busy_ || stop_ || !queue_.empty()) return std::nullopt;
        busy_ = true;
    }
    pool_.wake();
    std::vector<ComputeJob> one;
    one.push_back(std::move(job));
    std::vector<ComputeDone> done = run_pass(one);
    {
        std::lock_guard<std::mutex> lock(mu_);
        busy_ = false;
        if (queue_.empty()) pool_.park();  // the next step is a network round trip away
    }
    cv_.notify_one();  // steps queued meanwhile
    return std::move(done.front());
}

std::string ComputeQueue::misfit(const ComputeJob& j) {
    if (j.pos >= 0 && j.pos <= j.cache->n_past() && j.pos + j.n_tokens <= j.cache->n_ctx()) return {};
    return "step at position " + std::to_string(j.pos) + " of " + std::to_string(j.n_tokens) + " tokens does not fit the session (" +
           std::to_string(j.cache->n_past()) + " past, n_ctx " + std::to_string(j.cache->n_ctx()) + ")";
}

std::vector<ComputeDone> ComputeQueue::run_pass(std::vector<ComputeJob>& batch) {
    std::vector<ComputeDone> done;
    // Steps that cannot run fail alone, so the rest of the batch still runs.
    std::vector<engine::SeqSlice> slices;
    std::vector<ComputeJob*> ok;
    for (ComputeJob& j : batch) {
        auto failed = [&](std::string e) {
            done.push_back(ComputeDone{j.session_id, j.pos, j.n_tokens, {}, std::move(e)});
            done.back().charged = j.charged;
        };
        if (!j.kv.empty()) {  // a replay: the audited hop's history first
            try {
                j.cache->load_rows(j.kv_from, j.pos - j.kv_from, j.kv.data(), j.kv.size());
            } catch (const std::exception& e) {
                failed(e.what());
                continue;
            }
            std::vector<uint8_t>().swap(j.kv);
        }
        if (j.n_tokens == 0) {  // only rows to load
            failed("");
            continue;
        }
        if (std::string e = misfit(j); !e.empty()) {
            failed(std::move(e));
            continue;
        }
        slices.push_back({j.cache.get(), j.pos, j.n_tokens});
        ok.push_back(&j);
    }
    if (ok.empty()) return done;
    // One job runs in its own buffer; a batch is gathered into one and split after.
    std::vector<float>& hidden = ok.size() == 1 ? ok[0]->hidden : hidden_;
    if (ok.size() > 1) {
        hidden.clear();
        for (ComputeJob* j : ok) hidden.insert(hidden.end(), j->hidden.begin(), j->hidden.end());
    }
    const int64_t t_started = steady_ns();
    try {
        std::optional<tensor::IsaScope> isa;  // a replica's session: the audited hop's kernels
        if (ok[0]->isa >= 0) isa.emplace(tensor::Isa(ok[0]->isa));
        runner_.forward(hidden.data(), slices, pool_, ok[0]->first, ok[0]->last);
    } catch (const std::exception& e) {
        for (ComputeJob* j : ok) {
            done.push_back(ComputeDone{j->session_id, j->pos, j->n_tokens, {}, e.what()});
            done.back().charged = j->charged;
        }
        return done;
    }
    const int64_t t_finished = steady_ns();
    ++batches_;
    const size_t d = size_t(weights_->model().config().n_embd);
    size_t off = 0;
    for (ComputeJob* j : ok) {
        const size_t n = size_t(j->n_tokens) * d;
        tokens_ += j->n_tokens;
        std::vector<float> out = ok.size() == 1 ? std::move(hidden) : std::vector<float>(hidden.begin() + off, hidden.begin() + off + n);
        done.push_back(ComputeDone{j->session_id, j->pos, j->n_tokens, std::move(out), {}, j->t_arrived, t_started, t_finished});
        done.back().charged = j->charged;
        if (j->want_kv) done.back().kv = j->cache->copy_rows(j->pos, j->n_tokens);
        off += n;
    }
    return done;
}

bool ComputeQueue::keeps_bits(const std::vector<ComputeJob>& batch, int tokens, const ComputeJob& next) {
    const int total = tokens + next.n_tokens;
    if (next.exact && next.n_tokens > 0 && !engine::pass_keeps_bits(next.n_tokens, total)) return false;
    for (const ComputeJob& j : batch)
        if (j.exact && j.n_tokens > 0 && !engine::pass_keeps_bits(j.n_tokens, total)) return false;
    return true;
}

void ComputeQueue::loop() {
    for (;;) {
        std::vector<ComputeJob> batch;
        {
            std::unique_lock<std::mutex> lock(mu_);
            busy_ = false;  // the last batch (if any) is done
            if (queue_.empty()) pool_.park();  // the next step is a network round trip away
            cv_.wait(lock, [&] { return stop_ || (!queue_.empty() && !busy_); });
            if (stop_) return;
            busy_ = true;
            // Take ready jobs in order: one per session (its next step depends on
            // this one), up to the token budget; the first job always goes.
            std::unordered_set<const engine::KvCache*> seen;
            int tokens = 0;
            for (auto it = queue_.begin(); it != queue_.end();) {
                // One pass runs one sub-span: only sessions over the same layers share it.
                const bool other_layers = !batch.empty() && (it->first != batch[0].first || it->last != batch[0].last);
                // ... and one kernel set; audited steps only where their bits stay what they are alone.
                const bool other_kernels = !batch.empty() && (it->isa != batch[0].isa || !keeps_bits(batch, tokens, *it));
                if (other_layers || other_kernels || seen.count(it->cache.get()) ||
                    (!batch.empty() && tokens + it->n_tokens > max_batch_tokens_)) {
                    ++it;
                    continue;
                }
                seen.insert(it->cache.get());
                tokens += it->n_tokens;
                batch.push_back(std::move(*it));
                it = queue_.erase(it);
            }
        }
        for (ComputeDone& d : run_pass(batch)) on_done_(std::move(d));
    }
}

}  // namespace llmn::node
