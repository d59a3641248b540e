// Sentence segmentation for story generation (issue 5): a story search takes one sentence per
// step, so it needs to split text into sentences and to tell, while a step streams in, when its
// first sentence is complete. ICU's sentence rules (Unicode UAX #29, with English abbreviation
// suppression) do the segmenting; this file only maps them onto byte offsets of UTF-8 text and
// decides when a sentence at the end of a stream is finished.
//
// Fixed-size chunk steps need nothing here: the search counts them in tokens (max_tokens per
// step), since the engine stops generation by token count anyway.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ponder::story {

// Splits UTF-8 text into sentences. The pieces concatenate exactly to the input: whitespace after
// a sentence stays with it, as ICU places it, and a piece ICU would leave holding only
// whitespace (the blank line between paragraphs) joins the sentence before it, or the first
// sentence when the text starts with it, so that every piece holds some text. Empty input gives
// no pieces; input that is all whitespace gives one piece.
// "Mr. Smith went home." is one sentence (English abbreviations do not end sentences).
// Invalid UTF-8 does not fail: each bad byte sequence reads as U+FFFD, which segments like a
// letter, and the pieces still cut the original bytes, so they still concatenate to the input.
// Throws std::length_error past 2 GiB (ICU offsets are 32-bit) and std::runtime_error if ICU
// cannot make a sentence iterator.
std::vector<std::string> split_sentences(std::string_view text);

// The byte offset where the first complete sentence of text ends, its trailing whitespace
// included (the length of split_sentences(text)[0], once complete); std::string_view::npos while
// the text holds no complete sentence yet. A search streaming a sentence step calls this on the
// step's text so far and stops the step at the offset, carrying any rest into the next step.
//
// ICU treats the end of text as a sentence end, so a sentence that runs to the end of the text
// counts as complete only when
//   - it ends in whitespace (the model has finished the run of terminators and closing quotes,
//     e.g. "Wait..." may still grow into "Wait...?\""), and
//   - ICU would still end the sentence there were a new sentence to start right after it: the
//     text followed by a capital letter breaks at the end of the text. This takes ". ! ?" and
//     the like, with closing quotes or brackets after them, or a paragraph break; it refuses
//     abbreviations ("Mr. ") and text without a terminator ("Once upon a time ").
// A sentence followed by more text is complete where ICU ends it. ICU would not end a sentence
// before a lowercase word ("It cost 3. the end"); a sentence complete by the rule above ends the
// step even if the model would have gone on in lowercase, which stories rarely do.
std::size_t first_sentence_end(std::string_view text);

// The sentences of split_sentences(text) with surrounding whitespace trimmed, empty ones left out:
// what the story scorers read.
std::vector<std::string> trimmed_sentences(std::string_view text);

// The sentences of many stories, each distinct sentence once (stories of one search share most
// of theirs), for scorers that embed or judge each sentence once.
struct StorySentences {
  std::vector<std::string> distinct;              // in order of first appearance
  std::vector<std::vector<std::size_t>> of_story; // per story: its sentences as indices into distinct
};
StorySentences story_sentences(const std::vector<std::string>& stories);

}  // namespace ponder::story
