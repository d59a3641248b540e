// Standard normal samples, the same for a given seed with any standard library: mt19937_64's
// output is fixed by the standard, and the Box-Muller transform below needs only log/sqrt/sin/cos
// (a last-bit difference between libms would almost never survive the rounding to float/f16).
// Random model weights are drawn from it (ponder-make-test-model, the toy trainer), so that a
// seed names the same model everywhere.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>

namespace ponder {

class NormalStream {
 public:
  explicit NormalStream(uint64_t seed) : gen_(seed) {}

  double next() {
    if (have_spare_) {
      have_spare_ = false;
      return spare_;
    }
    // 53-bit uniforms; u1 in (0, 1] so the log is finite.
    const double u1 = static_cast<double>((gen_() >> 11) + 1) * 0x1.0p-53;
    const double u2 = static_cast<double>(gen_() >> 11) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = 2.0 * 3.14159265358979323846 * u2;
    spare_ = r * std::sin(theta);
    have_spare_ = true;
    return r * std::cos(theta);
  }

 private:
  std::mt19937_64 gen_;
  double spare_ = 0.0;
  bool have_spare_ = false;
};

}  // namespace ponder
