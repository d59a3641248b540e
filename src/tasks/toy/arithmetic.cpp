#include "tasks/toy/arithmetic.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <stdexcept>
#include <unordered_set>

#include <nlohmann/json.hpp>

namespace ponder::toy {
namespace {

constexpr LevelSpec kLevelSpecs[kLevels] = {
    {1, 9}, {2, 9}, {3, 20}, {4, 50}, {5, 99},
};

const char* phrase(Op op) {
  switch (op) {
    case Op::kAdd: return "add ";
    case Op::kSub: return "subtract ";
    case Op::kMul: return "multiply by ";
  }
  return "";
}

std::string strip(std::string_view s) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  return std::string(s.substr(b, s.find_last_not_of(kSpace) - b + 1));
}

// A whole non-negative decimal number (the reference never writes a sign).
std::optional<int64_t> number(std::string_view s) {
  if (s.empty() || s.front() < '0' || s.front() > '9') return std::nullopt;
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

struct ParsedStep {
  int64_t a;
  Op op;
  int64_t b;
  int64_t c;
};

// "a op b = c", spaces exactly as in the reference.
std::optional<ParsedStep> parse_step(std::string_view s) {
  const size_t eq = s.find(" = ");
  if (eq == std::string_view::npos) return std::nullopt;
  const std::string_view lhs = s.substr(0, eq);
  const auto c = number(s.substr(eq + 3));
  const size_t sp = lhs.find(' ');
  if (!c || sp == std::string_view::npos || sp + 3 > lhs.size() || lhs[sp + 2] != ' ') return std::nullopt;
  const char op = lhs[sp + 1];
  if (op != '+' && op != '-' && op != '*') return std::nullopt;
  const auto a = number(lhs.substr(0, sp));
  const auto b = number(lhs.substr(sp + 3));
  if (!a || !b) return std::nullopt;
  return ParsedStep{*a, static_cast<Op>(op), *b, *c};
}

std::optional<int64_t> parse_answer(std::string_view s) {
  constexpr std::string_view kOpen = "Answer: \\boxed{";
  if (!s.starts_with(kOpen) || !s.ends_with("}")) return std::nullopt;
  return number(s.substr(kOpen.size(), s.size() - kOpen.size() - 1));
}

// Draws per_level problems of each level from its own stream (so a level's problems do not depend
// on how many the other levels take), skipping those in `exclude` and, when `distinct`, repeats.
std::vector<Problem> draw(uint64_t seed, int per_level, const std::unordered_set<std::string>& exclude,
                          bool distinct) {
  if (per_level < 0) throw std::invalid_argument("a split cannot have a negative number of problems");
  // Far more misses in a row than any level with room left needs: the level is used up.
  constexpr int kMaxMisses = 100000;
  std::vector<Problem> out;
  for (int level = 1; level <= kLevels; ++level) {
    Rng rng(seed ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(level)));
    std::unordered_set<std::string> seen;
    int misses = 0;
    for (int n = 0; n < per_level;) {
      Problem p = random_problem(level, rng);
      const std::string text = p.text();
      if (exclude.contains(text) || (distinct && !seen.insert(text).second)) {
        if (++misses == kMaxMisses) {
          throw std::runtime_error("level " + std::to_string(level) + " has fewer than " +
                                   std::to_string(per_level) + " distinct problems left for a split");
        }
        continue;
      }
      misses = 0;
      out.push_back(std::move(p));
      ++n;
    }
  }
  return out;
}

}  // namespace

LevelSpec level_spec(int level) {
  if (level < 1 || level > kLevels) {
    throw std::invalid_argument("toy level " + std::to_string(level) + " is not in 1.." + std::to_string(kLevels));
  }
  return kLevelSpecs[level - 1];
}

int64_t apply(Op op, int64_t a, int64_t b) {
  switch (op) {
    case Op::kAdd: return a + b;
    case Op::kSub: return a - b;
    case Op::kMul: return a * b;
  }
  return 0;
}

std::vector<int64_t> Problem::values() const {
  std::vector<int64_t> v{start};
  for (const auto& o : ops) v.push_back(apply(o.op, v.back(), o.operand));
  return v;
}

int64_t Problem::answer() const { return values().back(); }

std::string Problem::text() const {
  std::string s = "Start with " + std::to_string(start);
  for (const auto& o : ops) s += ", " + std::string(phrase(o.op)) + std::to_string(o.operand);
  return s + ". What is the result?";
}

