// A fake embedding function for scorer tests: a text's letter counts (a-z), enough for
// similarities to vary between texts and to be worked out by hand.
#pragma once

#include <string>
#include <vector>

namespace ponder::testing {

inline std::vector<std::vector<float>> letter_counts(const std::vector<std::string>& texts) {
  std::vector<std::vector<float>> out;
  for (const std::string& t : texts) {
    std::vector<float> v(26, 0.0f);
    for (char c : t) {
      if (c >= 'a' && c <= 'z') v[static_cast<size_t>(c - 'a')] += 1.0f;
    }
    out.push_back(v);
  }
  return out;
}

}  // namespace ponder::testing
