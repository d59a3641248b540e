// Searches for a server: K worker threads, each with its own generator client and verifiers
// (BatchingEngine clients of one shared model each, so that the branches of different requests
// decode together), and a bounded queue of searches waiting for a worker.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "search/search.h"

namespace ponder::server {

// What one worker searches with; the engines must outlive the service.
struct SearchWorker {
  Engine* generator = nullptr;
  Verifiers verifiers;
};

struct SearchJob {
  SearchProblem problem;
  SearchOptions options;  // cancel and on_progress are the service's
  AnswerFn answer_of;
};

// A submitted search, shared by the service and the requester.
class SearchTicket {
 public:
  // Waits up to `timeout` for the search to end; the progress reports that arrived meanwhile
  // are appended to `progress` (when given). True once it ended.
  bool wait(std::chrono::milliseconds timeout, std::vector<SearchProgress>* progress = nullptr);
  // After wait() returned true: the result, or the search's error rethrown (Cancelled when it
  // was cancelled, EngineError when it failed).
  const SearchResult& result() const;

 private:
  friend class SearchService;
  explicit SearchTicket(SearchJob job) : job_(std::move(job)) {}

  SearchJob job_;
  std::atomic<bool> cancel_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<SearchProgress> progress_;
  bool done_ = false;
  std::optional<SearchResult> result_;
  std::exception_ptr error_;
};

struct ServiceStats {
  int32_t workers = 0;
  int32_t queue_capacity = 0;
  int32_t running = 0;     // searches on a worker now
  int32_t queued = 0;      // searches waiting for one
  int64_t completed = 0;   // since start
  int64_t cancelled = 0;   // stopped by cancel() before they ended (queued ones included)
  int64_t failed = 0;      // ended by an error
  int64_t rejected = 0;    // submit() found no room
};

class SearchService {
 public:
  // One worker thread per entry of `workers`; at most `queue` searches wait beyond them.
  SearchService(std::vector<SearchWorker> workers, int32_t queue);
  // close(), and joins the workers.
  ~SearchService();
  SearchService(const SearchService&) = delete;
  SearchService& operator=(const SearchService&) = delete;

  // Queues a search; nullptr when every worker is busy and the queue is full, or after close().
  std::shared_ptr<SearchTicket> submit(SearchJob job);
  // From any thread: a running search stops within a token and frees its branches; a queued
  // one leaves the queue at once. Either way the ticket ends with Cancelled (a search that had
  // already ended keeps its outcome).
  void cancel(SearchTicket& ticket);
  // Shutting down: cancel() for every search, running or queued, and submit() refuses more.
  void close();

  ServiceStats stats() const;

 private:
  void work(size_t w);
  void end(SearchTicket& ticket, std::optional<SearchResult> result, std::exception_ptr error);

  std::vector<SearchWorker> workers_;
  const int32_t queue_capacity_;

  mutable std::mutex mu_;
  std::condition_variable cv_;  // workers wait here for searches
  std::deque<std::shared_ptr<SearchTicket>> queue_;
  std::vector<std::shared_ptr<SearchTicket>> running_;  // by worker; null when idle
  bool stop_ = false;
  ServiceStats stats_;

  std::vector<std::thread> threads_;  // last: they start after everything above exists
};

}  // namespace ponder::server
