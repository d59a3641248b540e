#include "cli/remote_setup.h"

#include <cstdlib>
#include <map>

namespace ponder::cli {

void add_remote_flags(CLI::App* cmd, RemoteFlags& f, CLI::Option* model, std::vector<std::string>* prm_remote,
                      const std::string& key_flag) {
  CLI::Option* remote =
      cmd->add_option("--remote", f.generator,
                      "generate on llama-server or vLLM endpoints (URL, repeatable or comma-separated) instead "
                      "of --model");
  remote->excludes(model);
  const std::map<std::string, RemoteApi> apis = {
      {"auto", RemoteApi::kAuto}, {"llama-server", RemoteApi::kLlamaServer}, {"vllm", RemoteApi::kVllm}};
  cmd->add_option("--remote-api", f.api,
                  "the endpoints' API: llama-server, vllm (its OpenAI API), or auto (asks the first endpoint)")
      ->transform(CLI::CheckedTransformer(apis).description("{auto,llama-server,vllm}"))
      ->default_str("auto");
  cmd->add_option("--remote-parallel", f.parallel,
                  "requests in flight per endpoint (match the server's -np)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--remote-timeout", f.timeout, "seconds to wait for one response from an endpoint")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  cmd->add_option(key_flag, f.api_key, "bearer token for the endpoints (default: $PONDER_API_KEY)");
  if (prm_remote) {
    cmd->add_option("--prm-remote", *prm_remote,
                    "a process reward model on llama-server or vLLM endpoints instead of --prm (URL, "
                    "repeatable or comma-separated; their API is also --remote-api's)");
  }
}

void require_model_or_remote(const std::string& model, const RemoteFlags& flags) {
  if (model.empty() && split_endpoints(flags.generator).empty()) throw EngineError("give --model or --remote");
}

std::unique_ptr<RemoteEngine> open_remote(const std::vector<std::string>& urls, const RemoteFlags& flags) {
  RemoteOptions o;
  o.endpoints = split_endpoints(urls);
  o.max_inflight_per_endpoint = flags.parallel;
  o.request_timeout_s = flags.timeout;
  o.api_key = flags.api_key;
  o.api = flags.api;
  if (o.api_key.empty()) {
    if (const char* key = std::getenv("PONDER_API_KEY")) o.api_key = key;
  }
  return open_remote_engine(o);
}

std::string endpoints_label(const std::vector<std::string>& urls) {
  std::string out;
  for (const std::string& u : split_endpoints(urls)) out += (out.empty() ? "" : ",") + u;
  return out;
}

}  // namespace ponder::cli