std::string Problem::solution() const {
  const std::vector<int64_t> v = values();
  std::string s;
  for (size_t i = 0; i < ops.size(); ++i) {
    s += std::to_string(v[i]) + " " + static_cast<char>(ops[i].op) + " " + std::to_string(ops[i].operand) + " = " +
         std::to_string(v[i + 1]) + "\n\n";
  }
  return s + "Answer: \\boxed{" + std::to_string(v.back()) + "}";
}

int64_t Rng::uniform(int64_t lo, int64_t hi) {
  const uint64_t range = static_cast<uint64_t>(hi - lo) + 1;
  if (range == 0) return static_cast<int64_t>(gen_());  // the whole 64-bit range
  // Rejection keeps every value equally likely: draws at or above `limit` would favour low values.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  uint64_t x;
  do {
    x = gen_();
  } while (x >= limit);
  return lo + static_cast<int64_t>(x % range);
}

Problem random_problem(int level, Rng& rng) {
  const LevelSpec spec = level_spec(level);
  Problem p;
  p.level = level;
  p.start = rng.uniform(1, spec.max_operand);
  int64_t v = p.start;
  for (int i = 0; i < spec.operations; ++i) {
    // Largest operand of each operation that keeps v in [0, kMaxValue]; the operation is usable
    // when that is at least its smallest operand.
    struct Choice {
      Op op;
      int64_t lo, hi;
    };
    const Choice all[] = {
        {Op::kAdd, 1, std::min(spec.max_operand, kMaxValue - v)},
        {Op::kSub, 1, std::min(spec.max_operand, v)},
        {Op::kMul, 2, v == 0 ? 0 : std::min<int64_t>(9, kMaxValue / v)},
    };
    std::vector<Choice> usable;
    for (const auto& c : all) {
      if (c.lo <= c.hi) usable.push_back(c);
    }
    const Choice& c = usable[static_cast<size_t>(rng.uniform(0, static_cast<int64_t>(usable.size()) - 1))];
    const int64_t operand = rng.uniform(c.lo, c.hi);
    p.ops.push_back({c.op, operand});
    v = apply(c.op, v, operand);
  }
  return p;
}

Splits make_splits(int train_per_level, int validation_per_level, int test_per_level) {
  Splits s;
  std::unordered_set<std::string> used;
  s.test = draw(kTestSeed, test_per_level, used, true);
  for (const auto& p : s.test) used.insert(p.text());
  s.validation = draw(kValidationSeed, validation_per_level, used, true);
  for (const auto& p : s.validation) used.insert(p.text());
  s.train = draw(kTrainSeed, train_per_level, used, false);
  return s;
}

void write_jsonl(const std::string& path, const std::vector<Problem>& problems, std::string_view split_name) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error("cannot write " + path);
  for (size_t i = 0; i < problems.size(); ++i) {
    const Problem& p = problems[i];
    nlohmann::ordered_json j;
    j["problem"] = p.text();
    j["answer"] = std::to_string(p.answer());
    j["level"] = p.level;
    j["unique_id"] = "toy-" + std::string(split_name) + "-" + std::to_string(i);
    j["solution"] = p.solution();
    out << j.dump() << '\n';
  }
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path);
}

SolutionCheck check_solution(const Problem& problem, std::string_view solution) {
  SolutionCheck r;
  for (size_t at = 0; at <= solution.size();) {
    const size_t end = std::min(solution.find("\n\n", at), solution.size());
    std::string step = strip(solution.substr(at, end - at));
    if (!step.empty()) r.steps.push_back(std::move(step));
    at = end + 2;
  }
  const std::vector<int64_t> v = problem.values();
  const size_t n_ops = problem.ops.size();
  bool on_track = true;
  for (size_t i = 0; i < r.steps.size(); ++i) {
    bool ok = false;
    if (i < n_ops) {
      const auto s = parse_step(r.steps[i]);
      ok = s && s->a == v[i] && s->op == problem.ops[i].op && s->b == problem.ops[i].operand && s->c == v[i + 1];
    } else if (i == n_ops) {
      ok = parse_answer(r.steps[i]) == v.back();
    }
    on_track = on_track && ok;
    r.step_ok.push_back(ok);
    r.labels.push_back(on_track);
  }
  if (!r.steps.empty()) r.answer = parse_answer(r.steps.back());
  r.correct = on_track && r.steps.size() == n_ops + 1;
  return r;
}

}  // namespace ponder::toy
