#include "verify/prm.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "engine/timing.h"
#include "verify/placeholders.h"

namespace ponder {
namespace {


constexpr std::string_view kProblem = "{problem}";
constexpr std::string_view kStep = "{step}";
// Stands for the first step when rendering a root: a root holds the text before it.
constexpr std::string_view kStepMarker = "\x1f<ponder-prm-step>\x1f";

size_t count(std::string_view text, std::string_view what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string_view::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

std::string strip(std::string_view s) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  return std::string(s.substr(b, s.find_last_not_of(kSpace) - b + 1));
}

// For error messages: a short, one-line view of a piece of text.
std::string quote(std::string_view s) {
  std::string out = nlohmann::json(std::string(s.substr(0, 40)))
                        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > 40) out.insert(out.size() - 1, "...");
  return out;
}

bool starts_with(const std::vector<Token>& tokens, const std::vector<Token>& prefix) {
  return tokens.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), tokens.begin());
}

Token single_token(const Engine& engine, const std::string& text, const char* what) {
  const auto tokens = engine.tokenize(text, false, true);
  if (tokens.size() != 1) {
    throw EngineError(std::string("PRM format: ") + what + " " + quote(text) + " is " +
                      std::to_string(tokens.size()) + " tokens in the PRM's vocabulary; it must be one");
  }
  return tokens[0];
}

}  // namespace

// --- PrmFormat -----------------------------------------------------------------------------------

PrmFormat PrmFormat::rlhflow() { return PrmFormat{}; }

PrmFormat PrmFormat::math_shepherd() {
  PrmFormat f;
  f.layout = Layout::kStepTag;
  return f;
}

void PrmFormat::validate() const {
  if (good.empty() || bad.empty()) throw EngineError("PRM format: good and bad must not be empty");
  if (good == bad) throw EngineError("PRM format: good and bad must differ");
  if (layout == Layout::kChat) {
    if (count(first_turn, kProblem) != 1 || count(first_turn, kStep) != 1) {
      throw EngineError("PRM format: first_turn must hold \"{problem}\" and \"{step}\" once each, got " +
                        quote(first_turn));
    }
  } else if (step_tag.empty()) {
    throw EngineError("PRM format: step_tag must not be empty");
  }
}

PrmFormat PrmFormat::from_json(std::string_view text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw EngineError(std::string("PRM format: invalid JSON: ") + e.what());
  }
  if (!j.is_object()) throw EngineError("PRM format: expected a JSON object");
  static const std::pair<const char*, std::string PrmFormat::*> kStrings[] = {
      {"good", &PrmFormat::good},
      {"bad", &PrmFormat::bad},
      {"first_turn", &PrmFormat::first_turn},
      {"problem_joiner", &PrmFormat::problem_joiner},
      {"step_tag", &PrmFormat::step_tag},
      {"step_separator", &PrmFormat::step_separator},
  };
  PrmFormat f;
  for (const auto& [key, value] : j.items()) {
    if (!value.is_string()) throw EngineError("PRM format: \"" + key + "\" must be a string");
    const std::string v = value.get<std::string>();
    if (key == "layout") {
      if (v == "chat") {
        f.layout = Layout::kChat;
      } else if (v == "step_tag") {
        f.layout = Layout::kStepTag;
      } else {
        throw EngineError("PRM format: layout must be \"chat\" or \"step_tag\", got " + quote(v));
      }
      continue;
    }
    const auto* field = std::find_if(std::begin(kStrings), std::end(kStrings),
                                     [&](const auto& s) { return key == s.first; });
    if (field == std::end(kStrings)) throw EngineError("PRM format: unknown key " + quote(key));
    f.*(field->second) = v;
  }
  f.validate();
  return f;
}

PrmFormat PrmFormat::named(const std::string& name_or_path) {
  if (name_or_path == "rlhflow") return rlhflow();
  if (name_or_path == "math-shepherd") return math_shepherd();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(name_or_path, ec)) {
    throw EngineError("unknown PRM format " + quote(name_or_path) +
                      ": not rlhflow, math-shepherd or a JSON file");
  }
  std::ifstream in(name_or_path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) throw EngineError("cannot read PRM format file " + name_or_path);
  try {
    return from_json(text.str());
  } catch (const EngineError& e) {
    throw EngineError(name_or_path + ": " + e.what());
  }
}

// --- ProcessRewardModel --------------------------------------------------------------------------

