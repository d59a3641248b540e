// Bounded arithmetic: huge numbers and powers are refused before GiNaC computes them, and
// evaluation stays exact while it is cheap and falls back to floating point after.
#include "tasks/math/bounded.h"

#include <cmath>

#include <gtest/gtest.h>

namespace ponder {
namespace {

using GiNaC::ex;
using GiNaC::numeric;

TEST(Bounded, PowersOfNumbersAreCheckedBeforeTheyAreComputed) {
  const LatexLimits limits;
  EXPECT_EQ(bits(ex_to<numeric>(checked_power(2, 1000, limits))), 1001u);
  EXPECT_THROW(checked_power(2, 100000, limits), MathError);
  EXPECT_THROW(checked_power(numeric(1, 3), -100000, limits), MathError);
  EXPECT_THROW(checked_power(10, numeric(100001, 2), limits), MathError) << "10^50000 * sqrt(10)";
  EXPECT_NO_THROW(checked_power(1, 1000000000, limits));
}

TEST(Bounded, PowersOfExpressionsAreCheckedAfterSimplification) {
  const LatexLimits limits;
  const GiNaC::symbol x("x");
  EXPECT_NO_THROW(checked_power(x + 1, 1000, limits));
  EXPECT_THROW(checked_power(x + 1, 1001, limits), MathError);
  EXPECT_THROW(checked_power(checked_power(x, 100, limits), 100, limits), MathError) << "x^10000";
  EXPECT_THROW(check_size(GiNaC::pow(x, 600) * GiNaC::pow(x, 600), limits), MathError);
  EXPECT_NO_THROW(checked_power(2, 1000000 * GiNaC::sqrt(ex(2)), limits)) << "an irrational power stays symbolic";
}

TEST(Bounded, EvaluationIsExactForRationalPoints) {
  const LatexLimits limits;
  const GiNaC::symbol x("x");
  const GiNaC::exmap point{{x, numeric(3, 7)}};
  const auto v = evaluate(GiNaC::pow(x + 1, 3) - x, point, limits);
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, numeric(1000, 343) - numeric(3, 7));
  const auto s = evaluate(GiNaC::sin(x), point, limits);
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->is_rational()) << "a float";
  EXPECT_NEAR(s->to_double(), 0.415571854, 1e-8);
}

TEST(Bounded, EvaluationSwitchesToFloatingPointForHugeNumbers) {
  const LatexLimits limits;
  const GiNaC::symbol x("x");
  const auto v = evaluate(GiNaC::pow(x, 1000), {{x, numeric(12345678901, 1000)}}, limits);
  ASSERT_TRUE(v);
  EXPECT_EQ(bits(*v), 0u) << "exact, it would take 33500 bits";
  EXPECT_NEAR(GiNaC::log(*v).to_double(), 1000 * std::log(12345678.901), 1e-6);
}

TEST(Bounded, EvaluationFailsWithAReason) {
  const LatexLimits limits;
  const GiNaC::symbol x("x"), y("y");
  std::string why;
  EXPECT_FALSE(evaluate(1 / x, {{x, 0}}, limits, &why));
  EXPECT_EQ(why, "division by zero");
  EXPECT_FALSE(evaluate(x + y, {{x, 1}}, limits, &why));
  EXPECT_EQ(why, "no value for y");
  EXPECT_FALSE(evaluate(GiNaC::sin(GiNaC::pow(ex(10), 7)), {}, limits, &why));
  EXPECT_EQ(why, "sin of a number too large to evaluate");
  EXPECT_TRUE(evaluate(GiNaC::log(GiNaC::pow(ex(10), 1000)), {}, limits)) << "log of a large number is fine";
}

}  // namespace
}  // namespace ponder
