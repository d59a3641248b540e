// Wall-time accounting shared by the engine and the verifiers (their stats report seconds).
#pragma once

#include <chrono>

namespace ponder {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace ponder
