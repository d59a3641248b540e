// Tests for sentence segmentation of story steps (segment.h): what ICU calls a sentence on
// ordinary prose, abbreviations, quotes, paragraphs, Unicode and broken UTF-8, that the pieces
// always rebuild the input, and when first_sentence_end calls a streamed sentence complete.
#include "tasks/story/segment.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "test_paths.h"

namespace ponder::story {
namespace {

using Pieces = std::vector<std::string>;
constexpr auto npos = std::string_view::npos;

std::string joined(const Pieces& pieces) {
  std::string all;
  for (const auto& piece : pieces) all += piece;
  return all;
}

TEST(Segment, OrdinarySentencesKeepTheirTrailingSpace) {
  EXPECT_EQ(split_sentences("The cat sat. The dog ran! Did it? Yes."),
            (Pieces{"The cat sat. ", "The dog ran! ", "Did it? ", "Yes."}));
}

TEST(Segment, AbbreviationsDoNotEndSentences) {
  EXPECT_EQ(split_sentences("Mr. Smith went home. He slept."),
            (Pieces{"Mr. Smith went home. ", "He slept."}));
  EXPECT_EQ(split_sentences("Mrs. Brown and Ms. Gray came."),
            (Pieces{"Mrs. Brown and Ms. Gray came."}));
  // ICU's English list (ICU 72) lacks "Dr.", so it ends a sentence before a capital.
  EXPECT_EQ(split_sentences("Dr. Jones came."), (Pieces{"Dr. ", "Jones came."}));
  // Not on ICU's list: "p.m." before a capital ends a sentence, as it usually does.
  EXPECT_EQ(split_sentences("He left at 5 p.m. Then it rained."),
            (Pieces{"He left at 5 p.m. ", "Then it rained."}));
}

TEST(Segment, NumbersAndLowercaseDoNotEndSentences) {
  EXPECT_EQ(split_sentences("It cost 3.50 dollars. OK."), (Pieces{"It cost 3.50 dollars. ", "OK."}));
  // A period before a lowercase word reads as an abbreviation (UAX #29 rule SB8).
  EXPECT_EQ(split_sentences("It cost 3. the end"), (Pieces{"It cost 3. the end"}));
}

TEST(Segment, QuotesStayWithTheirSentence) {
  // "!" and "?" end a sentence even before a lowercase word, so the dialogue tag stands alone.
  EXPECT_EQ(split_sentences("\"Hi!\" she said. Then..."),
            (Pieces{"\"Hi!\" ", "she said. ", "Then..."}));
  EXPECT_EQ(split_sentences("She said \"Stop.\" And he left."),
            (Pieces{"She said \"Stop.\" ", "And he left."}));
}

TEST(Segment, ParagraphBreaksEndSentencesAndBlankLinesJoinTheSentenceBefore) {
  EXPECT_EQ(split_sentences("Once upon a time\nThere was a fox. It ran.\n\nThe end.\n"),
            (Pieces{"Once upon a time\n", "There was a fox. ", "It ran.\n\n", "The end.\n"}));
  EXPECT_EQ(split_sentences("\n\nA story. More."), (Pieces{"\n\nA story. ", "More."}));
}

TEST(Segment, TextWithoutTerminatorIsOneSentence) {
  EXPECT_EQ(split_sentences("once upon a time there was"), (Pieces{"once upon a time there was"}));
}

TEST(Segment, EmptyAndBlankInput) {
  EXPECT_TRUE(split_sentences("").empty());
  EXPECT_EQ(split_sentences("  \n "), (Pieces{"  \n "}));
  EXPECT_EQ(first_sentence_end(""), npos);
  EXPECT_EQ(first_sentence_end(" \n\n"), npos);
}

TEST(Segment, UnicodeOffsetsAreBytes) {
  const std::string text = "Café au lait. \xF0\x9F\x98\x80 Yes! Это всё. 終わり。次";
  EXPECT_EQ(split_sentences(text),
            (Pieces{"Café au lait. ", "\xF0\x9F\x98\x80 Yes! ", "Это всё. ", "終わり。", "次"}));
  EXPECT_EQ(first_sentence_end(text), std::string("Café au lait. ").size());
}

TEST(Segment, InvalidUtf8SegmentsAsReplacementCharacters) {
  // Bad bytes read as U+FFFD (a letter to the rules); pieces still cut the original bytes.
  const std::string text = "a\xFF\xFE. B. \xC3";  // stray bytes and a truncated sequence
  EXPECT_EQ(split_sentences(text), (Pieces{"a\xFF\xFE. ", "B. ", "\xC3"}));
  const std::string broken_mid = "\xE2\x82. Next \x80\x80 one.";
  EXPECT_EQ(joined(split_sentences(broken_mid)), broken_mid);
  EXPECT_EQ(first_sentence_end(broken_mid), std::string("\xE2\x82. ").size());
}

TEST(Segment, PiecesRebuildSharedProse) {
  const std::string path = testing::shared_file("data/gsm8k/test.jsonl");
  PONDER_REQUIRE_FILE(path);
  std::ifstream in(path);
  std::string line;
  std::string all;
  for (int lines = 0; lines < 50 && std::getline(in, line); ++lines)
    all += nlohmann::json::parse(line).at("question").get<std::string>() + "\n";
  const Pieces pieces = split_sentences(all);
  EXPECT_EQ(joined(pieces), all);
  EXPECT_GT(pieces.size(), 100u);  // several sentences to a question
  for (const auto& piece : pieces) EXPECT_FALSE(piece.empty());
  // Every prefix of the whole agrees with the whole on where the first sentence ends, once
  // first_sentence_end calls it complete: a streamed step never ends early.
  const std::size_t first = pieces.front().size();
  for (std::size_t length = 0; length <= all.size() && length < 2000; ++length) {
    const std::size_t end = first_sentence_end(std::string_view(all).substr(0, length));
    if (end != npos) EXPECT_EQ(end, first) << "prefix of " << length << " bytes";
  }
  EXPECT_EQ(first_sentence_end(all), first);
}

TEST(Segment, FirstSentenceEndWaitsForTerminatorAndWhitespace) {
  EXPECT_EQ(first_sentence_end("Once upon a time"), npos);
  EXPECT_EQ(first_sentence_end("Once upon a time "), npos);
  EXPECT_EQ(first_sentence_end("The fox ran."), npos);  // could still become "ran..." or "ran.\""
  EXPECT_EQ(first_sentence_end("The fox ran. "), 13u);
  EXPECT_EQ(first_sentence_end("The fox ran.\n"), 13u);
  EXPECT_EQ(first_sentence_end("The fox ran. It"), 13u);  // the next sentence has begun
  EXPECT_EQ(first_sentence_end("Wait..."), npos);
  EXPECT_EQ(first_sentence_end("Wait... "), 8u);
  EXPECT_EQ(first_sentence_end("\"Run!\""), npos);
  EXPECT_EQ(first_sentence_end("\"Run!\" "), 7u);
  EXPECT_EQ(first_sentence_end("Really?! "), 9u);
}

TEST(Segment, FirstSentenceEndWaitsPastAbbreviationsAndParagraphs) {
  EXPECT_EQ(first_sentence_end("Mr. "), npos);
  EXPECT_EQ(first_sentence_end("Mr. Smith"), npos);
  EXPECT_EQ(first_sentence_end("Mr. Smith left. "), 16u);
  // A paragraph break ends a sentence even without a terminator.
  EXPECT_EQ(first_sentence_end("Chapter One\n"), 12u);
  // Leading blank lines belong to the first sentence.
  EXPECT_EQ(first_sentence_end("\n\nThe end. "), 11u);
  EXPECT_EQ(first_sentence_end("\n\nThe end"), npos);
}

TEST(StorySentences, DistinctTrimmedSentencesIndexedPerStory) {
  const StorySentences s = story_sentences({"The cat sat.  The dog ran. ", "   ", "The dog ran.\nThe cat sat."});
  EXPECT_EQ(s.distinct, (std::vector<std::string>{"The cat sat.", "The dog ran."}));
  ASSERT_EQ(s.of_story.size(), 3u);
  EXPECT_EQ(s.of_story[0], (std::vector<std::size_t>{0, 1}));
  EXPECT_TRUE(s.of_story[1].empty());
  EXPECT_EQ(s.of_story[2], (std::vector<std::size_t>{1, 0}));
}

}  // namespace
}  // namespace ponder::story
