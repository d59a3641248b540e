// The math grader on answers of every kind it compares, each case decided by the mathematics:
// equivalent pairs and, beside them, pairs that look alike but are not. Also pathological input,
// which must come back "not equivalent" with a reason, fast.
#include "tasks/math/grade.h"

#include <chrono>
#include <random>
#include <string>

#include <gtest/gtest.h>

namespace ponder {
namespace {

// Success or failure with the grader's reason, for EXPECT_TRUE and EXPECT_FALSE alike.
::testing::AssertionResult Equivalent(std::string_view gold, std::string_view pred, const GradeOptions& options = {}) {
  const Grade g = grade_answer(gold, pred, options);
  if (g.equivalent) return ::testing::AssertionSuccess() << g.reason;
  return ::testing::AssertionFailure() << "'" << gold << "' vs '" << pred << "' not equivalent: " << g.reason;
}

// The reason of a "not equivalent" verdict, for checking what it says.
std::string refusal(std::string_view gold, std::string_view pred) {
  GradeOptions parse_both;
  parse_both.compare_text_first = false;
  const Grade g = grade_answer(gold, pred, parse_both);
  EXPECT_FALSE(g.equivalent) << gold << " vs " << pred;
  return g.reason;
}

TEST(GradeNormalization, NotationThatIsNotMathematics) {
  EXPECT_TRUE(Equivalent("\\frac{1}{2}", "\\dfrac{1}{2}"));
  EXPECT_TRUE(Equivalent("\\frac{3}{4}", "\\tfrac34"));
  EXPECT_TRUE(Equivalent("(1,2)", "\\left( 1, 2 \\right)"));
  EXPECT_TRUE(Equivalent("5", "$5$"));
  EXPECT_TRUE(Equivalent("5", "5."));
  EXPECT_TRUE(Equivalent("\\frac12", "\\displaystyle \\frac{1}{2}"));
  EXPECT_TRUE(Equivalent("10000", "10\\!000"));
  EXPECT_TRUE(Equivalent("10000", "10\\,000"));
  EXPECT_TRUE(Equivalent("2x", "2\\,x"));
  EXPECT_TRUE(Equivalent("18.90", "\\$18.90"));
  EXPECT_TRUE(Equivalent("-3", "\u22123")) << "Unicode minus";
  EXPECT_TRUE(Equivalent("2\\pi", "2\u03c0"));
  EXPECT_FALSE(Equivalent("\\frac{1}{2}", "\\frac{1}{3}"));
  EXPECT_FALSE(Equivalent("5", "$6$."));
  EXPECT_FALSE(Equivalent("10000", "10\\,001"));
}

TEST(GradeNormalization, UnitsAreDropped) {
  EXPECT_TRUE(Equivalent("5", "5 \\text{ cm}"));
  EXPECT_TRUE(Equivalent("15", "15\\mbox{ cm}^2"));
  EXPECT_TRUE(Equivalent("864 \\mbox{ inches}^2", "864"));
  EXPECT_TRUE(Equivalent("12", "12 square inches"));
  EXPECT_TRUE(Equivalent("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}"));
  EXPECT_TRUE(Equivalent("99\\pi \\text{ square inches}", "99\\pi"));
  EXPECT_TRUE(Equivalent("5.4 \\text{ cents}", "5.40"));
  EXPECT_FALSE(Equivalent("5 \\text{ cm}", "6"));
  EXPECT_FALSE(Equivalent("15\\mbox{ cm}^2", "225"));
}

TEST(GradeNormalization, Degrees) {
  // A bare angle in degrees is its number of degrees: "90^\circ" is 90, not pi/2.
  EXPECT_TRUE(Equivalent("90^\\circ", "90"));
  EXPECT_TRUE(Equivalent("90", "90^{\\circ}"));
  EXPECT_TRUE(Equivalent("45\u00b0", "45"));
  EXPECT_FALSE(Equivalent("90^\\circ", "\\frac{\\pi}{2}"));
  EXPECT_FALSE(Equivalent("90^\\circ", "89^\\circ"));
  // Inside a trigonometric function degrees are an angle.
  EXPECT_TRUE(Equivalent("\\sin 30^\\circ", "\\frac12"));
  EXPECT_TRUE(Equivalent("\\cos 58^\\circ", "\\sin 32^\\circ"));
  EXPECT_FALSE(Equivalent("\\cos 58^\\circ", "\\cos 32^\\circ"));
}

TEST(GradeNormalization, Percent) {
  // "20\%" is read both ways: the number of percent asked for, and the fraction it is.
  EXPECT_TRUE(Equivalent("20\\%", "20"));
  EXPECT_TRUE(Equivalent("20\\%", "0.2"));
  EXPECT_TRUE(Equivalent("\\frac15", "20\\%"));
  EXPECT_FALSE(Equivalent("20\\%", "0.02"));
  EXPECT_FALSE(Equivalent("20\\%", "21\\%"));
}

TEST(GradeNormalization, ThousandsSeparatorsAndLists) {
  EXPECT_TRUE(Equivalent("1000", "1,000"));
  EXPECT_TRUE(Equivalent("1,000,000", "10^6"));
  EXPECT_TRUE(Equivalent("58,500", "58500"));
  EXPECT_TRUE(Equivalent("10,\\!080", "10080"));
  EXPECT_TRUE(Equivalent("11,\\! 111,\\! 111,\\! 100", "11111111100"));
  EXPECT_TRUE(Equivalent("\\$32,\\!348", "32348"));
  EXPECT_TRUE(Equivalent("1,234.5", "1234.5"));
  // "(1,000)" is a pair; "1, 2" a list; "12,34" no number.
  EXPECT_FALSE(Equivalent("1000", "(1,000)"));
  EXPECT_FALSE(Equivalent("12", "1, 2"));
  EXPECT_FALSE(Equivalent("1234", "12,34"));
  // "70,110" is the number 70110, or the list of 70 and 110 (MATH writes both so): either counts.
  EXPECT_TRUE(Equivalent("70,110", "70110"));
  EXPECT_TRUE(Equivalent("70,110", "110, 70"));
  EXPECT_FALSE(Equivalent("70,110", "70, 111"));
}

TEST(GradeNumbers, FractionsAndDecimals) {
  EXPECT_TRUE(Equivalent("\\frac{1}{2}", "0.5"));
  EXPECT_FALSE(Equivalent("\\frac12", "0.51"));
  EXPECT_TRUE(Equivalent("0.5", ".5"));
  EXPECT_TRUE(Equivalent("-\\frac{3}{4}", "-0.75"));
  EXPECT_TRUE(Equivalent("\\frac{-3}{4}", "-\\frac34"));
  EXPECT_TRUE(Equivalent("\\frac{6}{8}", "3/4"));
  EXPECT_TRUE(Equivalent("\\frac9{19}", "\\frac{9}{19}"));
  EXPECT_TRUE(Equivalent("\\frac 59", "5/9"));
  EXPECT_FALSE(Equivalent("\\frac 59", "9/5"));
  EXPECT_TRUE(Equivalent("0.\\overline{3}", "\\frac13")) << "a repeating decimal is exact";
  EXPECT_TRUE(Equivalent("0.1\\overline{6}", "\\frac16"));
}

TEST(GradeNumbers, MixedNumbersAndScientificNotation) {
  EXPECT_TRUE(Equivalent("2\\frac{1}{2}", "\\frac52")) << "a mixed number";
  EXPECT_TRUE(Equivalent("137 \\frac{1}{2}", "137.5"));
  EXPECT_TRUE(Equivalent("1\\frac{4}{5}", "1.8"));
  EXPECT_FALSE(Equivalent("2\\frac{1}{2}", "1")) << "not 2 times 1/2";
  EXPECT_TRUE(Equivalent("2\\frac{\\pi}{3}", "\\frac{2\\pi}{3}")) << "a product, not a mixed number";
  EXPECT_TRUE(Equivalent("1500", "1.5\\times10^{3}"));
  EXPECT_TRUE(Equivalent("1500", "1.5 \\cdot 10^3"));
  EXPECT_TRUE(Equivalent("1000", "1e3"));
  EXPECT_TRUE(Equivalent("0.0025", "2.5e-3"));
  EXPECT_FALSE(Equivalent("1000", "1e4"));
  EXPECT_FALSE(Equivalent("1500", "1.5\\times10^{4}"));
}

TEST(GradeNumbers, ExactAnswersAgreeExactly) {
  EXPECT_FALSE(Equivalent("58500", "58505"));
  EXPECT_FALSE(Equivalent("100000", "100001")) << "within 1e-4 relative, but both exact";
  EXPECT_FALSE(Equivalent("\\frac{1}{3}", "\\frac{333333}{1000000} + \\frac{1}{3000000} + 10^{-12}"));
  EXPECT_TRUE(Equivalent("2\\sqrt{2}", "\\sqrt{8}"));
}

TEST(GradeNumbers, DecimalsAgreeWithinTheTolerance) {
  // Default tolerance 1e-4, relative: sqrt(8) = 2.828427...
  EXPECT_FALSE(Equivalent("\\sqrt{8}", "2.83")) << "2.83 is 5.6e-4 off";
  EXPECT_TRUE(Equivalent("\\sqrt{8}", "2.8284"));
  EXPECT_TRUE(Equivalent("\\pi", "3.14159"));
  EXPECT_FALSE(Equivalent("\\pi", "3.14"));
  EXPECT_TRUE(Equivalent("\\frac13", "0.33333"));
  EXPECT_FALSE(Equivalent("\\frac13", "0.333"));
  EXPECT_FALSE(Equivalent("0", "0.00001")) << "relative to the larger, so nothing is close to 0";
  GradeOptions loose;
  loose.relative_tolerance = 1e-2;
  EXPECT_TRUE(Equivalent("\\pi", "3.14", loose));
  EXPECT_TRUE(Equivalent("\\sqrt{8}", "2.83", loose));
  EXPECT_FALSE(Equivalent("\\pi", "3.2", loose));
}

TEST(GradeNumbers, ComplexNumbers) {
  EXPECT_TRUE(Equivalent("-2 + 7i", "7i - 2"));
  EXPECT_TRUE(Equivalent("i^2", "-1"));
  EXPECT_TRUE(Equivalent("\\frac{7}{5} + \\frac{1}{5} i", "1.4+0.2i"));
  EXPECT_TRUE(Equivalent("e^{i\\pi}", "-1")) << "e is Euler's number";
  EXPECT_FALSE(Equivalent("1 - 12i", "1 + 12i"));
  EXPECT_FALSE(Equivalent("2i", "2"));
}

TEST(GradeSymbolic, EqualExpressions) {
  EXPECT_TRUE(Equivalent("3\\sqrt{2}", "\\sqrt{18}"));
  EXPECT_TRUE(Equivalent("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt3}"));
  EXPECT_TRUE(Equivalent("11\\sqrt2", "11 \\sqrt{2}"));
  EXPECT_TRUE(Equivalent("x^2+2x+1", "(x+1)^2"));
  EXPECT_TRUE(Equivalent("2x", "x+x"));
  EXPECT_TRUE(Equivalent("\\frac{x^2-1}{x-1}", "x+1"));
  EXPECT_TRUE(Equivalent("\\frac{11+9a}{20}", "\\frac{9a+11}{20}"));
  EXPECT_TRUE(Equivalent("(a+5)(b+2)", "ab + 2a + 5b + 10"));
  EXPECT_TRUE(Equivalent("(a)(b)", "ab"));
  EXPECT_TRUE(Equivalent("2\\pi r", "2 r \\pi"));
  EXPECT_TRUE(Equivalent("x \\times y", "x \\cdot y"));
  EXPECT_TRUE(Equivalent("a \\div b", "\\frac ab"));
  EXPECT_TRUE(Equivalent("x^{10}", "x^5 x^5"));
  EXPECT_TRUE(Equivalent("\\sqrt[3]{27}", "3"));
  EXPECT_TRUE(Equivalent("\\sqrt[3]{-8}", "-2")) << "the real cube root";
  EXPECT_TRUE(Equivalent("\\sqrt{x^2}", "|x|"));
  EXPECT_TRUE(Equivalent("5!", "120"));
  EXPECT_TRUE(Equivalent("\\binom{5}{2}", "10"));
  EXPECT_TRUE(Equivalent("8n^2 + 4n + 1", "1 + 4n + 8n^2"));
}

TEST(GradeSymbolic, Functions) {
  EXPECT_TRUE(Equivalent("\\sin^2 x + \\cos^2 x", "1")) << "an identity no normal form finds";
  EXPECT_TRUE(Equivalent("\\cot x", "\\frac{\\cos x}{\\sin x}"));
  EXPECT_TRUE(Equivalent("\\sin 2x", "2\\sin x \\cos x"));
  EXPECT_TRUE(Equivalent("\\sin(x)^2", "\\sin^2 x"));
  EXPECT_TRUE(Equivalent("\\tan^{-1} 1", "\\frac{\\pi}{4}"));
  EXPECT_TRUE(Equivalent("\\log_2 8", "3"));
  EXPECT_TRUE(Equivalent("\\ln(e^2)", "2"));
  EXPECT_TRUE(Equivalent("\\exp(0)", "1"));
  EXPECT_TRUE(Equivalent("\\sec x", "\\frac{1}{\\cos x}"));
  EXPECT_FALSE(Equivalent("\\sin x", "\\cos x"));
  EXPECT_FALSE(Equivalent("\\sin 2x", "2 \\sin x"));
  EXPECT_FALSE(Equivalent("\\log_2 8", "\\log_3 8"));
}

TEST(GradeSymbolic, DifferentExpressions) {
  EXPECT_FALSE(Equivalent("(x+1)^2", "x^2+1"));
  EXPECT_FALSE(Equivalent("x", "y"));
  EXPECT_FALSE(Equivalent("2x", "2y"));
  EXPECT_FALSE(Equivalent("x^2", "x^3"));
  EXPECT_FALSE(Equivalent("3R^2", "3r^2")) << "variables are case-sensitive";
  EXPECT_FALSE(Equivalent("|x|", "x")) << "they differ for negative x";
  EXPECT_FALSE(Equivalent("x^{100}", "x^{100} + 1"));
  EXPECT_FALSE(Equivalent("\\sqrt{2}", "\\sqrt{3}"));
  EXPECT_FALSE(Equivalent("p - q", "q - p"));
}

TEST(GradePlusMinus, IsASetOfTwoValues) {
  EXPECT_TRUE(Equivalent("1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}"));
  EXPECT_TRUE(Equivalent("3 \\pm 2 \\sqrt{2}", "3 - 2\\sqrt2, 3 + 2\\sqrt2"));
  EXPECT_TRUE(Equivalent("\\{1\\pm\\sqrt{5},-2\\}", "-2, 1-\\sqrt5, 1+\\sqrt5"));
  EXPECT_TRUE(Equivalent("\\pm 3", "3, -3"));
  EXPECT_FALSE(Equivalent("1 \\pm \\sqrt{19}", "1+\\sqrt{19}"));
  EXPECT_FALSE(Equivalent("\\pm 3", "3"));
}

TEST(GradeIntervals, EndsAndUnions) {
  EXPECT_FALSE(Equivalent("[1,2)", "[1,2]"));
  EXPECT_TRUE(Equivalent("(-\\infty, 0]", "(-\\infty,0]"));
  EXPECT_FALSE(Equivalent("(-\\infty, 0]", "(-\\infty, 0)"));
  EXPECT_FALSE(Equivalent("(-\\infty, 0]", "(\\infty, 0]"));
  EXPECT_TRUE(Equivalent("(-\\infty, 2) \\cup (3, \\infty)", "(3,\\infty)\\cup(-\\infty,2)"));
  EXPECT_FALSE(Equivalent("(-\\infty, 2) \\cup (3, \\infty)", "(-\\infty, 2] \\cup (3, \\infty)"));
  EXPECT_FALSE(Equivalent("(-\\infty, 2) \\cup (3, \\infty)", "(-\\infty, 2)"));
  EXPECT_TRUE(Equivalent("\\left[ \\frac{\\pi^2}{8}, \\frac{5 \\pi^2}{4} \\right]", "[\\pi^2/8, 1.25\\pi^2]"));
  EXPECT_TRUE(Equivalent("\\left(\\frac{3}{5},\\frac{8}{3}\\right]", "(0.6, \\frac83]"));
  EXPECT_TRUE(Equivalent("\\{-1\\} \\cup [0,7)", "[0,7) \\cup \\{-1\\}"));
  EXPECT_FALSE(Equivalent("\\infty", "-\\infty"));
}

TEST(GradeIntervals, InequalitiesInOneVariable) {
  EXPECT_TRUE(Equivalent("(3, \\infty)", "x > 3"));
  EXPECT_TRUE(Equivalent("[3, \\infty)", "x \\ge 3"));
  EXPECT_TRUE(Equivalent("x > 3", "3 < x"));
  EXPECT_TRUE(Equivalent("[-2,7]", "-2 \\le x \\le 7"));
  EXPECT_TRUE(Equivalent("[-2,7]", "x \\in [-2,7]"));
  EXPECT_TRUE(Equivalent("(-\\infty, 5)", "x < 5"));
  EXPECT_FALSE(Equivalent("(3, \\infty)", "x < 3"));
  EXPECT_FALSE(Equivalent("(3, \\infty)", "x \\ge 3"));
  EXPECT_FALSE(Equivalent("[-2,7]", "-2 < x \\le 7"));
}

TEST(GradeIntervals, OtherInequalities) {
  EXPECT_TRUE(Equivalent("x + y > 1", "1 < x + y"));
  EXPECT_TRUE(Equivalent("x + y > 1", "2x + 2y > 2"));
  EXPECT_FALSE(Equivalent("x + y > 1", "x + y < 1"));
  EXPECT_FALSE(Equivalent("x + y \\ge 1", "x + y > 1"));
  EXPECT_FALSE(Equivalent("x + y > 1", "-x - y > -1"));
  EXPECT_TRUE(Equivalent("f(2) < f(1) < f(4)", "f(4) > f(1) > f(2)")) << "a chain read backwards";
  EXPECT_FALSE(Equivalent("f(2) < f(1) < f(4)", "f(1) < f(2) < f(4)"));
  EXPECT_FALSE(Equivalent("a < b < c", "a < b \\le c"));
}

TEST(GradeTuples, AreOrdered) {
  EXPECT_FALSE(Equivalent("(1,2)", "(2,1)"));
  EXPECT_TRUE(Equivalent("(1,2)", "( 1 , 2 )"));
  EXPECT_TRUE(Equivalent("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)"));
  EXPECT_TRUE(Equivalent("(1,-16,-4,43)", "(1, -16, -4, 43.0)"));
  EXPECT_TRUE(Equivalent("\\left( \\frac{3}{2}, -13 \\right)", "(1.5,-13)"));
  EXPECT_FALSE(Equivalent("(1,2,3)", "(1,2)"));
  EXPECT_FALSE(Equivalent("(1,2)", "\\{1,2\\}")) << "a tuple is not a set";
  EXPECT_FALSE(Equivalent("(1,2)", "1, 2"));
}

TEST(GradeSets, AreUnordered) {
  EXPECT_TRUE(Equivalent("\\{1,2\\}", "\\{2,1\\}"));
  EXPECT_TRUE(Equivalent("1, 2, 3", "3, 2, 1")) << "MATH's list of all solutions is a set";
  EXPECT_TRUE(Equivalent("-2,1", "1,-2"));
  EXPECT_TRUE(Equivalent("\\{1,2\\}", "1, 2"));
  EXPECT_TRUE(Equivalent("\\{5\\}", "5")) << "one solution";
  EXPECT_TRUE(Equivalent("\\{1, 1, 2\\}", "\\{1,2\\}")) << "sets, not lists with multiplicity";
  EXPECT_TRUE(Equivalent("\\emptyset", "\\{\\}"));
  EXPECT_TRUE(Equivalent("7, -2, \\text{ and } -5", "-5, -2, 7"));
  EXPECT_TRUE(Equivalent("(1,2), (3,4)", "(3,4), (1,2)"));
  EXPECT_FALSE(Equivalent("1,2,3", "1,2"));
  EXPECT_FALSE(Equivalent("3, 5, 7", "3, 5, 8"));
  EXPECT_FALSE(Equivalent("(1,2), (3,4)", "(1,4), (3,2)"));
  EXPECT_FALSE(Equivalent("\\emptyset", "0"));
}

TEST(GradeMatrices, EntryByEntry) {
  EXPECT_TRUE(
      Equivalent("\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", "\\begin{bmatrix}-1&0\\\\0&-1\\end{bmatrix}"));
  EXPECT_TRUE(
      Equivalent("\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}", "\\begin{pmatrix} 0.2 \\\\ -3.6 \\end{pmatrix}"));
  EXPECT_TRUE(Equivalent("\\begin{pmatrix} -7 \\\\ 16 \\\\ 5 \\end{pmatrix}", "(-7, 16, 5)")) << "a vector as a tuple";
  EXPECT_FALSE(Equivalent("\\begin{pmatrix} -7 \\\\ 16 \\\\ 5 \\end{pmatrix}", "(-7, 5, 16)"));
  EXPECT_FALSE(Equivalent("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
                          "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}"));
  EXPECT_FALSE(Equivalent("\\begin{pmatrix} 1 & 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"))
      << "different shapes";
  EXPECT_FALSE(Equivalent("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "(1, 2, 3, 4)"));
}

TEST(GradeEquations, SolvedSideAndEquivalentEquations) {
  EXPECT_TRUE(Equivalent("x=5", "5"));
  EXPECT_TRUE(Equivalent("5", "x = 5"));
  EXPECT_TRUE(Equivalent("k = 15", "15"));
  EXPECT_FALSE(Equivalent("x = 5", "x = 6"));
  EXPECT_FALSE(Equivalent("x = 5", "6"));
  EXPECT_TRUE(Equivalent("y = 2x + 3", "y=2x+3"));
  EXPECT_TRUE(Equivalent("y = 2x + 3", "y - 2x = 3"));
  EXPECT_TRUE(Equivalent("y = -2x", "2x + y = 0"));
  EXPECT_TRUE(Equivalent("5x - 7y + 11z + 4 = 0", "-10x + 14y - 22z - 8 = 0")) << "a multiple";
  EXPECT_TRUE(Equivalent("x^2 + y^2 = 13", "y^2 + x^2 - 13 = 0"));
  EXPECT_FALSE(Equivalent("y = 2x + 3", "y = 3x + 2"));
  EXPECT_FALSE(Equivalent("x = 5", "y = 5"));
  EXPECT_FALSE(Equivalent("x^2 + y^2 = 13", "x^2 + y^2 = 12"));
}

TEST(GradeBases, NumeralsWithASubscript) {
  EXPECT_TRUE(Equivalent("1011_2", "11")) << "its value";
  EXPECT_TRUE(Equivalent("1011_2", "1011")) << "its digits without the base";
  EXPECT_TRUE(Equivalent("11_{10}", "11"));
  EXPECT_TRUE(Equivalent("204_5", "54"));
  EXPECT_TRUE(Equivalent("4210_{5}", "4210_5"));
  EXPECT_TRUE(Equivalent("152A_{11}", "152a_{11}"));
  EXPECT_TRUE(Equivalent("0.0011_{2}", "\\frac{3}{16}"));
  EXPECT_FALSE(Equivalent("204_5", "205_5"));
  EXPECT_FALSE(Equivalent("204_5", "204_6"));
  EXPECT_FALSE(Equivalent("1011_2", "12"));
}

TEST(GradeText, CaseInsensitiveWords) {
  EXPECT_TRUE(Equivalent("\\text{(A)}", "A"));
  EXPECT_TRUE(Equivalent("\\text{(A)}", "(A)"));
  EXPECT_TRUE(Equivalent("\\text{(C)}", "\\text{C}"));
  EXPECT_TRUE(Equivalent("\\text{Monday}", "Monday"));
  EXPECT_TRUE(Equivalent("\\text{Monday}", "monday"));
  EXPECT_TRUE(Equivalent("\\text{east}", "East."));
  EXPECT_TRUE(Equivalent("\\mbox{Saturday}", "\\text{Saturday}"));
  EXPECT_TRUE(Equivalent("\\text{A,C,F}", "C, A, F"));
  EXPECT_FALSE(Equivalent("\\text{(A)}", "B"));
  EXPECT_FALSE(Equivalent("\\text{Monday}", "\\text{Tuesday}"));
  EXPECT_FALSE(Equivalent("\\text{even}", "odd"));
  EXPECT_FALSE(Equivalent("\\text{ellipse}", "5"));
}

TEST(GradeAnswer, EmptyAndUnreadableAnswers) {
  EXPECT_FALSE(Equivalent("5", ""));
  EXPECT_FALSE(Equivalent("5", "   "));
  EXPECT_FALSE(Equivalent("", "5"));
  EXPECT_NE(refusal("5", "\\frac{1}{").find("cannot read pred"), std::string::npos);
  EXPECT_NE(refusal("\\frac{1}{0}", "1").find("cannot read gold"), std::string::npos);
  for (const char* junk : {"}", "{{", "\\begin{pmatrix}", "(((", "\\sqrt[", "x^", "\\frac", "\\left(", "[1,", "\\{",
                           "1/0", "0^{-1}", "\\tan(\\pi/2)", "\\log 0", "&", "\\\\", "\\unknown{3}", "\\text{", "_2"}) {
    EXPECT_FALSE(Equivalent("5", junk));
    EXPECT_FALSE(Equivalent(junk, "5"));
  }
}

TEST(GradeAnswer, SameTextFirstOrParsed) {
  GradeOptions parse_both;
  parse_both.compare_text_first = false;
  EXPECT_TRUE(Equivalent("\\frac{1}{2}", "\\frac{1}{2}", parse_both));
  EXPECT_EQ(grade_answer("\\frac{1}{2}", "\\dfrac{1}{2}").reason, "same answer after normalization");
  // Text that no parser reads is still the same answer.
  EXPECT_TRUE(Equivalent("\\frac{1}{2004!} \\sim", "\\frac{1}{2004!}\\sim"));
}

TEST(GradePathological, LimitsGiveNotEquivalentWithAReason) {
  EXPECT_NE(refusal("10^{10^{10^{10}}}", "10^{10^{10^{10}}}").find("too large"), std::string::npos);
  EXPECT_NE(refusal("2^{100000}", "1").find("too large"), std::string::npos);
  EXPECT_NE(refusal("(x+1)^{100000}", "(x+1)^{100000}").find("exponent too large"), std::string::npos);
  EXPECT_NE(refusal("((x+1)^{1000})^{1000}", "1").find("exponent too large"), std::string::npos);
  EXPECT_NE(refusal("100000!", "100000!").find("too large"), std::string::npos);
  EXPECT_NE(refusal("\\binom{100000}{50000}", "1").find("too large"), std::string::npos);
  EXPECT_NE(refusal("\\sin(10^{100})", "0").find("too large"), std::string::npos);
  EXPECT_NE(refusal("\\exp(\\exp(\\exp(10)))", "1").find("too large"), std::string::npos);
  EXPECT_NE(refusal(std::string(500, '{') + "1" + std::string(500, '}'), "1").find("nested too deeply"),
            std::string::npos);
  EXPECT_NE(refusal(std::string(900, '(') + "1" + std::string(900, ')'), "1").find("nested too deeply"),
            std::string::npos);
  EXPECT_NE(refusal(std::string(1500, '-') + "1", "1").find("nested too deeply"), std::string::npos);
  std::string towers;
  for (int i = 0; i < 300; ++i) towers += "x^{";
  towers += "2" + std::string(300, '}');
  EXPECT_NE(refusal(towers, "1").find("nested too deeply"), std::string::npos);
  std::string signs;
  for (int i = 0; i < 20; ++i) signs += "\\pm 1";
  EXPECT_NE(refusal(signs, "1").find("too many"), std::string::npos);
  std::string list = "1";
  for (int i = 2; i < 400; ++i) list += "," + std::to_string(i);
  EXPECT_NE(refusal(list, "1").find("too many"), std::string::npos);
  std::string digits(1990, '7');
  EXPECT_FALSE(Equivalent(digits, digits + "7"));
}

TEST(GradePathological, HugeInputIsRefusedByItsLength) {
  const std::string nested = std::string(10000, '{') + "1" + std::string(10000, '}');
  EXPECT_NE(refusal(nested, nested).find("too long"), std::string::npos);
  const std::string huge(10 << 20, '9');
  const auto start = std::chrono::steady_clock::now();
  EXPECT_NE(refusal(huge, "9").find("too long"), std::string::npos);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.0);
}

// Random strings of answer tokens: whatever comes out, grading returns, with a reason.
TEST(GradePathological, RandomTokenSoup) {
  const std::vector<std::string> tokens = {"1",
                                           "23",
                                           "x",
                                           "y",
                                           "+",
                                           "-",
                                           "^",
                                           "{",
                                           "}",
                                           "(",
                                           ")",
                                           "[",
                                           "]",
                                           ",",
                                           "=",
                                           "<",
                                           "!",
                                           "|",
                                           "\\frac",
                                           "\\sqrt",
                                           "\\pi",
                                           "\\infty",
                                           "\\{",
                                           "\\}",
                                           "\\cup",
                                           "\\pm",
                                           "\\sin",
                                           "\\log_",
                                           "_",
                                           "\\text{cm}",
                                           "\\\\",
                                           "&",
                                           "\\begin{pmatrix}",
                                           "\\end{pmatrix}",
                                           ".",
                                           "e",
                                           "i",
                                           "\\%",
                                           "\\circ"};
  std::mt19937 random(1234);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string gold, pred;
    const int length = 1 + static_cast<int>(random() % 24);
    for (int t = 0; t < length; ++t) gold += tokens[random() % tokens.size()];
    for (int t = 0; t < length; ++t) pred += tokens[random() % tokens.size()];
    EXPECT_FALSE(grade_answer(gold, pred).reason.empty()) << gold << " | " << pred;
    EXPECT_TRUE(grade_answer(gold, gold).equivalent) << gold;
  }
}

}  // namespace
}  // namespace ponder