ProcessRewardModel::ProcessRewardModel(Engine& engine, PrmFormat format)
    : engine_(engine), format_(std::move(format)) {
  format_.validate();
  good_ = single_token(engine_, format_.good, "good");
  bad_ = single_token(engine_, format_.bad, "bad");
  if (good_ == bad_) throw EngineError("PRM format: good and bad are the same token");
  if (format_.layout == PrmFormat::Layout::kChat && !engine_.has_chat_template()) {
    throw EngineError("PRM format: the chat layout needs a chat template, and the PRM model has none");
  }
  bos_text_ = engine_.detokenize(engine_.tokenize("", true, true));
}

ProcessRewardModel::~ProcessRewardModel() {
  for (const auto& [id, state] : states_) engine_.free_branch(state.branch);
}

const ProcessRewardModel::State& ProcessRewardModel::get(VerifierState state) const {
  const auto it = states_.find(state);
  if (it == states_.end()) throw EngineError("unknown PRM state " + std::to_string(state));
  return it->second;
}

const std::vector<Token>& ProcessRewardModel::tokens(VerifierState state) const {
  return engine_.branch_tokens(get(state).branch);
}

std::string ProcessRewardModel::root_text(const std::string& problem) const {
  if (format_.layout == PrmFormat::Layout::kStepTag) return problem;
  const std::string text =
      engine_.apply_chat_template({{"user", fill_placeholders(format_.first_turn, {{kProblem, problem}, {kStep, kStepMarker}})}}, false);
  const size_t at = text.find(kStepMarker);
  if (at == std::string::npos) throw EngineError("the PRM's chat template drops the step text");
  // The space before the step belongs to the step's first token (" Step").
  size_t end = at;
  while (end > 0 && text[end - 1] == ' ') --end;
  return text.substr(0, end);
}

// The conversation of a state's problem and steps: a user turn per step, each answered `good`,
// except that the last step's answer is left out when add_generation_prompt asks for it instead.
std::string ProcessRewardModel::render(const State& state, bool add_generation_prompt) const {
  std::vector<ChatMessage> messages;
  for (size_t i = 0; i < state.steps.size(); ++i) {
    messages.push_back({"user", i == 0 ? fill_placeholders(format_.first_turn, {{kProblem, state.problem}, {kStep, state.steps[0]}}) : state.steps[i]});
    messages.push_back({"assistant", format_.good});
  }
  if (add_generation_prompt) messages.pop_back();
  return engine_.apply_chat_template(messages, add_generation_prompt);
}

// BOS (or whatever the tokenizer puts first) goes before the start of the text, unless the chat
// template already wrote it there.
std::vector<Token> ProcessRewardModel::tokenize_text(const std::string& text, bool at_start) const {
  const bool add_special = at_start && !bos_text_.empty() && !text.starts_with(bos_text_);
  return engine_.tokenize(text, add_special, true);
}

ProcessRewardModel::Plan ProcessRewardModel::plan(const State& parent, const std::vector<std::string>& steps) const {
  Plan p{parent, {}, {}};
  State& s = p.state;
  std::vector<Piece> pieces;
  // Chat: appends the text by which `next` (a render of the conversation) continues s.text.
  auto continue_with = [&](std::string next, bool probe) {
    if (!next.starts_with(s.text)) {
      throw EngineError("the PRM's chat template does not render a conversation as the start of "
                        "its continuation, so it cannot be scored incrementally");
    }
    pieces.push_back({next.substr(s.text.size()), probe});
    s.text = std::move(next);
  };
  for (const auto& raw : steps) {
    const bool first = s.steps.empty();
    s.steps.push_back(strip(raw));
    if (format_.layout == PrmFormat::Layout::kChat) {
      continue_with(render(s, true), true);
      continue_with(render(s, false), false);
    } else {
      pieces.push_back({(first ? format_.problem_joiner : format_.step_separator) + s.steps.back() + format_.step_tag, true});
      s.text += pieces.back().text;
    }
  }
  s.context_at = s.text.size() - pieces.back().text.size();

  // Tokenize the parent's last piece and then each new piece after it: every boundary must keep
  // the tokens before it, so that the pieces' tokens are those of the whole text.
  const bool at_start = parent.context_at == 0;
  std::string text = parent.text.substr(parent.context_at);
  std::vector<Token> before = tokenize_text(text, at_start);
  const size_t base = before.size();
  for (const auto& piece : pieces) {
    text += piece.text;
    std::vector<Token> now = tokenize_text(text, at_start);
    if (!starts_with(now, before)) {
      throw EngineError("PRM tokens run across the boundary before " + quote(piece.text) +
                        ", so the text cannot be scored incrementally");
    }
    // A piece is never empty (a probed one holds a step tag or a generation prompt), and the
    // check above keeps the tokens before it: its last token is the new last one.
    if (piece.probe) p.probes.push_back(static_cast<int32_t>(now.size() - 1 - base));
    before = std::move(now);
  }
  p.tokens.assign(before.begin() + static_cast<ptrdiff_t>(base), before.end());
  return p;
}

