// Bounded arithmetic (bounded.h).
#include "tasks/math/bounded.h"

#include <algorithm>
#include <cmath>

namespace ponder {

using GiNaC::ex;
using GiNaC::ex_to;
using GiNaC::is_a;
using GiNaC::numeric;

namespace {

// log2 |n| for an exact number, from above: the size in bits of base^k is about k times this.
double magnitude_bits(const numeric& n) {
  double most = 0;
  for (const numeric& part : {n.real(), n.imag()}) {
    for (const numeric& integer : {part.numer(), part.denom()}) {
      const int length = integer.int_length();
      most = std::max(most, length <= 52 ? std::log2(std::max(1.0, std::abs(integer.to_double()))) : length);
    }
  }
  return most;
}

// The exponent of a power that GiNaC keeps unevaluated, when it is a number.
std::optional<numeric> numeric_exponent(const ex& e) {
  if (is_a<GiNaC::power>(e) && is_a<numeric>(e.op(1))) return ex_to<numeric>(e.op(1));
  return std::nullopt;
}

}  // namespace

size_t bits(const numeric& n) {
  if (!n.is_crational()) return 0;  // a float: its size is its precision
  size_t most = 0;
  for (const numeric& part : {n.real(), n.imag()}) {
    most = std::max<size_t>(most, std::max(part.numer().int_length(), part.denom().int_length()));
  }
  return most;
}

void check_size(const ex& e, const LatexLimits& limits) {
  auto check_node = [&](const ex& node) {
    if (is_a<numeric>(node) && bits(ex_to<numeric>(node)) > limits.max_number_bits) {
      throw MathError("number too large (over " + std::to_string(limits.max_number_bits) + " bits)");
    }
    if (const auto n = numeric_exponent(node);
        n && !is_a<numeric>(node.op(0)) && n->is_rational() && abs(*n) > numeric(limits.max_exponent)) {
      throw MathError("exponent too large (over " + std::to_string(limits.max_exponent) + ")");
    }
  };
  check_node(e);
  if (is_a<GiNaC::add>(e) || is_a<GiNaC::mul>(e)) {
    for (size_t i = 0; i < e.nops(); ++i) check_node(e.op(i));
  }
}

ex checked_power(const ex& base, const ex& exponent, const LatexLimits& limits) {
  if (is_a<numeric>(exponent) && ex_to<numeric>(exponent).is_rational()) {
    const numeric& n = ex_to<numeric>(exponent);
    if (is_a<numeric>(base) && ex_to<numeric>(base).is_crational()) {
      const double estimate = std::abs(n.to_double()) * magnitude_bits(ex_to<numeric>(base));
      if (estimate > static_cast<double>(limits.max_number_bits)) {
        throw MathError("number too large (over " + std::to_string(limits.max_number_bits) + " bits)");
      }
    } else if (abs(n) > numeric(limits.max_exponent)) {
      throw MathError("exponent too large (over " + std::to_string(limits.max_exponent) + ")");
    }
  }
  ex result = GiNaC::pow(base, exponent);
  check_size(result, limits);
  return result;
}

namespace {

// Exact while numbers stay small, floating point after; function arguments bounded.
class Evaluator {
 public:
  Evaluator(const GiNaC::exmap& point, const LatexLimits& limits) : point_(point), limits_(limits) {}

  numeric value(const ex& e) {
    if (is_a<numeric>(e)) return ex_to<numeric>(e);
    if (is_a<GiNaC::symbol>(e)) {
      const auto it = point_.find(e);
      if (it == point_.end() || !is_a<numeric>(it->second))
        throw MathError("no value for " + ex_to<GiNaC::symbol>(e).get_name());
      return ex_to<numeric>(it->second);
    }
    if (is_a<GiNaC::constant>(e)) return ex_to<numeric>(e.evalf());
    if (is_a<GiNaC::add>(e)) {
      numeric sum = 0;
      for (size_t i = 0; i < e.nops(); ++i) sum = bounded(sum + value(e.op(i)));
      return sum;
    }
    if (is_a<GiNaC::mul>(e)) {
      numeric product = 1;
      for (size_t i = 0; i < e.nops(); ++i) product = bounded(product * value(e.op(i)));
      return product;
    }
    if (is_a<GiNaC::power>(e)) return power(value(e.op(0)), value(e.op(1)));
    if (is_a<GiNaC::function>(e)) return function(ex_to<GiNaC::function>(e));
    throw MathError("cannot evaluate");
  }

 private:
  static numeric to_float(const numeric& n) { return ex_to<numeric>(ex(n).evalf()); }

  // Exact numbers past the size limit continue as floating point.
  numeric bounded(const numeric& n) const { return bits(n) > limits_.max_number_bits ? to_float(n) : n; }

  numeric power(const numeric& base, const numeric& exponent) const {
    if (base.is_zero()) {
      if (exponent.is_real() && exponent.is_negative()) throw MathError("division by zero");
      if (exponent.is_zero()) return 1;
      return 0;
    }
    if (exponent.is_integer() && base.is_crational() &&
        std::abs(exponent.to_double()) * magnitude_bits(base) <= static_cast<double>(limits_.max_number_bits)) {
      return base.power(exponent);
    }
    return to_float(base).power(to_float(exponent));
  }

  numeric function(const GiNaC::function& f) {
    const std::string name = f.get_name();
    GiNaC::exvector arguments;
    for (size_t i = 0; i < f.nops(); ++i) {
      const numeric a = value(f.op(i));
      if (name == "factorial" || name == "binomial") {
        if (!a.is_integer() || abs(a) > numeric(limits_.max_factorial))
          throw MathError(name + " of a non-integer or large number");
      } else if (name != "log" && name != "abs" && abs(a) > numeric(limits_.max_function_argument)) {
        throw MathError(name + " of a number too large to evaluate");
      }
      arguments.push_back(a);
    }
    const ex result = GiNaC::function(f.get_serial(), arguments).evalf();
    if (!is_a<numeric>(result)) throw MathError("cannot evaluate " + name);
    return ex_to<numeric>(result);
  }

  const GiNaC::exmap& point_;
  const LatexLimits& limits_;
};

}  // namespace

std::optional<numeric> evaluate(const ex& e, const GiNaC::exmap& point, const LatexLimits& limits, std::string* why) {
  try {
    return Evaluator(point, limits).value(e);
  } catch (const std::exception& x) {  // GiNaC and CLN signal poles and overflow by exceptions
    if (why) *why = x.what();
    return std::nullopt;
  }
}

}  // namespace ponder
