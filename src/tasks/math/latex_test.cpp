// The LaTeX answer parser: the value each notation becomes, the readings of ambiguous notation,
// and the limits that refuse what would take unbounded work.
#include "tasks/math/latex.h"

#include <gtest/gtest.h>

namespace ponder {
namespace {

using GiNaC::ex;
using GiNaC::numeric;
using Kind = AnswerValue::Kind;

class LatexParseTest : public ::testing::Test {
 protected:
  // The first reading; fails the test when the answer cannot be read.
  AnswerValue read(std::string_view answer) {
    const LatexParse p = parse_answer(answer, symbols_, limits_);
    EXPECT_FALSE(p.readings.empty()) << answer << ": " << p.error;
    return p.readings.empty() ? AnswerValue{} : p.readings[0].value;
  }
  ex expression(std::string_view answer) {
    const AnswerValue v = read(answer);
    EXPECT_EQ(v.kind, Kind::kExpression) << answer;
    return v.expression;
  }
  std::string error(std::string_view answer) {
    const LatexParse p = parse_answer(answer, symbols_, limits_);
    EXPECT_TRUE(p.readings.empty()) << answer;
    return p.error;
  }
  ex x() { return symbols_.get("x"); }
  ex y() { return symbols_.get("y"); }

  SymbolTable symbols_;
  LatexLimits limits_;
};

::testing::AssertionResult Same(const ex& a, const ex& b) {
  if ((a - b).is_zero()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << a << " is not " << b;
}

TEST_F(LatexParseTest, NumbersAreExact) {
  EXPECT_TRUE(Same(expression("\\frac{3}{4}"), numeric(3, 4)));
  EXPECT_TRUE(Same(expression("\\frac34"), numeric(3, 4)));
  EXPECT_TRUE(Same(expression("\\frac 9{19}"), numeric(9, 19)));
  EXPECT_TRUE(Same(expression("0.1"), numeric(1, 10))) << "not the binary float 0.1";
  EXPECT_TRUE(Same(expression(".0000672"), numeric(672, 10000000)));
  EXPECT_TRUE(Same(expression("1.5\\times10^{3}"), 1500));
  EXPECT_TRUE(Same(expression("2.5E-4"), numeric(1, 4000)));
  EXPECT_TRUE(Same(expression("0.1\\overline{6}"), numeric(1, 6)));
  EXPECT_TRUE(Same(expression("12345678901234567890123"), numeric("12345678901234567890123")));
  EXPECT_TRUE(Same(expression("11\\frac{2}{3}"), numeric(35, 3)));
  EXPECT_TRUE(Same(expression("-1\\frac{1}{2}"), numeric(-3, 2)));
}

TEST_F(LatexParseTest, DecimalsAreMarkedApproximate) {
  EXPECT_TRUE(read("0.75").approximate);
  EXPECT_TRUE(read("2\\sqrt2 + 0.5").approximate);
  EXPECT_FALSE(read("\\frac{3}{4}").approximate);
  EXPECT_FALSE(read("0.\\overline{3}").approximate) << "a repeating decimal is exact";
  EXPECT_FALSE(read("1e3").approximate);
}

TEST_F(LatexParseTest, Operators) {
  EXPECT_TRUE(Same(expression("2x"), 2 * x()));
  EXPECT_TRUE(Same(expression("2\\pi"), 2 * GiNaC::Pi));
  EXPECT_TRUE(Same(expression("3\\sqrt2"), 3 * GiNaC::sqrt(ex(2))));
  EXPECT_TRUE(Same(expression("(x+1)(x-1)"), (x() + 1) * (x() - 1)));
  EXPECT_TRUE(Same(expression("xy"), x() * y()));
  EXPECT_TRUE(Same(expression("x \\cdot y \\div 2"), x() * y() / 2));
  EXPECT_TRUE(Same(expression("1/2x"), x() / 2)) << "left to right";
  EXPECT_TRUE(Same(expression("-x^2"), -GiNaC::pow(x(), 2)));
  EXPECT_TRUE(Same(expression("2 \\cdot -3"), -6));
  EXPECT_TRUE(Same(expression("x^{10}"), GiNaC::pow(x(), 10)));
  EXPECT_TRUE(Same(expression("x^-1"), 1 / x()));
  EXPECT_TRUE(Same(expression("2^{2^3}"), 256));
  EXPECT_TRUE(Same(expression("\\sqrt[3]{x}"), GiNaC::pow(x(), numeric(1, 3))));
  EXPECT_TRUE(Same(expression("|x-1|"), GiNaC::abs(x() - 1)));
  EXPECT_TRUE(Same(expression("4!"), 24));
  EXPECT_TRUE(Same(expression("\\binom{6}{3}"), 20));
  EXPECT_TRUE(Same(expression("3:4"), numeric(3, 4))) << "a ratio";
  EXPECT_TRUE(Same(expression("i"), GiNaC::I));
  EXPECT_TRUE(Same(expression("e"), GiNaC::exp(ex(1))));
  EXPECT_TRUE(Same(expression("x_1 + a_{n}"), symbols_.get("x_1") + symbols_.get("a_{n}")));
  EXPECT_TRUE(Same(expression("\\theta"), symbols_.get("theta")));
}

TEST_F(LatexParseTest, Functions) {
  EXPECT_TRUE(Same(expression("\\sin 2x"), GiNaC::sin(2 * x())));
  EXPECT_TRUE(Same(expression("\\sin x \\cos x"), GiNaC::sin(x()) * GiNaC::cos(x())));
  EXPECT_TRUE(Same(expression("\\sin^2 x"), GiNaC::pow(GiNaC::sin(x()), 2)));
  EXPECT_TRUE(Same(expression("\\sin(x)^2"), GiNaC::pow(GiNaC::sin(x()), 2)));
  EXPECT_TRUE(Same(expression("\\sin^{-1} x"), GiNaC::asin(x())));
  EXPECT_TRUE(Same(expression("\\sin x + 1"), GiNaC::sin(x()) + 1));
  EXPECT_TRUE(Same(expression("\\log_2 x"), GiNaC::log(x()) / GiNaC::log(ex(2))));
  EXPECT_TRUE(Same(expression("\\ln x"), GiNaC::log(x())));
  EXPECT_TRUE(Same(expression("sin x"), GiNaC::sin(x()))) << "without the backslash";
  EXPECT_TRUE(Same(expression("\\sin 30^\\circ"), numeric(1, 2))) << "degrees in a trigonometric function";
  EXPECT_TRUE(Same(expression("30^\\circ"), 30)) << "and dropped elsewhere";
}

TEST_F(LatexParseTest, Structures) {
  AnswerValue v = read("(1, 2]");
  EXPECT_EQ(v.kind, Kind::kTuple);
  EXPECT_EQ(v.open, '(');
  EXPECT_EQ(v.close, ']');
  ASSERT_EQ(v.items.size(), 2u);

  v = read("\\{1, 2\\}");
  EXPECT_EQ(v.kind, Kind::kSet);
  EXPECT_EQ(v.items.size(), 2u);
  EXPECT_EQ(read("1, 2, 3").kind, Kind::kSet);
  EXPECT_EQ(read("(5)").kind, Kind::kExpression) << "a parenthesis, not a tuple";

  v = read("1 \\pm 2");
  ASSERT_EQ(v.kind, Kind::kSet);
  ASSERT_EQ(v.items.size(), 2u);
  EXPECT_TRUE(Same(v.items[0].expression, 3));
  EXPECT_TRUE(Same(v.items[1].expression, -1));

  v = read("[0,1) \\cup (2, \\infty)");
  EXPECT_EQ(v.kind, Kind::kUnion);
  ASSERT_EQ(v.items.size(), 2u);
  EXPECT_TRUE(Same(v.items[1].items[1].expression, symbols_.infinity()));

  v = read("\\begin{pmatrix} 1 & 2 & 3 \\\\ 4 & 5 & 6 \\end{pmatrix}");
  EXPECT_EQ(v.kind, Kind::kMatrix);
  EXPECT_EQ(v.rows, 2u);
  EXPECT_EQ(v.cols, 3u);
  EXPECT_TRUE(Same(v.items[5].expression, 6));
}

TEST_F(LatexParseTest, Relations) {
  AnswerValue v = read("y = 2x + 3");
  ASSERT_EQ(v.kind, Kind::kEquation);
  EXPECT_TRUE(Same(v.items[1].expression, 2 * x() + 3));

  v = read("x > 3");  // an interval
  ASSERT_EQ(v.kind, Kind::kTuple);
  EXPECT_EQ(v.open, '(');
  EXPECT_TRUE(Same(v.items[0].expression, 3));
  EXPECT_TRUE(Same(v.items[1].expression, symbols_.infinity()));

  v = read("1 < x \\le 2");
  ASSERT_EQ(v.kind, Kind::kTuple);
  EXPECT_EQ(v.open, '(');
  EXPECT_EQ(v.close, ']');

  EXPECT_EQ(read("x \\in [1, 2]").kind, Kind::kTuple);

  v = read("x + y \\ge 1");
  ASSERT_EQ(v.kind, Kind::kInequality);
  EXPECT_EQ(v.inequalities, std::vector<Inequality>{Inequality::kGreaterEqual});

  v = read("f(2) < f(1) \\le f(4)");
  ASSERT_EQ(v.kind, Kind::kInequality);
  EXPECT_EQ(v.items.size(), 3u);
  EXPECT_EQ(v.inequalities, (std::vector<Inequality>{Inequality::kLess, Inequality::kLessEqual}));
}

TEST_F(LatexParseTest, NumeralsAndText) {
  AnswerValue v = read("1011_2");
  ASSERT_EQ(v.kind, Kind::kNumeral);
  EXPECT_EQ(v.text, "1011");
  EXPECT_EQ(v.base, 2);
  EXPECT_TRUE(Same(v.expression, 11));
  EXPECT_TRUE(Same(read("152A_{11}").expression, 1 * 1331 + 5 * 121 + 2 * 11 + 10));

  v = read("\\text{Monday}");
  ASSERT_EQ(v.kind, Kind::kText);
  EXPECT_EQ(v.text, "monday");
  EXPECT_EQ(read("east").kind, Kind::kText);
  EXPECT_EQ(read("\\text{4:30 p.m.}").kind, Kind::kText) << "text that is not mathematics";
  EXPECT_EQ(read("\\text{(B)}").kind, Kind::kExpression) << "the letter B";
  EXPECT_EQ(read("\\text{13}").kind, Kind::kExpression);
}

TEST_F(LatexParseTest, AmbiguousNotationHasTwoReadings) {
  LatexParse p = parse_answer("1,000", symbols_, limits_);
  ASSERT_EQ(p.readings.size(), 2u);
  EXPECT_TRUE(Same(p.readings[0].value.expression, 1000));
  EXPECT_EQ(p.readings[1].value.kind, Kind::kSet);
  EXPECT_EQ(p.readings[1].note, "commas as a list");

  p = parse_answer("20\\%", symbols_, limits_);
  ASSERT_EQ(p.readings.size(), 2u);
  EXPECT_TRUE(Same(p.readings[0].value.expression, 20));
  EXPECT_TRUE(Same(p.readings[1].value.expression, numeric(1, 5)));

  EXPECT_EQ(parse_answer("1,000.5", symbols_, limits_).readings.size(), 1u);
  EXPECT_EQ(parse_answer("(1,000)", symbols_, limits_).readings.size(), 1u);
}

TEST_F(LatexParseTest, UnreadableAnswersSayWhere) {
  EXPECT_EQ(error(""), "empty answer");
  EXPECT_NE(error("\\frac{1}{").find("end of answer"), std::string::npos);
  EXPECT_NE(error("(1, 2").find("expected ')' or ']'"), std::string::npos);
  EXPECT_NE(error("\\unknown{3}").find("unsupported command"), std::string::npos);
  EXPECT_NE(error("1 + + ").find("end of answer"), std::string::npos);
  EXPECT_NE(error("(1 \\pm 2, 3)").find("\\pm"), std::string::npos);
  EXPECT_NE(error("\\begin{vmatrix} 1 \\end{vmatrix}").find("unsupported environment"), std::string::npos);
  EXPECT_NE(error("\\frac{1}{0}").find("division by zero"), std::string::npos);
  EXPECT_NE(error("x = 1 < 2").find("equations mixed with inequalities"), std::string::npos);
}

TEST_F(LatexParseTest, LimitsRefuseUnboundedWork) {
  EXPECT_NE(error(std::string(limits_.max_length + 1, '1')).find("longer than"), std::string::npos);
  EXPECT_NE(error("10^{10^{10}}").find("number too large"), std::string::npos);
  EXPECT_NE(error("x^{1001}").find("exponent too large"), std::string::npos);
  EXPECT_TRUE(Same(expression("x^{1000}"), GiNaC::pow(x(), 1000)));
  EXPECT_NE(error("x^{600} x^{600}").find("exponent too large"), std::string::npos) << "x^1200 once multiplied";
  EXPECT_NE(error("\\sqrt{2}^{100000}").find("exponent too large"), std::string::npos) << "2^50000 once simplified";
  EXPECT_NE(error("3001!").find("factorial too large"), std::string::npos);
  EXPECT_EQ(read("3000!").kind, Kind::kExpression);
  EXPECT_NE(error(std::string(30, '(') + "1" + std::string(30, ')')).find("nested too deeply"), std::string::npos);
  EXPECT_EQ(read(std::string(15, '(') + "1" + std::string(15, ')')).kind, Kind::kExpression);
  EXPECT_NE(error("\\pm1\\pm1\\pm1\\pm1\\pm1").find("too many \\pm values"), std::string::npos);
  EXPECT_EQ(read("\\pm1\\pm1\\pm1\\pm1").items.size(), 16u);
}

}  // namespace
}  // namespace ponder
