#include "engine/stop.h"

#include <algorithm>

namespace ponder {

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
  for (const auto& s : stops_) longest_ = std::max(longest_, s.size());
}

std::optional<size_t> StopMatcher::find(const std::string& text, size_t checked) const {
  if (stops_.empty()) return std::nullopt;
  // A match not seen before must end in the new bytes, so it starts at most longest_-1 earlier.
  const size_t from = checked >= longest_ ? checked - longest_ + 1 : 0;
  std::optional<size_t> best;
  for (const auto& s : stops_) {
    const size_t at = text.find(s, from);
    if (at != std::string::npos && (!best || at < *best)) best = at;
  }
  return best;
}

}  // namespace ponder
