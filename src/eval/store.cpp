#include "eval/store.h"

#include <sqlite3.h>

#include <ctime>

#include <nlohmann/json.hpp>

namespace ponder {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY,
  settings TEXT NOT NULL UNIQUE,
  created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS problems (
  run_id INTEGER NOT NULL REFERENCES runs(id),
  problem_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  level INTEGER,
  subject TEXT NOT NULL,
  gold TEXT NOT NULL,
  PRIMARY KEY (run_id, problem_id)
);
CREATE TABLE IF NOT EXISTS searches (
  run_id INTEGER NOT NULL REFERENCES runs(id),
  problem_id TEXT NOT NULL,
  search TEXT NOT NULL,
  budget INTEGER NOT NULL,
  seed INTEGER NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  verifier_tokens INTEGER NOT NULL,
  rounds INTEGER NOT NULL,
  seconds REAL NOT NULL,
  verifier_seconds REAL NOT NULL,
  PRIMARY KEY (run_id, problem_id, search, budget, seed)
);
CREATE TABLE IF NOT EXISTS completions (
  run_id INTEGER NOT NULL,
  problem_id TEXT NOT NULL,
  search TEXT NOT NULL,
  budget INTEGER NOT NULL,
  seed INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  text TEXT NOT NULL,
  answer TEXT,
  correct INTEGER NOT NULL,
  score REAL NOT NULL,
  step_scores TEXT NOT NULL,
  tokens INTEGER NOT NULL,
  finish TEXT NOT NULL,
  PRIMARY KEY (run_id, problem_id, search, budget, seed, idx)
);
CREATE TABLE IF NOT EXISTS results (
  run_id INTEGER NOT NULL REFERENCES runs(id),
  problem_id TEXT NOT NULL,
  strategy TEXT NOT NULL,
  budget INTEGER NOT NULL,
  seed INTEGER NOT NULL,
  naive_answer TEXT,
  naive_correct INTEGER NOT NULL,
  weighted_answer TEXT,
  weighted_correct INTEGER NOT NULL,
  majority_answer TEXT,
  majority_correct INTEGER NOT NULL,
  chosen TEXT NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  verifier_tokens INTEGER NOT NULL,
  seconds REAL NOT NULL,
  PRIMARY KEY (run_id, problem_id, strategy, budget, seed)
);
)sql";

// One prepared statement; binds by position from 1, steps, and finalizes on destruction.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) fail("prepare");
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, int64_t v) { return check(sqlite3_bind_int64(stmt_, i, v)); }
  Statement& bind(int i, double v) { return check(sqlite3_bind_double(stmt_, i, v)); }
  Statement& bind(int i, const std::string& v) {
    return check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  Statement& bind(int i, const std::optional<std::string>& v) {
    return v ? bind(i, *v) : check(sqlite3_bind_null(stmt_, i));
  }
  Statement& bind(int i, const std::optional<int>& v) {
    return v ? bind(i, int64_t{*v}) : check(sqlite3_bind_null(stmt_, i));
  }

  // True while a row is available.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) fail("step");
    return false;
  }
  void run() {
    step();
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  double real(int col) const { return sqlite3_column_double(stmt_, col); }
  std::optional<std::string> text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    if (!p) return std::nullopt;
    return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }

 private:
  Statement& check(int rc) {
    if (rc != SQLITE_OK) fail("bind");
    return *this;
  }
  [[noreturn]] void fail(const char* what) const {
    throw StoreError(std::string("results database: ") + what + ": " + sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

void exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string why = error ? error : sqlite3_errmsg(db);
    sqlite3_free(error);
    throw StoreError("results database: " + why);
  }
}

// Commits on success, rolls back when an exception leaves the scope.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) { exec(db_, "BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (!committed_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    exec(db_, "COMMIT");
    committed_ = true;
  }

 private:
  sqlite3* db_;
  bool committed_ = false;
};

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

Store::Store(const std::string& path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw StoreError("cannot open " + path + ": " + why);
  }
  sqlite3_busy_timeout(db_, 10000);
  try {
    // WAL: a commit is durable and a killed process leaves the database whole.
    exec(db_, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    exec(db_, kSchema);
  } catch (const StoreError& e) {
    sqlite3_close(db_);
    throw StoreError(path + " is not a ponder results database (" + e.what() + ")");
  }
}

Store::~Store() { sqlite3_close(db_); }

int64_t Store::run_id(const std::string& settings) {
  Statement find(db_, "SELECT id FROM runs WHERE settings = ?");
  find.bind(1, settings);
  if (find.step()) return find.integer(0);
  Statement add(db_, "INSERT INTO runs (settings, created) VALUES (?, ?)");
  add.bind(1, settings).bind(2, now_utc()).run();
  return sqlite3_last_insert_rowid(db_);
}

void Store::add_problems(int64_t run, const std::vector<ProblemRecord>& problems) {
  Transaction t(db_);
  Statement add(db_,
                "INSERT OR IGNORE INTO problems (run_id, problem_id, position, level, subject, gold) "
                "VALUES (?, ?, ?, ?, ?, ?)");
  for (const ProblemRecord& p : problems) {
    add.bind(1, run).bind(2, p.id).bind(3, p.position).bind(4, p.level).bind(5, p.subject).bind(6, p.gold).run();
  }
  t.commit();
}

