// Commands on remote backends: --remote (instead of --model) and --prm-remote (instead of --prm)
// name llama-server or vLLM endpoints; the flags here say how to reach them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "engine/remote_engine.h"

namespace ponder::cli {

struct RemoteFlags {
  std::vector<std::string> generator;  // --remote: the generator's endpoints
  int parallel = 8;                    // requests in flight per endpoint
  double timeout = 600.0;              // seconds to wait for one response
  std::string api_key;                 // --api-key, else $PONDER_API_KEY
  RemoteApi api = RemoteApi::kAuto;    // --remote-api: the endpoints' API
};

// --remote URL (repeatable, or comma-separated), --remote-api, --remote-parallel, --remote-timeout, the
// endpoints' key (`key_flag`: --api-key, or another name where the command has an --api-key of
// its own), and --prm-remote URL into *prm_remote when given. --remote excludes `model` (the
// command's --model option); a command takes one of them (require_model_or_remote).
void add_remote_flags(CLI::App* cmd, RemoteFlags& flags, CLI::Option* model,
                      std::vector<std::string>* prm_remote = nullptr, const std::string& key_flag = "--api-key");

// Throws EngineError unless exactly one of --model and --remote was given.
void require_model_or_remote(const std::string& model, const RemoteFlags& flags);

// The engine behind `urls` (flags' or another list, e.g. --prm-remote's).
std::unique_ptr<RemoteEngine> open_remote(const std::vector<std::string>& urls, const RemoteFlags& flags);

// "url1,url2": how the endpoints are named in output in place of a model path.
std::string endpoints_label(const std::vector<std::string>& urls);

}  // namespace ponder::cli
