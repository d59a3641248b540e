// Callback verifiers: what the callbacks see, state bookkeeping, misuse.
#include "verify/checker.h"

#include <stdexcept>

#include <gtest/gtest.h>

namespace ponder {
namespace {

TEST(CheckerOutcomeVerifier, ScoresEachCandidateWithTheCallback) {
  CheckerOutcomeVerifier v([](const Candidate& c) { return c.steps.empty() ? 0.0 : c.steps.back() == "42" ? 1.0 : 0.0; });
  const auto s = v.score({{"q", {"so", "42"}, {}, {}}, {"q", {"41"}, {}, {}}, {"q", {}, {}, {}}});
  EXPECT_EQ(s, (std::vector<double>{1.0, 0.0, 0.0}));
  EXPECT_EQ(v.stats().calls, 1);
  EXPECT_EQ(v.stats().tokens_evaluated, 0);
  EXPECT_THROW(CheckerOutcomeVerifier(nullptr), std::invalid_argument);
}

struct Call {
  std::string problem;
  std::vector<std::string> steps;
  bool operator==(const Call&) const = default;
};

TEST(CheckerStepVerifier, ScoresEachNewStepWithItsPrefix) {
  std::vector<Call> calls;
  CheckerStepVerifier v([&](const std::string& problem, const std::vector<std::string>& steps) {
    calls.push_back({problem, steps});
    return static_cast<double>(steps.size()) / 10.0;
  });
  const VerifierState root = v.root("2+2");
  const auto first = v.extend({{root, {"a", "b"}}, {root, {"x"}}});
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].step_scores, (std::vector<double>{0.1, 0.2}));
  EXPECT_EQ(first[1].step_scores, (std::vector<double>{0.1}));
  EXPECT_EQ(calls, (std::vector<Call>{{"2+2", {"a"}}, {"2+2", {"a", "b"}}, {"2+2", {"x"}}}));

  // Extending a state sees the whole prefix; a consumed parent is gone afterwards.
  calls.clear();
  const auto second = v.extend({{first[0].state, {"c"}, /*consume_parent=*/true}});
  EXPECT_EQ(second[0].step_scores, (std::vector<double>{0.3}));
  EXPECT_EQ(calls, (std::vector<Call>{{"2+2", {"a", "b", "c"}}}));
  EXPECT_THROW(v.extend({{first[0].state, {"d"}}}), std::invalid_argument);
  EXPECT_EQ(v.stats().calls, 2) << "the rejected call does not count";
  EXPECT_EQ(v.stats().tokens_evaluated, 0);

  // root, first[1], second[0]
  EXPECT_EQ(v.live_states(), 3u);
  v.release(first[1].state);
  EXPECT_THROW(v.release(first[1].state), std::invalid_argument);
  EXPECT_THROW(v.release(12345), std::invalid_argument);
  EXPECT_EQ(v.live_states(), 2u);
}

TEST(CheckerStepVerifier, AParentCanBeCopiedAndConsumedInOneCall) {
  CheckerStepVerifier v([](const std::string&, const std::vector<std::string>& steps) {
    std::string all;
    for (const auto& s : steps) all += s;
    return all == "ab" ? 1.0 : 0.0;
  });
  const auto base = v.extend({{v.root("p"), {"a"}, true}})[0].state;
  // The consuming extension comes first in the list: the copying one still sees the parent.
  const auto out = v.extend({{base, {"b"}, true}, {base, {"c"}}});
  EXPECT_EQ(out[0].step_scores, std::vector<double>{1.0});
  EXPECT_EQ(out[1].step_scores, std::vector<double>{0.0});
  EXPECT_NE(out[0].state, out[1].state);
  EXPECT_EQ(v.live_states(), 2u);
}

TEST(CheckerStepVerifier, MisuseChangesNothing) {
  CheckerStepVerifier v([](const std::string&, const std::vector<std::string>&) { return 0.5; });
  const VerifierState root = v.root("p");
  EXPECT_THROW(v.extend({{root, {"a"}, true}, {root, {"b"}, true}}), std::invalid_argument);
  EXPECT_THROW(v.extend({{root, {"a"}}, {root + 100, {"b"}}}), std::invalid_argument);
  EXPECT_EQ(v.live_states(), 1u);
  EXPECT_EQ(v.extend({{root, {"a"}}})[0].step_scores, std::vector<double>{0.5}) << "root is still there";
  EXPECT_THROW(CheckerStepVerifier(nullptr), std::invalid_argument);
}

}  // namespace
}  // namespace ponder
