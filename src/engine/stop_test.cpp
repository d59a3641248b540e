#include "engine/stop.h"

#include <gtest/gtest.h>

namespace ponder {
namespace {

TEST(StopMatcher, FindsAStopSplitAcrossPieces) {
  StopMatcher m({"\n\n"});
  std::string text = "Step 1: x = 2.\n";
  EXPECT_FALSE(m.find(text, 0));
  const size_t checked = text.size();
  text += "\nStep 2";
  auto at = m.find(text, checked);
  ASSERT_TRUE(at);
  EXPECT_EQ(*at, 14u);
}

TEST(StopMatcher, EarliestOfSeveralStops) {
  StopMatcher m({"END", "b"});
  EXPECT_EQ(m.find("aaENDb", 0), 2u);
  EXPECT_EQ(m.find("abEND", 0), 1u);
}

TEST(StopMatcher, DoesNotReportMatchesThatEndedBeforeChecked) {
  StopMatcher m({"xy"});
  EXPECT_FALSE(m.find("xy and more", 5));
  EXPECT_EQ(m.find("abcxy", 4), 3u);
}

TEST(StopMatcher, EmptyStopsNeverMatch) {
  StopMatcher m({"", ""});
  EXPECT_FALSE(m.find("anything", 0));
}

}  // namespace
}  // namespace ponder
