#include "tasks/toy/prm_data.h"

#include <stdexcept>

#include "llama.h"

namespace ponder::toy {
namespace {

// The conversation with these user turns and answers, through the toy chat template.
std::string render(const std::vector<std::string>& contents) {
  std::vector<llama_chat_message> chat;
  size_t total = 0;
  for (size_t i = 0; i < contents.size(); ++i) {
    chat.push_back({i % 2 == 0 ? "user" : "assistant", contents[i].c_str()});
    total += contents[i].size() + 32;
  }
  std::string out(total + 256, '\0');
  int32_t n = llama_chat_apply_template(kToyChatTemplate, chat.data(), chat.size(), /*add_ass=*/false, out.data(),
                                        static_cast<int32_t>(out.size()));
  if (n > static_cast<int32_t>(out.size())) {
    out.resize(static_cast<size_t>(n));
    n = llama_chat_apply_template(kToyChatTemplate, chat.data(), chat.size(), false, out.data(), n);
  }
  if (n < 0) throw std::runtime_error("llama.cpp cannot render the toy chat template");
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace

Document prm_document(const Problem& problem, const SolutionCheck& check) {
  if (check.steps.empty()) return Document("");
  std::vector<std::string> shown, labelled;
  for (size_t i = 0; i < check.steps.size(); ++i) {
    // PrmFormat::rlhflow()'s first turn, "{problem} {step}".
    const std::string turn = i == 0 ? problem.text() + " " + check.steps[0] : check.steps[i];
    shown.insert(shown.end(), {turn, "+"});
    labelled.insert(labelled.end(), {turn, check.labels[i] ? "+" : "-"});
  }
  return {render(shown), render(labelled)};
}

std::optional<std::string> slipped_solution(const Problem& problem, Rng& rng) {
  if (problem.ops.empty()) return std::nullopt;
  const std::vector<int64_t> v = problem.values();
  constexpr int kTries = 8;
  for (int attempt = 0; attempt < kTries; ++attempt) {
    const size_t k = static_cast<size_t>(rng.uniform(0, static_cast<int64_t>(problem.ops.size()) - 1));
    std::string digits = std::to_string(v[k + 1]);
    const size_t at = static_cast<size_t>(rng.uniform(0, static_cast<int64_t>(digits.size()) - 1));
    // Any other digit, equally likely, never a leading zero: a slip still reads as a number.
    const int64_t lowest = at == 0 && digits.size() > 1 ? 1 : 0;
    const int64_t was = digits[at] - '0';
    int64_t d = rng.uniform(lowest, 8);
    if (d >= was) ++d;
    digits[at] = static_cast<char>('0' + d);
    int64_t value = std::stoll(digits);
    std::string s;
    bool ok = true;
    for (size_t i = 0; i < problem.ops.size() && ok; ++i) {
      const int64_t a = i <= k ? v[i] : value;
      const int64_t c = i < k ? v[i + 1] : i == k ? value : apply(problem.ops[i].op, a, problem.ops[i].operand);
      ok = c >= 0 && c <= 9999;
      s += std::to_string(a) + " " + static_cast<char>(problem.ops[i].op) + " " + std::to_string(problem.ops[i].operand) +
           " = " + std::to_string(c) + "\n\n";
      if (i >= k) value = c;
    }
    if (ok) return s + "Answer: \\boxed{" + std::to_string(value) + "}";
  }
  return std::nullopt;
}

}  // namespace ponder::toy
