// Story coherence (issue 5): how well each sentence of a story follows from the one before, read
// as the similarity of adjacent sentences' embeddings. Cheap and model-agnostic: one embed call
// scores a whole set of candidate stories, so a search can rank its returned stories with it.
#pragma once

#include <string>
#include <vector>

#include "verify/story/embedding.h"

namespace ponder {

// For each story: the mean over adjacent sentence pairs of (1 + cos) / 2, where cos is the cosine
// similarity of the two sentences' embeddings. The map puts the score in [0, 1] like the other
// story scores (1: every sentence points the same way as the one before; 0.5: unrelated, cos 0;
// 0: opposite), and is linear, so it is also (1 + mean cos) / 2.
//
// Sentences come from split_sentences (ICU's rules), with surrounding whitespace trimmed before
// embedding. A story of one sentence has no pair that could break, and scores 1: coherence
// measures breaks between sentences, and a single sentence has none (other scores, such as
// fluency or length, judge whether it is a good story). An empty or all-whitespace story scores 0.
//
// All sentences of all stories go to one embed call, each distinct sentence once. Throws what
// embed throws, and std::invalid_argument when it returns the wrong number of vectors or vectors
// of different dimensions.
std::vector<double> coherence_scores(const std::vector<std::string>& stories, const EmbedFunction& embed);

}  // namespace ponder