bool Store::has_result(int64_t run, const std::string& problem_id, const std::string& strategy, int64_t budget,
                       int64_t seed) {
  Statement q(db_,
              "SELECT 1 FROM results WHERE run_id = ? AND problem_id = ? AND strategy = ? AND budget = ? "
              "AND seed = ?");
  q.bind(1, run).bind(2, problem_id).bind(3, strategy).bind(4, budget).bind(5, seed);
  return q.step();
}

std::optional<SearchRecord> Store::find_search(int64_t run, const std::string& problem_id, const std::string& search,
                                               int64_t seed, int64_t min_budget) {
  Statement q(db_,
              "SELECT budget, prompt_tokens, completion_tokens, verifier_tokens, rounds, seconds, verifier_seconds "
              "FROM searches WHERE run_id = ? AND problem_id = ? AND search = ? AND seed = ? AND budget >= ? "
              "ORDER BY budget DESC LIMIT 1");
  q.bind(1, run).bind(2, problem_id).bind(3, search).bind(4, seed).bind(5, min_budget);
  if (!q.step()) return std::nullopt;
  SearchRecord r;
  r.problem_id = problem_id;
  r.search = search;
  r.seed = seed;
  r.budget = q.integer(0);
  r.prompt_tokens = q.integer(1);
  r.completion_tokens = q.integer(2);
  r.verifier_tokens = q.integer(3);
  r.rounds = q.integer(4);
  r.seconds = q.real(5);
  r.verifier_seconds = q.real(6);
  Statement c(db_,
              "SELECT text, answer, correct, score, step_scores, tokens, finish FROM completions "
              "WHERE run_id = ? AND problem_id = ? AND search = ? AND budget = ? AND seed = ? ORDER BY idx");
  c.bind(1, run).bind(2, problem_id).bind(3, search).bind(4, r.budget).bind(5, seed);
  while (c.step()) {
    CompletionRecord cr;
    cr.text = c.text(0).value_or("");
    cr.answer = c.text(1);
    cr.correct = c.integer(2) != 0;
    cr.score = c.real(3);
    cr.step_scores = nlohmann::json::parse(c.text(4).value_or("[]")).get<std::vector<double>>();
    cr.tokens = c.integer(5);
    cr.finish = c.text(6).value_or("");
    r.completions.push_back(std::move(cr));
  }
  return r;
}

void Store::write(int64_t run, const SearchRecord* search, const std::vector<ResultRecord>& results) {
  Transaction t(db_);
  if (search) {
    Statement s(db_,
                "INSERT OR REPLACE INTO searches (run_id, problem_id, search, budget, seed, prompt_tokens, "
                "completion_tokens, verifier_tokens, rounds, seconds, verifier_seconds) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    s.bind(1, run).bind(2, search->problem_id).bind(3, search->search).bind(4, search->budget).bind(5, search->seed);
    s.bind(6, search->prompt_tokens).bind(7, search->completion_tokens).bind(8, search->verifier_tokens);
    s.bind(9, search->rounds).bind(10, search->seconds).bind(11, search->verifier_seconds).run();
    Statement c(db_,
                "INSERT OR REPLACE INTO completions (run_id, problem_id, search, budget, seed, idx, text, answer, "
                "correct, score, step_scores, tokens, finish) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (size_t i = 0; i < search->completions.size(); ++i) {
      const CompletionRecord& cr = search->completions[i];
      c.bind(1, run).bind(2, search->problem_id).bind(3, search->search).bind(4, search->budget);
      c.bind(5, search->seed).bind(6, static_cast<int64_t>(i)).bind(7, cr.text).bind(8, cr.answer);
      c.bind(9, int64_t{cr.correct}).bind(10, cr.score).bind(11, nlohmann::json(cr.step_scores).dump());
      c.bind(12, cr.tokens).bind(13, cr.finish).run();
    }
  }
  Statement r(db_,
              "INSERT OR REPLACE INTO results (run_id, problem_id, strategy, budget, seed, naive_answer, "
              "naive_correct, weighted_answer, weighted_correct, majority_answer, majority_correct, chosen, "
              "prompt_tokens, completion_tokens, verifier_tokens, seconds) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  for (const ResultRecord& x : results) {
    r.bind(1, run).bind(2, x.problem_id).bind(3, x.strategy).bind(4, x.budget).bind(5, x.seed);
    r.bind(6, x.naive.answer).bind(7, int64_t{x.naive.correct});
    r.bind(8, x.weighted.answer).bind(9, int64_t{x.weighted.correct});
    r.bind(10, x.majority.answer).bind(11, int64_t{x.majority.correct});
    r.bind(12, x.chosen).bind(13, x.prompt_tokens).bind(14, x.completion_tokens).bind(15, x.verifier_tokens);
    r.bind(16, x.seconds).run();
  }
  t.commit();
}

int64_t Store::count_results(int64_t run) {
  Statement q(db_, "SELECT COUNT(*) FROM results WHERE run_id = ?");
  q.bind(1, run);
  q.step();
  return q.integer(0);
}

}  // namespace ponder
