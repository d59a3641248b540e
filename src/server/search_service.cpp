#include "server/search_service.h"

#include <algorithm>

namespace ponder::server {

bool SearchTicket::wait(std::chrono::milliseconds timeout, std::vector<SearchProgress>* progress) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return done_ || (progress && !progress_.empty()); });
  if (progress) {
    progress->insert(progress->end(), progress_.begin(), progress_.end());
  }
  progress_.clear();
  return done_;
}

const SearchResult& SearchTicket::result() const {
  if (error_) std::rethrow_exception(error_);
  return *result_;
}

SearchService::SearchService(std::vector<SearchWorker> workers, int32_t queue)
    : workers_(std::move(workers)), queue_capacity_(queue), running_(workers_.size()) {
  stats_.workers = static_cast<int32_t>(workers_.size());
  stats_.queue_capacity = queue_capacity_;
  for (size_t w = 0; w < workers_.size(); ++w) threads_.emplace_back([this, w] { work(w); });
}

SearchService::~SearchService() {
  close();
  for (std::thread& t : threads_) t.join();
}

std::shared_ptr<SearchTicket> SearchService::submit(SearchJob job) {
  std::shared_ptr<SearchTicket> ticket(new SearchTicket(std::move(job)));
  {
    std::lock_guard lock(mu_);
    const auto busy = std::count_if(running_.begin(), running_.end(), [](const auto& t) { return t != nullptr; });
    // A search waits only when no worker is free: with queue 0, a free worker still takes it.
    const auto waiting = static_cast<int64_t>(queue_.size()) + 1 - (static_cast<int64_t>(workers_.size()) - busy);
    if (stop_ || waiting > queue_capacity_) {
      ++stats_.rejected;
      return nullptr;
    }
    queue_.push_back(ticket);
  }
  cv_.notify_one();
  return ticket;
}

void SearchService::cancel(SearchTicket& ticket) {
  ticket.cancel_.store(true);
  std::shared_ptr<SearchTicket> queued;
  {
    std::lock_guard lock(mu_);
    const auto it = std::find_if(queue_.begin(), queue_.end(), [&](const auto& t) { return t.get() == &ticket; });
    if (it == queue_.end()) return;  // running: it sees the flag; or it has ended
    queued = *it;
    queue_.erase(it);
    ++stats_.cancelled;
  }
  end(*queued, std::nullopt, std::make_exception_ptr(Cancelled("search cancelled before it started")));
}

void SearchService::close() {
  std::vector<std::shared_ptr<SearchTicket>> all;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    all.assign(queue_.begin(), queue_.end());
    for (const auto& t : running_) {
      if (t) all.push_back(t);
    }
  }
  for (const auto& t : all) cancel(*t);
  cv_.notify_all();  // idle workers end
}

ServiceStats SearchService::stats() const {
  std::lock_guard lock(mu_);
  ServiceStats s = stats_;
  s.queued = static_cast<int32_t>(queue_.size());
  s.running = static_cast<int32_t>(
      std::count_if(running_.begin(), running_.end(), [](const auto& t) { return t != nullptr; }));
  return s;
}

void SearchService::end(SearchTicket& ticket, std::optional<SearchResult> result, std::exception_ptr error) {
  {
    std::lock_guard lock(ticket.mu_);
    ticket.result_ = std::move(result);
    ticket.error_ = error;
    ticket.done_ = true;
  }
  ticket.cv_.notify_all();
}

void SearchService::work(size_t w) {
  while (true) {
    std::shared_ptr<SearchTicket> ticket;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      ticket = queue_.front();
      queue_.pop_front();
      running_[w] = ticket;
    }
    SearchOptions options = ticket->job_.options;
    options.cancel = &ticket->cancel_;
    SearchTicket* t = ticket.get();
    options.on_progress = [t](const SearchProgress& p) {
      {
        std::lock_guard lock(t->mu_);
        t->progress_.push_back(p);
      }
      t->cv_.notify_all();
    };
    std::optional<SearchResult> result;
    std::exception_ptr error;
    int64_t ServiceStats::*outcome = &ServiceStats::completed;
    try {
      result = run_search(*workers_[w].generator, workers_[w].verifiers, ticket->job_.problem, options,
                          ticket->job_.answer_of);
    } catch (const Cancelled&) {
      error = std::current_exception();
      outcome = &ServiceStats::cancelled;
    } catch (...) {
      error = std::current_exception();
      outcome = &ServiceStats::failed;
    }
    // The counts change before the requester hears of the end, so that what it reads next
    // (a health check, say) already shows it.
    {
      std::lock_guard lock(mu_);
      running_[w] = nullptr;
      ++(stats_.*outcome);
    }
    end(*ticket, std::move(result), error);
  }
}

}  // namespace ponder::server
