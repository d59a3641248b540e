#include "cli/verifier_setup.h"

#include <algorithm>

#include "verify/confidence.h"
#include "verify/judge.h"
#include "verify/prm.h"

namespace ponder::cli {
namespace {

int64_t longest_in_tokens(const Engine& vocab, const std::vector<std::string>& texts) {
  int64_t most = 0;
  for (const std::string& t : texts) most = std::max(most, static_cast<int64_t>(vocab.tokenize(t, true, true).size()));
  return most;
}

}  // namespace

void add_verifier_flags(CLI::App* cmd, VerifierFlags& flags) {
  cmd->add_option("--prm", flags.prm, "process reward model GGUF (scores each step)");
  cmd->add_option("--prm-format", flags.prm_format,
                  "PRM input format: rlhflow, math-shepherd, or a JSON file of PrmFormat fields")
      ->capture_default_str();
  cmd->add_option("--judge", flags.judge, "LLM-as-judge GGUF (scores finished solutions by P(yes))");
  cmd->add_option("--confidence", flags.confidence,
                  "score finished solutions by the generator's own confidence: mean (geometric-mean "
                  "token probability) or lowest-group (DeepConf)")
      ->check(CLI::IsMember({"mean", "lowest-group"}));
}

void check_verifier_flags(const VerifierFlags& f, const std::vector<Strategy>& strategies) {
  if (!f.prm.empty() && !f.judge.empty()) throw EngineError("give --prm or --judge, not both");
  if (!f.judge.empty() && !f.confidence.empty()) throw EngineError("give --judge or --confidence, not both");
  for (Strategy s : strategies) {
    if (is_step_wise(s) && f.prm.empty()) throw EngineError(std::string(to_string(s)) + " needs a PRM (--prm)");
    if ((s == Strategy::kBestOfN || s == Strategy::kWeightedBestOfN) && f.prm.empty() && f.judge.empty() &&
        f.confidence.empty()) {
      throw EngineError(std::string(to_string(s)) + " needs a verifier (--prm, --judge or --confidence)");
    }
  }
  if (!f.prm.empty()) PrmFormat::named(f.prm_format);  // a bad format fails here, before loading
}

OpenVerifiers open_verifiers(const VerifierFlags& f, const EngineFlags& engine_flags,
                             const std::vector<std::string>& problems, int32_t branches, bool step_wise,
                             SearchOptions& search, int32_t workers) {
  OpenVerifiers v;
  if (!f.prm.empty()) {
    const PrmFormat format = PrmFormat::named(f.prm_format);
    const int64_t problem_tokens = longest_in_tokens(*open_vocab(f.prm, engine_flags), problems);
    // A state per live branch and the root's, for each worker.
    v.model = std::make_unique<SharedModel>(
        open_sized(f.prm, engine_flags, 0, std::min((branches + 1) * workers, kMaxBranches),
                   prm_tokens_per_branch(problem_tokens, search, step_wise)),
        workers);
    for (int32_t w = 0; w < workers; ++w) v.step.push_back(std::make_unique<ProcessRewardModel>(v.model->for_worker(w), format));
  } else if (!f.judge.empty()) {
    const int64_t problem_tokens = longest_in_tokens(*open_vocab(f.judge, engine_flags), problems);
    v.model = std::make_unique<SharedModel>(
        open_sized(f.judge, engine_flags, (problem_tokens + 128) * workers, std::min(branches * workers, kMaxBranches),
                   search.max_tokens + 64),
        workers);
    for (int32_t w = 0; w < workers; ++w) v.outcome.push_back(std::make_unique<LlmJudge>(v.model->for_worker(w)));
  }
  if (f.confidence == "lowest-group" && search.top_logprobs == 0) search.top_logprobs = 5;
  for (int32_t w = 0; w < workers && !f.confidence.empty(); ++w) {
    if (f.confidence == "mean") {
      v.outcome.push_back(std::make_unique<MeanLogprobConfidence>());
    } else {
      v.outcome.push_back(std::make_unique<LowestGroupConfidence>());
    }
  }
  return v;
}

}  // namespace ponder::cli
