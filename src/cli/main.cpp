#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "engine/engine.h"
#include "engine/llama_engine.h"

#ifndef PONDER_VERSION
#define PONDER_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  CLI::App app{"ponder: test-time compute for small language models"};
  app.set_version_flag("--version", std::string("ponder ") + PONDER_VERSION + "\nllama.cpp " +
                                        ponder::llama_cpp_version());
  app.require_subcommand(1);

  std::vector<ponder::cli::Command> commands;
  commands.push_back(ponder::cli::add_generate_command(app));
  commands.push_back(ponder::cli::add_solve_command(app));
  commands.push_back(ponder::cli::add_grade_command(app));
  commands.push_back(ponder::cli::add_eval_command(app));
  commands.push_back(ponder::cli::add_report_command(app));
  commands.push_back(ponder::cli::add_story_command(app));
  commands.push_back(ponder::cli::add_serve_command(app));
  commands.push_back(ponder::cli::add_train_toy_command(app));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, so that scripts and people see the reason at once.
    std::string what = e.what();
    if (what.empty()) what = "invalid arguments (see --help)";
    std::fprintf(stderr, "ponder: error: %s\n", what.c_str());
    return 2;
  }

  try {
    for (auto& command : commands) {
      if (command.app->parsed()) return command.run();
    }
  } catch (const ponder::EngineError& e) {
    std::fprintf(stderr, "ponder: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ponder: error: %s\n", e.what());
    return 1;
  }
  return 2;
}
