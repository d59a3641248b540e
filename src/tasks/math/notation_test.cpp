// Answer notation before parsing: what is dropped, what is kept, and the readings of ambiguous
// answers.
#include "tasks/math/notation.h"

#include <gtest/gtest.h>

namespace ponder::notation {
namespace {

TEST(Notation, DropsDelimitersSpacingAndSizing) {
  EXPECT_EQ(clean("  $\\frac{1}{2}$. ").math, "\\frac{1}{2}");
  EXPECT_EQ(clean("$$5$$").math, "5");
  EXPECT_EQ(clean("\\(x\\)").math, "x");
  EXPECT_EQ(clean("\\left( 1, 2 \\right)").math, "( 1, 2 )");
  EXPECT_EQ(clean("\\left.x\\right|").math, "x|");
  EXPECT_EQ(clean("\\displaystyle\\frac12").math, "\\frac12");
  EXPECT_EQ(clean("10\\,000").math, "10000") << "thin space between digits: a thousands separator";
  EXPECT_EQ(clean("2\\,x").math, "2 x");
  EXPECT_EQ(clean("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}").math, "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}")
      << "a row break is not a space";
  EXPECT_EQ(clean("\\$32,\\!348").math, "32348");
  EXPECT_EQ(clean("1{,}000").math, "1000");
  EXPECT_EQ(clean("A \\leftarrow B").math, "A \\leftarrow B") << "not \\left";
}

TEST(Notation, UnicodeBecomesLatex) {
  EXPECT_EQ(clean("\u22123").math, "-3");
  EXPECT_EQ(clean("45\u00b0").math, "45^\\circ");
  EXPECT_EQ(clean("2\u03c0").math, "2\\pi");
  EXPECT_EQ(clean("x \u2264 3").math, "x \\le  3");
}

TEST(Notation, TextAndUnits) {
  EXPECT_EQ(clean("5 \\text{ cm}^2").math, "5");
  EXPECT_EQ(clean("864 \\mbox{ inches}^2").math, "864");
  EXPECT_EQ(clean("12 square inches").math, "12");
  EXPECT_EQ(clean("5cm").math, "5");
  EXPECT_EQ(clean("2x").math, "2x") << "a variable is no unit";
  EXPECT_EQ(clean("12\\text{ and }13").math, "12,13");
  EXPECT_EQ(clean("7, -2, \\text{ and } -5").math, "7, -2,  -5") << "one comma";
  EXPECT_EQ(clean("(\\text{E})").math, "(E)") << "text after '(' is no unit";
  EXPECT_EQ(clean("\\text{x}=5").math, "x=5");
  const CleanAnswer monday = clean("\\text{Monday}");
  ASSERT_TRUE(monday.whole_text);
  EXPECT_EQ(*monday.whole_text, "Monday");
  EXPECT_FALSE(clean("5\\text{ cm}").whole_text);
}

TEST(Notation, WordsAndTextKeys) {
  EXPECT_TRUE(looks_like_words("Monday"));
  EXPECT_TRUE(looks_like_words("east"));
  EXPECT_TRUE(looks_like_words("June (leap year)"));
  EXPECT_FALSE(looks_like_words("x"));
  EXPECT_FALSE(looks_like_words("AB"));
  EXPECT_FALSE(looks_like_words("sin x"));
  EXPECT_FALSE(looks_like_words("3 apples"));
  EXPECT_FALSE(looks_like_words(""));
  EXPECT_EQ(text_key("  The   Answer. "), "the answer");
}

TEST(Notation, Spellings) {
  auto only = [](const std::string& math) {
    const auto s = spellings(math);
    return s.size() == 1 ? s[0].math : "(" + std::to_string(s.size()) + " readings)";
  };
  EXPECT_EQ(only("1,000.5"), "1000.5");
  EXPECT_EQ(only("(1,000)"), "(1,000)");
  EXPECT_EQ(only("12,34"), "12,34");
  EXPECT_EQ(only("1234,567"), "1234,567") << "at most three digits before the first comma";
  EXPECT_EQ(only("1, 000"), "1, 000");
  const auto thousands = spellings("-1,000,000");
  ASSERT_EQ(thousands.size(), 2u);
  EXPECT_EQ(thousands[0].math, "-1000000");
  EXPECT_EQ(thousands[1].math, "-1,000,000");
  EXPECT_EQ(thousands[1].note, "commas as a list");
  const auto percent = spellings("12.5\\%");
  ASSERT_EQ(percent.size(), 2u);
  EXPECT_EQ(percent[0].math, "12.5");
  EXPECT_EQ(percent[1].math, "\\frac{12.5}{100}");
}

}  // namespace
}  // namespace ponder::notation
