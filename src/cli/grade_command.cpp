// ponder grade: whether predicted math answers equal gold answers (tasks/math/grade.h), for one
// pair on the command line or for each line of a JSONL file.
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "tasks/math/answer.h"
#include "tasks/math/grade.h"

namespace ponder::cli {
namespace {

using ordered_json = nlohmann::ordered_json;

struct GradeCommandOptions {
  std::optional<std::string> gold;
  std::optional<std::string> pred;
  std::string jsonl;
  std::string out;
  bool extract = false;
  std::string answer_rules = "boxed,final-answer,the-answer,last-number";
  GradeOptions grade;
};

// With --extract the prediction is a whole solution: its final answer, or nullopt.
std::optional<std::string> predicted_answer(const std::string& pred, const GradeCommandOptions& o,
                                            const ExtractOptions& extract) {
  if (!o.extract) return pred;
  return extract_answer(pred, extract);
}

Grade grade_prediction(const std::string& gold, const std::optional<std::string>& answer, const GradeOptions& options) {
  if (!answer) return {false, "no answer found in the prediction"};
  return grade_answer(gold, *answer, options);
}

int run_pair(const GradeCommandOptions& o, const ExtractOptions& extract) {
  const std::optional<std::string> answer = predicted_answer(*o.pred, o, extract);
  const Grade g = grade_prediction(*o.gold, answer, o.grade);
  fmt::print("{}\n", g.equivalent ? "equivalent" : "not equivalent");
  if (o.extract) fmt::print("answer: {}\n", answer ? *answer : "none");
  fmt::print("reason: {}\n", g.reason);
  return 0;
}

// An answer field: a string, or a number as JSON writes it (GSM8K's answers are numbers).
std::optional<std::string> answer_field(const ordered_json& line, const char* name, bool null_allowed,
                                        const std::string& where) {
  const auto it = line.find(name);
  if (it == line.end()) throw std::runtime_error(where + ": no \"" + name + "\" field");
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();
  if (it->is_null() && null_allowed) return std::nullopt;
  throw std::runtime_error(where + ": \"" + name + "\" is not a string or a number");
}

int run_jsonl(const GradeCommandOptions& o, const ExtractOptions& extract) {
  std::ifstream file;
  if (o.jsonl != "-") {
    file.open(o.jsonl);
    if (!file) throw std::runtime_error("cannot read " + o.jsonl);
  }
  std::istream& in = o.jsonl == "-" ? std::cin : file;
  const std::string name = o.jsonl == "-" ? "stdin" : o.jsonl;

  // Every line is checked before anything is written: a bad file leaves no partial output.
  struct Row {
    ordered_json line;
    std::string gold;
    std::optional<std::string> pred;
  };
  std::vector<Row> rows;
  std::string text;
  for (size_t number = 1; std::getline(in, text); ++number) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = name + ":" + std::to_string(number);
    ordered_json line = ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (line.is_discarded()) throw std::runtime_error(where + ": not JSON");
    if (!line.is_object()) throw std::runtime_error(where + ": not a JSON object");
    const std::optional<std::string> gold = answer_field(line, "gold", false, where);
    const std::optional<std::string> pred = answer_field(line, "pred", true, where);
    rows.push_back({std::move(line), *gold, pred});
  }

  std::ofstream out_file;
  if (!o.out.empty()) {
    out_file.open(o.out);
    if (!out_file) throw std::runtime_error("cannot write " + o.out);
  }
  std::ostream& out = o.out.empty() ? std::cout : out_file;
  for (Row& row : rows) {
    const std::optional<std::string> answer = row.pred ? predicted_answer(*row.pred, o, extract) : std::nullopt;
    const Grade g = row.pred ? grade_prediction(row.gold, answer, o.grade) : Grade{false, "no prediction"};
    if (o.extract) row.line["answer"] = answer ? ordered_json(*answer) : ordered_json(nullptr);
    row.line["equivalent"] = g.equivalent;
    row.line["reason"] = g.reason;
    out << row.line.dump(-1, ' ', false, ordered_json::error_handler_t::replace) << "\n";
  }
  out.flush();
  if (!out) throw std::runtime_error("cannot write " + (o.out.empty() ? std::string("standard output") : o.out));
  return 0;
}

int run_grade(const GradeCommandOptions& o) {
  const bool pair = o.gold || o.pred;
  if (pair == !o.jsonl.empty()) throw std::runtime_error("give --gold and --pred, or --jsonl");
  if (pair && !(o.gold && o.pred)) throw std::runtime_error("give both --gold and --pred");
  ExtractOptions extract;
  extract.order = parse_answer_rules(o.answer_rules);
  return pair ? run_pair(o, extract) : run_jsonl(o, extract);
}

}  // namespace

Command add_grade_command(CLI::App& app) {
  auto o = std::make_shared<GradeCommandOptions>();
  CLI::App* cmd = app.add_subcommand("grade", "whether predicted math answers equal gold answers");
  cmd->add_option("--gold", o->gold, "the gold answer (LaTeX, e.g. '\\frac{1}{2}')");
  cmd->add_option("--pred", o->pred, "the predicted answer");
  CLI::Option* jsonl =
      cmd->add_option("--jsonl", o->jsonl,
                      "grade each line of this JSONL file ('-': standard input): objects with \"gold\" and \"pred\" "
                      "(strings or numbers; a null pred is not equivalent). Each line is written back with "
                      "\"equivalent\" and \"reason\" added; a bad line is an error naming it, before any output");
  cmd->add_option("--out,-o", o->out, "with --jsonl: write the lines to this file (default: standard output)")
      ->needs(jsonl);
  CLI::Option* extract =
      cmd->add_flag("--extract", o->extract,
                    "the prediction is a whole solution: grade the final answer found in it by --answer-rules "
                    "(printed as 'answer: ...'; with --jsonl added as \"answer\")");
  cmd->add_option("--answer-rules", o->answer_rules,
                  "with --extract: the rules that find the answer, in order of precedence, from boxed, "
                  "final-answer, the-answer, last-number")
      ->capture_default_str()
      ->needs(extract);
  cmd->add_option("--tolerance", o->grade.relative_tolerance,
                  "relative tolerance for answers written with a decimal point (exact answers must agree exactly)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->footer(
      "Prints 'equivalent' or 'not equivalent' on the first line and 'reason: ...' on the last; the exit "
      "status is 0 either way (non-zero only for bad arguments or input).");
  return {cmd, [o] { return run_grade(*o); }};
}

}  // namespace ponder::cli
