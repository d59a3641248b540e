#include "tasks/toy/prm_data.h"

#include <stdexcept>

#include "llama.h"

#include "tasks/toy/train.h"

namespace ponder::toy {

std::string prm_document(const Problem& problem, const SolutionCheck& check) {
  if (check.steps.empty()) return {};
  std::vector<std::string> contents;
  for (size_t i = 0; i < check.steps.size(); ++i) {
    // PrmFormat::rlhflow()'s first turn, "{problem} {step}".
    contents.push_back(i == 0 ? problem.text() + " " + check.steps[0] : check.steps[i]);
    contents.push_back(check.labels[i] ? "+" : "-");
  }
  std::vector<llama_chat_message> chat;
  size_t total = 0;
  for (size_t i = 0; i < contents.size(); ++i) {
    chat.push_back({i % 2 == 0 ? "user" : "assistant", contents[i].c_str()});
    total += contents[i].size() + 32;
  }
  std::string out(total + 256, '\0');
  int32_t n = llama_chat_apply_template(kToyChatTemplate, chat.data(), chat.size(), /*add_ass=*/false, out.data(),
                                        static_cast<int32_t>(out.size()));
  if (n > static_cast<int32_t>(out.size())) {
    out.resize(static_cast<size_t>(n));
    n = llama_chat_apply_template(kToyChatTemplate, chat.data(), chat.size(), false, out.data(), n);
  }
  if (n < 0) throw std::runtime_error("llama.cpp cannot render the toy chat template");
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace ponder::toy
