// Subcommands of the ponder CLI. Each registers its options on the app and returns the
// function that runs it (exit status as the result).
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace ponder::cli {

struct Command {
  CLI::App* app;
  std::function<int()> run;
};

Command add_generate_command(CLI::App& app);
Command add_solve_command(CLI::App& app);
Command add_grade_command(CLI::App& app);
Command add_eval_command(CLI::App& app);
Command add_report_command(CLI::App& app);
Command add_story_command(CLI::App& app);
Command add_serve_command(CLI::App& app);
Command add_train_toy_command(CLI::App& app);

}  // namespace ponder::cli
