// An Engine that passes every call through to another: tests derive from it and override the
// calls they want to change or count.
#pragma once

#include "engine/engine.h"

namespace ponder::testing {

class ForwardingEngine : public Engine {
 public:
  explicit ForwardingEngine(Engine& inner) : inner_(inner) {}

  std::vector<Token> tokenize(std::string_view text, bool add_special, bool parse_special) const override {
    return inner_.tokenize(text, add_special, parse_special);
  }
  std::string token_to_piece(Token token) const override { return inner_.token_to_piece(token); }
  std::string apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                  bool continue_final) const override {
    return inner_.apply_chat_template(messages, add_generation_prompt, continue_final);
  }
  bool has_chat_template() const override { return inner_.has_chat_template(); }
  Token eos_token() const override { return inner_.eos_token(); }
  bool is_end_of_generation(Token token) const override { return inner_.is_end_of_generation(token); }
  int32_t vocab_size() const override { return inner_.vocab_size(); }
  BranchId new_branch(const std::vector<Token>& tokens) override { return inner_.new_branch(tokens); }
  BranchId fork(BranchId parent) override { return inner_.fork(parent); }
  void append(BranchId branch, const std::vector<Token>& tokens) override { inner_.append(branch, tokens); }
  void free_branch(BranchId branch) override { inner_.free_branch(branch); }
  const std::vector<Token>& branch_tokens(BranchId branch) const override { return inner_.branch_tokens(branch); }
  int32_t free_slots() const override { return inner_.free_slots(); }
  using Engine::generate;
  std::vector<Completion> generate(const std::vector<GenerateRequest>& requests, const OnFinish& on_finish) override {
    return inner_.generate(requests, on_finish);
  }
  std::vector<EvaluateResult> evaluate(const std::vector<EvaluateRequest>& requests) override {
    return inner_.evaluate(requests);
  }
  EngineStats stats() const override { return inner_.stats(); }

 protected:
  Engine& inner_;
};

}  // namespace ponder::testing
