// Genre-judge options that stories260K can answer: its 512-token vocabulary has no "yes", so the
// question asks "big or little?", two words it knows as single tokens.
#pragma once

#include "verify/story/genre.h"

namespace ponder::testing {

inline GenreScorerOptions stories_genre_judge() {
  GenreScorerOptions o;
  o.question_template = "Once upon a time, there was a {genre} story. {sentence} Was it big or little? It was";
  o.yes = "big";
  o.no = "little";
  return o;
}

}  // namespace ponder::testing