VerifierState ProcessRewardModel::root(const std::string& problem) {
  const auto t0 = Clock::now();
  State s;
  s.problem = problem;
  s.text = root_text(problem);
  const auto tokens = tokenize_text(s.text, true);
  s.branch = engine_.new_branch(tokens);
  // Computed by the engine with its next work, once for all children.
  stats_.tokens_evaluated += static_cast<int64_t>(tokens.size());
  const VerifierState id = next_state_++;
  states_.emplace(id, std::move(s));
  stats_.seconds += seconds_since(t0);
  return id;
}

std::vector<StepVerifier::Scored> ProcessRewardModel::extend(const std::vector<Extension>& extensions) {
  if (extensions.empty()) return {};
  const auto t0 = Clock::now();
  // Everything is checked and tokenized before any branch changes.
  std::unordered_set<VerifierState> consumed;
  std::vector<Plan> plans;
  plans.reserve(extensions.size());
  size_t forks = 0;
  for (const auto& ext : extensions) {
    const State& parent = get(ext.parent);
    if (ext.steps.empty()) throw EngineError("a PRM extension needs at least one step");
    if (ext.consume_parent && !consumed.insert(ext.parent).second) {
      throw EngineError("two extensions consume PRM state " + std::to_string(ext.parent));
    }
    if (!ext.consume_parent) ++forks;
    plans.push_back(plan(parent, ext.steps));
  }
  if (static_cast<int64_t>(forks) > engine_.free_slots()) {
    throw EngineError("the PRM needs " + std::to_string(forks) + " new branches and its engine has " +
                      std::to_string(engine_.free_slots()) + " free: release states no longer needed");
  }

  // Forks first: a consumed parent's branch must still hold only its prefix when siblings fork it.
  std::vector<BranchId> branches(extensions.size(), -1);
  auto free_forks = [&] {
    for (size_t i = 0; i < extensions.size(); ++i) {
      if (!extensions[i].consume_parent && branches[i] >= 0) engine_.free_branch(branches[i]);
    }
  };
  try {
    for (size_t i = 0; i < extensions.size(); ++i) {
      if (!extensions[i].consume_parent) branches[i] = engine_.fork(get(extensions[i].parent).branch);
    }
  } catch (...) {
    free_forks();
    throw;
  }
  std::vector<EvaluateRequest> requests;
  requests.reserve(extensions.size());
  for (size_t i = 0; i < extensions.size(); ++i) {
    if (extensions[i].consume_parent) branches[i] = get(extensions[i].parent).branch;
    requests.push_back({branches[i], std::move(plans[i].tokens), std::move(plans[i].probes), {good_, bad_}});
  }

  std::vector<EvaluateResult> results;
  try {
    results = engine_.evaluate(requests);
  } catch (...) {
    free_forks();
    for (VerifierState c : consumed) release(c);
    throw;
  }
  ++stats_.calls;

  for (VerifierState c : consumed) states_.erase(c);
  std::vector<Scored> out(extensions.size());
  for (size_t i = 0; i < extensions.size(); ++i) {
    stats_.tokens_evaluated += static_cast<int64_t>(requests[i].tokens.size());
    for (const auto& probs : results[i].probs) {
      const double good = probs[0], bad = probs[1];
      out[i].step_scores.push_back(good + bad > 0.0 ? good / (good + bad) : 0.5);
    }
    stats_.tokens_if_rescored += static_cast<int64_t>(engine_.branch_tokens(branches[i]).size());
    plans[i].state.branch = branches[i];
    out[i].state = next_state_++;
    states_.emplace(out[i].state, std::move(plans[i].state));
  }
  stats_.seconds += seconds_since(t0);
  return out;
}

void ProcessRewardModel::release(VerifierState state) {
  engine_.free_branch(get(state).branch);
  states_.erase(state);
}

}  // namespace ponder
