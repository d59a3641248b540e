// Whether a predicted final answer of a math problem equals the gold answer: normalisation,
// numbers, symbolic equality through GiNaC, and structured answers (intervals, tuples, sets,
// matrices, equations, text). Used by `ponder grade` and to mark eval results correct.
//
// Both answers are read by the LaTeX parser (latex.h) and compared as values:
//   - expressions by value: with no variables, as numbers; with variables, at five sample
//     points (each variable a fixed rational, three positive points and two negative, where a
//     negative point counts only when both sides are real there: sqrt(x^2) is |x|, not x).
//     Rationals evaluate exactly, so polynomials and rational functions compare exactly; other
//     functions evaluate to 30 digits. This also proves identities that no normal form finds
//     (\cot x = \cos x / \sin x) and never expands a power, whatever its exponent;
//   - exact answers (no decimal point on either side) must agree exactly (58500 is not 58505);
//     when either side is written with a decimal point it is an approximation and agrees within
//     `relative_tolerance` (default 1e-4: 2.83 is not \sqrt{8}, 2.8284 is);
//   - tuples and intervals by brackets and items in order ("[1,2)" is not "[1,2]"); sets, lists
//     ("1, 2" is a set: MATH's "enter all solutions") and unions in any order, a one-element set
//     being its element; matrices entry by entry, a column or row vector also against a tuple;
//   - "x = 5" against 5 by its solved side; two equations when one is a non-zero multiple of
//     the other ("2x + y = 0" is "y = -2x"); inequalities with one variable are intervals;
//   - a numeral in base b ("204_5") by value, or by its digits against an answer without a base;
//   - text case-insensitively.
// Where notation is ambiguous both readings count: "1,000" is 1000 or the list {1, 0}; "20\%" is
// 20 or 1/5.
#pragma once

#include <string>
#include <string_view>

namespace ponder {

struct GradeOptions {
  // Two numbers, at least one written with a decimal point, are equal when
  // |a - b| <= relative_tolerance * max(|a|, |b|). Exact answers must agree exactly.
  double relative_tolerance = 1e-4;
  // Longer answers (in bytes, either side) are not parsed: "not equivalent", reason "too long".
  size_t max_length = 2000;
  // Answers that are the same string after normalize_answer (answer.h) are equivalent without
  // being parsed. Off, every answer goes through the parser (for checking the parser).
  bool compare_text_first = true;
};

struct Grade {
  bool equivalent = false;
  std::string reason;  // one line: why equivalent or not (for people and for --jsonl output)
};

// Compares `pred` with `gold`. Never throws, hangs or exhausts memory on any input: what cannot
// be compared within bounded work is "not equivalent" with the reason. Thread-safe (calls are
// serialized: GiNaC is not thread-safe).
Grade grade_answer(std::string_view gold, std::string_view pred, const GradeOptions& options = {});

}  // namespace ponder
