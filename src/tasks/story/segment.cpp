// Sentence segmentation for story steps (segment.h): ICU's sentence break iterator run over the
// UTF-8 bytes through a UText, so that every boundary ICU reports is already a byte offset into
// the caller's text and no UTF-16 copy or offset mapping is needed.
#include "tasks/story/segment.h"

#include <unordered_map>

#include <unicode/brkiter.h>
#include <unicode/uchar.h>
#include <unicode/utext.h>
#include <unicode/utf8.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>

namespace ponder::story {
namespace {

// Making a sentence iterator loads rule data and the abbreviation list, which costs far more than
// segmenting a few sentences; a BreakIterator is not thread-safe, so each thread keeps its own.
icu::BreakIterator& sentence_iterator() {
  thread_local std::unique_ptr<icu::BreakIterator> iterator = [] {
    UErrorCode status = U_ZERO_ERROR;
    // ss=standard turns on ICU's list of English abbreviations ("Mr.", "Dr.", ...) that do not
    // end a sentence; the plain rules would break after "Mr.".
    std::unique_ptr<icu::BreakIterator> made(
        icu::BreakIterator::createSentenceInstance(icu::Locale("en@ss=standard"), status));
    if (U_FAILURE(status) || !made)
      throw std::runtime_error(std::string("ICU sentence iterator: ") + u_errorName(status));
    return made;
  }();
  return *iterator;
}

// ICU's sentence boundaries in text, as byte offsets after 0, ending with text.size().
std::vector<std::size_t> icu_boundaries(std::string_view text) {
  if (text.size() > static_cast<std::size_t>(std::numeric_limits<int32_t>::max()))
    throw std::length_error("split_sentences: text over 2 GiB");
  UErrorCode status = U_ZERO_ERROR;
  // A UText over UTF-8 indexes by byte; invalid sequences read as U+FFFD.
  std::unique_ptr<UText, decltype(&utext_close)> utext(
      utext_openUTF8(nullptr, text.data(), static_cast<int64_t>(text.size()), &status),
      &utext_close);
  icu::BreakIterator& iterator = sentence_iterator();
  iterator.setText(utext.get(), status);
  if (U_FAILURE(status))
    throw std::runtime_error(std::string("ICU sentence segmentation: ") + u_errorName(status));
  std::vector<std::size_t> boundaries;
  iterator.first();
  for (int32_t at = iterator.next(); at != icu::BreakIterator::DONE; at = iterator.next())
    boundaries.push_back(static_cast<std::size_t>(at));
  // The iterator keeps a pointer to the UText, which closes on return: detach it.
  UText empty = UTEXT_INITIALIZER;
  utext_openUTF8(&empty, "", 0, &status);
  iterator.setText(&empty, status);
  utext_close(&empty);
  return boundaries;
}

bool is_all_whitespace(std::string_view text) {
  int32_t at = 0;
  const auto length = static_cast<int32_t>(text.size());
  while (at < length) {
    UChar32 c;
    U8_NEXT(text.data(), at, length, c);
    if (c < 0 || !u_isUWhiteSpace(c)) return false;
  }
  return true;
}

bool ends_with_whitespace(std::string_view text) {
  if (text.empty()) return false;
  auto at = static_cast<int32_t>(text.size());
  UChar32 c;
  U8_PREV(text.data(), 0, at, c);
  return c >= 0 && u_isUWhiteSpace(c);
}

// The ends of the sentences of text: ICU's boundaries, with whitespace-only pieces joined to the
// sentence before them (or after them, at the start of the text).
std::vector<std::size_t> sentence_ends(std::string_view text) {
  std::vector<std::size_t> ends;
  std::size_t start = 0;
  for (std::size_t boundary : icu_boundaries(text)) {
    const bool blank = is_all_whitespace(text.substr(start, boundary - start));
    if (blank && !ends.empty())
      ends.back() = boundary;  // trailing blank lines stay with the sentence before
    else if (!blank)
      ends.push_back(boundary);  // a leading blank piece (not yet in ends) joins this sentence
    start = boundary;
  }
  // All whitespace: one piece, so that the pieces still cover the text.
  if (ends.empty() && !text.empty()) ends.push_back(text.size());
  return ends;
}

}  // namespace

std::vector<std::string> split_sentences(std::string_view text) {
  std::vector<std::string> sentences;
  std::size_t start = 0;
  for (std::size_t end : sentence_ends(text)) {
    sentences.emplace_back(text.substr(start, end - start));
    start = end;
  }
  return sentences;
}

std::size_t first_sentence_end(std::string_view text) {
  if (is_all_whitespace(text)) return std::string_view::npos;
  const std::size_t end = sentence_ends(text).front();
  if (end < text.size()) return end;  // ICU has seen the next sentence begin
  // The sentence runs to the end of the text, where ICU always breaks: see whether it would
  // still break there with a new sentence starting right after.
  if (!ends_with_whitespace(text)) return std::string_view::npos;
  std::string followed(text);
  followed += 'A';
  return sentence_ends(followed).front() == text.size() ? text.size() : std::string_view::npos;
}

std::vector<std::string> trimmed_sentences(std::string_view text) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  std::vector<std::string> out;
  for (const std::string& piece : split_sentences(text)) {
    const std::size_t begin = piece.find_first_not_of(kSpace);
    if (begin == std::string::npos) continue;  // an all-whitespace text's single piece
    out.push_back(piece.substr(begin, piece.find_last_not_of(kSpace) + 1 - begin));
  }
  return out;
}

StorySentences story_sentences(const std::vector<std::string>& stories) {
  StorySentences out;
  std::unordered_map<std::string, std::size_t> index_of;
  out.of_story.resize(stories.size());
  for (std::size_t i = 0; i < stories.size(); ++i) {
    for (std::string& sentence : trimmed_sentences(stories[i])) {
      auto [it, inserted] = index_of.try_emplace(sentence, out.distinct.size());
      if (inserted) out.distinct.push_back(std::move(sentence));
      out.of_story[i].push_back(it->second);
    }
  }
  return out;
}

}  // namespace ponder::story
