// Arithmetic on GiNaC expressions that cannot run away: exact numbers and powers are checked
// against LatexLimits before GiNaC computes them (GiNaC evaluates 10^(10^10) the moment it is
// built), and evaluation at a point goes on in floating point where exact numbers would grow past
// the limits. The parser (latex.h) builds expressions with these; the grader evaluates with them.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>

#include <ginac/ginac.h>

namespace ponder {

// Bounds on the work one answer may cause. What exceeds them is refused with the reason.
struct LatexLimits {
  size_t max_length = 2000;        // bytes of one answer
  int max_depth = 100;             // recursion of the parser: about five per bracket or brace
  long max_exponent = 1000;        // |n| of x^n for a base x that is not a number
  size_t max_number_bits = 32768;  // numerator or denominator of any exact number (9864 digits)
  long max_factorial = 3000;       // n in n! and \binom{n}{k}
  size_t max_alternatives = 16;    // values of one expression with \pm (four \pm signs)
  size_t max_items = 64;           // entries of one list, tuple, set or matrix
  // |x| in \sin x, \exp x, ... when evaluating: the value of sin(10^100) at 30 digits is noise.
  double max_function_argument = 1e6;
};

// An answer that cannot be read or computed within the limits; the message says why.
class MathError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The size of an exact number in bits (the larger of numerator and denominator, real and
// imaginary part); 0 for a floating-point number.
size_t bits(const GiNaC::numeric& n);

// Throws MathError when a freshly built expression holds a number or a power beyond the limits.
// Its operands were checked when they were built, so only what GiNaC's automatic simplification
// made at this node ("x^999 x^999" = x^1998, a product of large numbers) is looked at.
void check_size(const GiNaC::ex& e, const LatexLimits& limits);

// base^exponent, refused (MathError) before GiNaC computes a huge number or holds a huge power.
GiNaC::ex checked_power(const GiNaC::ex& base, const GiNaC::ex& exponent, const LatexLimits& limits);

// The value of `e` with each symbol replaced by its value in `point`: exact while numbers stay
// within limits.max_number_bits, else floating point (GiNaC::Digits digits). nullopt when it has
// no value there (a pole, a symbol without a value) or a function's argument is too large to
// evaluate meaningfully; then `why` says so when given.
std::optional<GiNaC::numeric> evaluate(const GiNaC::ex& e, const GiNaC::exmap& point, const LatexLimits& limits,
                                       std::string* why = nullptr);

}  // namespace ponder
