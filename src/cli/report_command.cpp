// ponder report: accuracy against budget, per level and cost, from a results database of
// `ponder eval`, as Markdown on standard output and, with --out, report.md and gnuplot plots.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include <fmt/core.h>

#include "cli/commands.h"
#include "eval/report.h"

namespace ponder::cli {
namespace {

struct ReportOptions {
  std::string db;
  std::string out;
  std::optional<int64_t> run;
};

int run_report(const ReportOptions& o) {
  const std::vector<RunReport> runs = read_report(o.db, o.run);
  // The Markdown comes first, so that it is out even when gnuplot then fails.
  fmt::print("{}", report_markdown(runs, !o.out.empty()));
  std::fflush(stdout);
  if (!o.out.empty()) write_report(runs, o.out);
  return 0;
}

}  // namespace

Command add_report_command(CLI::App& app) {
  auto o = std::make_shared<ReportOptions>();
  CLI::App* cmd = app.add_subcommand("report", "accuracy against budget from a results database of ponder eval");
  cmd->add_option("--db", o->db, "the results database (SQLite) that ponder eval wrote")
      ->required()
      ->type_name("FILE");
  cmd->add_option("--out", o->out,
                  "also write DIR/report.md and plots (accuracy, accuracy_selections, accuracy_by_level; PNG and "
                  "SVG, drawn by gnuplot); DIR is created when missing")
      ->type_name("DIR");
  cmd->add_option("--run", o->run, "report only this run (default: every run with results)")->type_name("ID");
  return {cmd, [o] { return run_report(*o); }};
}

}  // namespace ponder::cli
