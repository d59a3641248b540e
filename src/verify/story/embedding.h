// What the story scorers (coherence.h, diversity.h) need of an embedding model: a function from
// texts to vectors, one per text, in order. A LlamaEmbedder's embed() fits (bind it in a
// lambda); tests pass fakes with hand-chosen vectors.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace ponder {

using EmbedFunction = std::function<std::vector<std::vector<float>>(const std::vector<std::string>&)>;

// Cosine similarity in [-1, 1]; the vectors need not be normalised. A zero vector has no
// direction, so its similarity to anything is 0. Throws std::invalid_argument when the
// dimensions differ.
double cosine_similarity(const std::vector<float>& a, const std::vector<float>& b);

// embed(texts), checked to give one vector per text (std::invalid_argument otherwise), so that
// a faulty embedder fails loudly instead of scoring the wrong texts.
std::vector<std::vector<float>> embed_checked(const EmbedFunction& embed, const std::vector<std::string>& texts);

// `embed` with a memo: a text embedded once is not embedded again by this function (or its
// copies, which share the memo). A story search scores every candidate's whole story each
// round, so without it each earlier sentence would be embedded again every round. Each call
// embeds its texts not yet memoised in one call of `embed`, each distinct text once.
EmbedFunction memoized(EmbedFunction embed);

}  // namespace ponder
