// Answer extraction and normalisation on solutions written as models write them.
#include "tasks/math/answer.h"

#include <stdexcept>

#include <gtest/gtest.h>

namespace ponder {
namespace {

using std::optional;
using std::string;

TEST(ExtractAnswer, BoxedContentWithNestedBraces) {
  EXPECT_EQ(extract_answer("So $x = \\boxed{5}$."), "5");
  EXPECT_EQ(extract_answer("Hence \\boxed{\\frac{1}{2}}"), "\\frac{1}{2}");
  EXPECT_EQ(extract_answer("\\boxed{\\sqrt{2^{3}} + \\frac{a}{b^{2}}}"), "\\sqrt{2^{3}} + \\frac{a}{b^{2}}");
  EXPECT_EQ(extract_answer("The set is \\boxed{\\{1, 2\\}}."), "\\{1, 2\\}") << "escaped braces are not grouping";
  EXPECT_EQ(extract_answer("\\boxed{ 7 }"), "7");
  EXPECT_EQ(extract_answer("\\boxed {(2, 3)}"), "(2, 3)");
}

TEST(ExtractAnswer, TheLastBoxWins) {
  EXPECT_EQ(extract_answer("First \\boxed{3}, then on reflection \\boxed{4}."), "4");
  EXPECT_EQ(extract_answer("\\boxed{3} and \\fbox{9}"), "9");
  EXPECT_EQ(extract_answer("\\fbox{9} but really \\boxed{10}"), "10");
  EXPECT_EQ(extract_answer("The final answer is 7, i.e. \\boxed{8}"), "8") << "a box beats the phrase";
  // An unclosed or empty box does not hide an earlier complete one.
  EXPECT_EQ(extract_answer("\\boxed{12} ... \\boxed{13"), "12");
  EXPECT_EQ(extract_answer("\\boxed{12} ... \\boxed{}"), "12");
}

TEST(ExtractAnswer, BoxWithoutBraces) {
  EXPECT_EQ(extract_answer("so the answer is $\\boxed 5$"), "5");
  EXPECT_EQ(extract_answer("\\boxed -3 apples"), "-3");
  EXPECT_EQ(extract_answer("\\fbox 2.5\nDone"), "2.5");
}

TEST(ExtractAnswer, OtherCommandsAreNotBoxes) {
  // \fboxsep is a length, not \fbox: the number fallback applies.
  EXPECT_EQ(extract_answer("\\setlength{\\fboxsep}{3pt} gives 4"), "4");
}

TEST(ExtractAnswer, AnswerPhrases) {
  EXPECT_EQ(extract_answer("We add them. The final answer is $42$."), "42");
  EXPECT_EQ(extract_answer("Thus the answer is \\frac{3}{4}."), "\\frac{3}{4}");
  EXPECT_EQ(extract_answer("The answer is: 3.14."), "3.14");
  EXPECT_EQ(extract_answer("the answer is 6. Checking: 2*3 = 6, so 6 is right."), "6");
  EXPECT_EQ(extract_answer("Final Answer is 17\nsome trailing text"), "17") << "case-insensitive, one line";
  EXPECT_EQ(extract_answer("The answer is 5. No wait, the answer is 9."), "9") << "the last phrase";
  EXPECT_EQ(extract_answer("The final answer is:\n\n$x = 2$"), "x = 2");
  // A phrase with nothing after it falls back to the last number.
  EXPECT_EQ(extract_answer("2 + 2 = 4 and that is what the answer is."), "4");
}

TEST(ExtractAnswer, LastNumber) {
  EXPECT_EQ(extract_answer("3 apples and 4 pears make 7 fruits"), "7");
  EXPECT_EQ(extract_answer("the temperature fell to -12 degrees"), "-12");
  EXPECT_EQ(extract_answer("it costs 2.50 dollars"), "2.50");
  EXPECT_EQ(extract_answer("the ratio is 3/4"), "3/4");
  EXPECT_EQ(extract_answer("a loss of -3/4"), "-3/4");
  EXPECT_EQ(extract_answer("the population is 1,000,000 people"), "1,000,000") << "kept as written";
  EXPECT_EQ(extract_answer("the list 1, 2, 3"), "3") << "a comma and a space separate numbers";
  EXPECT_EQ(extract_answer("pick 12,34"), "34") << "a group needs three digits";
  EXPECT_EQ(extract_answer("about .5 of it"), ".5");
  EXPECT_EQ(extract_answer("it is 7."), "7") << "a sentence's period is not a decimal point";
  EXPECT_EQ(extract_answer("10-3"), "3") << "minus after a digit is subtraction";
  EXPECT_EQ(extract_answer("x = (-2)"), "-2");
}

TEST(ExtractAnswer, NoAnswer) {
  EXPECT_EQ(extract_answer(""), std::nullopt);
  EXPECT_EQ(extract_answer("I am not sure how to solve this."), std::nullopt);
  EXPECT_EQ(extract_answer("\\boxed{}"), std::nullopt);
}

TEST(AnswerRules, ParseNamesInOrder) {
  EXPECT_EQ(parse_answer_rules("boxed,final-answer,the-answer,last-number"), ExtractOptions{}.order)
      << "the default order";
  EXPECT_EQ(parse_answer_rules(" last-number , boxed "),
            (std::vector<AnswerRule>{AnswerRule::kLastNumber, AnswerRule::kBoxed}));
  for (const AnswerRule rule : ExtractOptions{}.order) {
    EXPECT_EQ(parse_answer_rules(to_string(rule)), std::vector<AnswerRule>{rule});
  }
}

TEST(AnswerRules, BadListsNameTheEntry) {
  try {
    parse_answer_rules("boxed,latest");
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'latest'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_answer_rules("boxed,boxed"), std::invalid_argument);
  EXPECT_THROW(parse_answer_rules(""), std::invalid_argument);
  EXPECT_THROW(parse_answer_rules("boxed,"), std::invalid_argument);
}

TEST(AnswerRules, TheOrderDecides) {
  const std::string solution = "The answer is 5. The final answer is 6. Indeed \\boxed{7}, and 8 remains.";
  auto extract = [&](std::initializer_list<AnswerRule> order) {
    ExtractOptions options;
    options.order = order;
    return extract_answer(solution, options);
  };
  EXPECT_EQ(extract_answer(solution), "7") << "boxed first by default";
  EXPECT_EQ(extract({AnswerRule::kFinalAnswerIs, AnswerRule::kBoxed}), "6");
  EXPECT_EQ(extract({AnswerRule::kTheAnswerIs, AnswerRule::kFinalAnswerIs}), "5");
  EXPECT_EQ(extract({AnswerRule::kLastNumber, AnswerRule::kBoxed}), "8");
  EXPECT_EQ(extract({}), std::nullopt);
  // A rule that finds nothing passes to the next.
  ExtractOptions boxed_only;
  boxed_only.order = {AnswerRule::kBoxed};
  EXPECT_EQ(extract_answer("the answer is 3", boxed_only), std::nullopt);
  EXPECT_EQ(extract_answer("the answer is 3"), "3");
  // "The final answer is" does not contain "the answer is".
  ExtractOptions the_answer;
  the_answer.order = {AnswerRule::kTheAnswerIs};
  EXPECT_EQ(extract_answer("The final answer is 4.", the_answer), std::nullopt);
}

TEST(NormalizeAnswer, MakesEqualAnswersEqualStrings) {
  EXPECT_EQ(normalize_answer("  $\\dfrac{1}{2}$. "), "\\frac{1}{2}");
  EXPECT_EQ(normalize_answer("\\tfrac{1}{2}"), "\\frac{1}{2}");
  EXPECT_EQ(normalize_answer("$$5$$"), "5");
  EXPECT_EQ(normalize_answer("$5$."), "5");
  EXPECT_EQ(normalize_answer("\\left( 1, 2 \\right)"), "(1,2)");
  EXPECT_EQ(normalize_answer("10\\!000"), "10000");
  EXPECT_EQ(normalize_answer("10\\,000"), "10000");
  EXPECT_EQ(normalize_answer("5\\ \\text{cm}"), "5\\text{cm}");
  EXPECT_EQ(normalize_answer("x = 3"), "x=3");
  EXPECT_EQ(normalize_answer("7 ."), "7");
}

TEST(NormalizeAnswer, LeavesTheRestAlone) {
  EXPECT_EQ(normalize_answer("A \\leftarrow B \\rightarrow C"), "A\\leftarrowB\\rightarrowC") << "not \\left";
  EXPECT_EQ(normalize_answer("3.5"), "3.5");
  EXPECT_EQ(normalize_answer("1,000"), "1,000");
  EXPECT_EQ(normalize_answer("0.5"), "0.5") << "no symbolic equivalence";
  EXPECT_EQ(normalize_answer(""), "");
  EXPECT_EQ(normalize_answer("$"), "$");
}

}  // namespace
}  // namespace ponder
