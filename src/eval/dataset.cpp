#include "eval/dataset.h"

#include <fstream>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "tasks/math/answer.h"

namespace ponder {
namespace {

using nlohmann::json;

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::optional<std::string> string_field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  return it->dump();
}

// MATH-500 has 1-5; full MATH has "Level 1".."Level 5" (and "Level ?" for a few problems).
std::optional<int> level_of(const json& j) {
  auto it = j.find("level");
  if (it == j.end()) return std::nullopt;
  if (it->is_number_integer()) return it->get<int>();
  if (it->is_string()) {
    std::string s = it->get<std::string>();
    if (s.rfind("Level ", 0) == 0) s = s.substr(6);
    if (s.size() == 1 && s[0] >= '1' && s[0] <= '9') return s[0] - '0';
  }
  return std::nullopt;
}

}  // namespace

std::vector<DatasetProblem> load_dataset(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read dataset " + path);
  std::vector<DatasetProblem> out;
  std::set<std::string> ids;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    const std::string where = path + ":" + std::to_string(number) + ": ";
    if (trim(line).empty()) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception&) {
      throw std::runtime_error(where + "not a JSON object");
    }
    if (!j.is_object()) throw std::runtime_error(where + "not a JSON object");
    DatasetProblem p;
    const auto problem = string_field(j, "problem");
    const auto question = string_field(j, "question");
    if (!problem && !question) throw std::runtime_error(where + "no \"problem\" or \"question\" field");
    p.problem = problem ? *problem : *question;
    std::optional<std::string> answer = string_field(j, "answer");
    if (answer && !problem && answer->find("####") != std::string::npos) {
      answer = answer->substr(answer->rfind("####") + 4);  // GSM8K: the reasoning, then "#### 42"
    }
    if (!answer) {
      // Full MATH: the last \\boxed{} of the solution.
      if (const auto solution = string_field(j, "solution")) answer = extract_answer(*solution, {{AnswerRule::kBoxed}});
    }
    if (!answer || trim(*answer).empty()) {
      throw std::runtime_error(where + "no answer (an \"answer\" field, or a \\boxed{} answer in \"solution\")");
    }
    p.answer = trim(*answer);
    p.level = level_of(j);
    p.subject = string_field(j, "subject").value_or(string_field(j, "type").value_or(""));
    if (auto id = string_field(j, "unique_id")) {
      p.id = *id;
    } else if (auto idx = string_field(j, "idx")) {
      p.id = *idx;
    } else {
      p.id = "line " + std::to_string(number);
    }
    if (!ids.insert(p.id).second) throw std::runtime_error(where + "duplicate problem id " + p.id);
    out.push_back(std::move(p));
  }
  if (out.empty()) throw std::runtime_error("dataset " + path + " has no problems");
  return out;
}

}  // namespace ponder
