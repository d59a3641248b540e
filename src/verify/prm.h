// Process reward model (PRM): a step verifier that reads each step's score off a reward model's
// next-token probabilities, incrementally (each state is a branch of the PRM's own engine).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/engine.h"
#include "verify/verifier.h"

namespace ponder {

// How a PRM wants a problem and its steps laid out, and which tokens mean good and bad: data, so
// that a new PRM needs a preset or a JSON file, not code. Steps are stripped of leading and
// trailing whitespace before they go in (search steps end with their "\n\n" delimiter).
struct PrmFormat {
  enum class Layout {
    // The conversation through the PRM's own chat template: the first user turn is `first_turn`,
    // each later step is a user turn of its own, and after each step the assistant answers
    // `good`. A step is read at the last token of the generation prompt before that answer.
    kChat,
    // Raw text, no template: problem + problem_joiner + step1 + step_tag + step_separator +
    // step2 + step_tag ... A step is read at the last token of its step tag.
    kStepTag,
  };
  Layout layout = Layout::kChat;

  // A step's score is P(good) / (P(good) + P(bad)) for the token after its read position. Each
  // must be one token of the PRM's vocabulary (tokenized alone, no BOS, special tokens parsed).
  std::string good = "+";
  std::string bad = "-";

  // kChat: the first user turn. "{problem}" and "{step}" (the first step) each occur once and
  // are replaced in one pass, so braces inside the problem or step are left alone.
  std::string first_turn = "{problem} {step}";

  // kStepTag.
  std::string problem_joiner = " ";   // between the problem and the first step
  std::string step_tag = " ки";       // after every step; the score is read at its last token
  std::string step_separator = "\n";  // between a step tag and the next step

  // RLHFlow/Llama3.1-8B-PRM-Deepseek-Data (and its Mistral-Data sibling): chat turns, first turn
  // "{problem} {step}", good "+", bad "-". The defaults above.
  static PrmFormat rlhflow();
  // peiyi9979/math-shepherd-mistral-7b-prm: step tag " ки", steps joined by "\n", problem and
  // first step by " ", good "+", bad "-".
  static PrmFormat math_shepherd();

  // A JSON object with any of the fields above as strings ("layout": "chat" or "step_tag");
  // fields left out keep the defaults above (so {"layout": "step_tag"} is Math-Shepherd's).
  // Throws EngineError with a one-line reason for bad JSON, an unknown key, a value that is not a
  // string, or a format that fails validate().
  static PrmFormat from_json(std::string_view text);
  // "rlhflow", "math-shepherd", or the path of a JSON file as from_json reads it.
  static PrmFormat named(const std::string& name_or_path);

  // Throws EngineError when the format cannot work whatever the model: an empty or equal
  // good/bad, a first_turn without exactly one "{problem}" and one "{step}", an empty step tag.
  void validate() const;
};

// Scores steps with a PRM on its own engine (not the generator's).
//
// A state is a branch of the PRM engine holding the PRM's tokens of the problem and the steps so
// far (with the assistant's `good` answers in the chat layout). A root holds the part of the text
// that comes before the first step (in the chat layout, the first user turn up to "{step}", less
// trailing spaces). extend() forks each parent (or, with consume_parent, takes the parent's own
// branch once its other children in the call have forked it), appends only the new steps' tokens
// and sends all extensions to the engine in one evaluate() call, so no prefix is computed twice.
//
// The tokens are those of tokenizing the whole text at once (BOS added unless the chat template
// wrote it; special tokens parsed), as a scorer that re-reads the whole text computes them: new
// text is tokenized after the last piece of the text already held (the previous step's tag or
// answer, or the root's text), and each boundary is checked to keep the tokens before it. Text
// whose tokens would run across a boundary, or a chat template whose render of a conversation is
// not the start of the render of its continuation, is an EngineError rather than a silently
// different score. (Tokenizing new text alone would differ at the boundary: SentencePiece
// vocabularies, for one, put a space before every separately tokenized text.)
//
// Each live state holds one engine branch (at most max_branches <= 256 at once): callers release
// states they no longer need, and consume_parent lets a parent's last child reuse its branch.
// The engine is used, not owned, and must outlive the PRM. Not thread-safe (nor is the engine).
class ProcessRewardModel final : public StepVerifier {
 public:
  // Throws EngineError when the format does not fit the model: it fails validate(), good or bad
  // is not one token (or both are the same token), or the chat layout meets a model without a
  // chat template.
  ProcessRewardModel(Engine& engine, PrmFormat format);
  ProcessRewardModel(const ProcessRewardModel&) = delete;
  ProcessRewardModel& operator=(const ProcessRewardModel&) = delete;
  ~ProcessRewardModel() override;  // frees the branches of the states still held

  VerifierState root(const std::string& problem) override;

  // Scores in [0, 1] (0.5 when both probabilities underflow to 0). Throws EngineError for an
  // unknown or consumed parent, an extension without steps, two extensions consuming one parent,
  // more new branches than the engine has free, or text that cannot be tokenized exactly (see
  // above); then no state changes. If the engine itself fails (e.g. its KV cache is full), the
  // new branches are freed and the consumed parents are released too (their branches may hold
  // part of the failed work); other states stay valid.
  std::vector<Scored> extend(const std::vector<Extension>& extensions) override;

  // Throws EngineError for an unknown (released or consumed) state.
  void release(VerifierState state) override;

  // tokens_evaluated: tokens handed to the engine (roots' and extensions' new tokens);
  // tokens_if_rescored: for each extension, every token of its text through its last step;
  // calls: evaluate() calls; seconds: wall time in root() and extend().
  VerifierStats stats() const override { return stats_; }

  // The PRM tokens a state holds, from the start of the text (for tests and debugging).
  const std::vector<Token>& tokens(VerifierState state) const;
  const PrmFormat& format() const { return format_; }

 private:
  struct State {
    BranchId branch = -1;
    std::string problem;
    std::vector<std::string> steps;  // stripped
    std::string text;                // what the branch holds, as text
    // Where the last piece of `text` starts: new text is tokenized after text[context_at..].
    // 0 for a root, whose whole text is that context (and the start, where BOS goes).
    size_t context_at = 0;
  };
  // One piece of text to append; `probe`: a step is read at its last token.
  struct Piece {
    std::string text;
    bool probe;
  };
  struct Plan {
    State state;                  // the child, branch not yet made
    std::vector<Token> tokens;    // appended to the parent's
    std::vector<int32_t> probes;  // into tokens, one per step
  };

  const State& get(VerifierState state) const;
  std::string root_text(const std::string& problem) const;
  std::string render(const State& state, bool add_generation_prompt) const;
  std::vector<Token> tokenize_text(const std::string& text, bool at_start) const;
  Plan plan(const State& parent, const std::vector<std::string>& steps) const;

  Engine& engine_;
  PrmFormat format_;
  Token good_;
  Token bad_;
  std::string bos_text_;  // what the tokenizer puts before a text (e.g. "<|begin_of_text|>")
  std::unordered_map<VerifierState, State> states_;
  VerifierState next_state_ = 0;
  VerifierStats stats_;
};

}  // namespace ponder
