// Diversity of a set of returned stories (issue 5): are a search's n candidates n different
// stories or n copies of one? Two views: surface (distinct-n, repeated wording) and meaning
// (embedding distance, the same story in other words).
#pragma once

#include <string>
#include <vector>

#include "verify/story/embedding.h"

namespace ponder {

struct DiversityStats {
  double distinct_1 = 0.0;  // distinct_n(stories, 1)
  double distinct_2 = 0.0;  // distinct_n(stories, 2)
  // Mean over all pairs of stories of 1 - cos of their embeddings: 0 for identical stories, 1
  // for unrelated ones (cos 0), up to 2. 0 for fewer than two stories (no pair).
  double mean_pairwise_distance = 0.0;
};

// Distinct n-grams / total n-grams, over all stories together: the standard distinct-n, in
// (0, 1], 1 when no n-gram repeats within or across stories. Tokens are the stories'
// whitespace-separated words, ASCII-lowercased ("The" and "the" are one word; punctuation stays
// attached, "end." differs from "end"); n-grams do not span two stories. 0 when there are no
// n-grams at all (every story shorter than n words). Throws std::invalid_argument for n < 1.
double distinct_n(const std::vector<std::string>& stories, int n);

// distinct-1, distinct-2 and the mean pairwise embedding distance of the whole stories, with one
// embed call over the distinct stories (identical stories are embedded once; their distance is
// 0). Throws what embed throws, and std::invalid_argument when it returns the wrong number of
// vectors or vectors of different dimensions.
DiversityStats diversity(const std::vector<std::string>& stories, const EmbedFunction& embed);

}  // namespace ponder
