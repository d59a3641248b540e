// Finds stop strings in generated text, including ones split across token boundaries.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ponder {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // `text` is everything generated so far; bytes before `checked` were searched by an earlier
  // call. Returns the offset of the earliest stop string that ends at or after `checked`.
  std::optional<size_t> find(const std::string& text, size_t checked) const;

 private:
  std::vector<std::string> stops_;
  size_t longest_ = 0;
};

}  // namespace ponder
