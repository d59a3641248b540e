// Final answers of math problems, written in LaTeX, as mathematical values: the parser behind the
// math grader (grade.h). An answer becomes a GiNaC expression ("\frac{3\sqrt2}{4}", "2x+1") or a
// structure of them (tuple or interval, set, union of intervals, matrix, equation, inequality),
// a numeral in another base ("1011_2") or text ("\text{Monday}"). Parsing runs under hard limits
// (LatexLimits, bounded.h), so that no input can make it hang or exhaust memory: what exceeds a
// limit is rejected with the reason, never computed.
//
// GiNaC is not thread-safe: use these from one thread at a time (grade_answer serializes itself).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <ginac/ginac.h>

#include "tasks/math/bounded.h"

namespace ponder {

// One name, one symbol: gold and prediction must share a table so that their x is the same x.
class SymbolTable {
 public:
  const GiNaC::symbol& get(const std::string& name);
  // \infty. Compared only structurally (-\infty = -\infty), never evaluated.
  const GiNaC::symbol& infinity() const { return infinity_; }
  const std::map<std::string, GiNaC::symbol>& symbols() const { return symbols_; }

 private:
  std::map<std::string, GiNaC::symbol> symbols_;
  GiNaC::symbol infinity_{"oo"};
};

enum class Inequality { kLess, kLessEqual, kGreater, kGreaterEqual, kNotEqual };

struct AnswerValue {
  enum class Kind {
    kExpression,  // expression
    kTuple,       // items between open and close: "(1,2)", "[0,1)"; tuples and intervals alike
    kSet,         // items, unordered: "\{1,2\}", and a list "1, 2" (MATH's "all solutions")
    kUnion,       // items (intervals, sets) joined by \cup, unordered
    kMatrix,      // rows x cols items, row-major: pmatrix, bmatrix, matrix
    kEquation,    // items = {lhs, rhs}
    kInequality,  // items, each related to the next by `inequalities`: "a < b", "a < b \le c"
    kNumeral,     // digits (as written) in base `base`; expression holds its value
    kText,        // text, as written
  };
  Kind kind = Kind::kExpression;
  GiNaC::ex expression;
  // Written with a decimal point ("2.83", "1.5\times10^3"): an approximation, compared with the
  // grader's tolerance; exact answers must agree exactly.
  bool approximate = false;
  char open = 0, close = 0;
  std::vector<AnswerValue> items;
  size_t rows = 0, cols = 0;
  std::vector<Inequality> inequalities;
  std::string text;
  int base = 10;
};

// How the answer was read; readings other than the first say so in `note` ("1,000" is the
// number 1000, or the list 1, 0; "20\%" is 20, or 1/5).
struct AnswerReading {
  AnswerValue value;
  std::string note;
};

struct LatexParse {
  std::vector<AnswerReading> readings;  // empty when the answer cannot be read
  std::string error;                    // why not
};

// Reads one final answer (the content of a \boxed{}, or a model's answer text). Notation that is
// not mathematics is dropped first: surrounding $, \left/\right, spacing (\! \, \; \quad),
// \displaystyle, \$ and units ("5 \text{ cm}^2", "12 inches").
//
// Expressions: integers and decimals (exact: 0.1 is 1/10, flagged approximate), "1e3",
// "1.5\times10^{3}", repeating decimals "0.\overline{3}", mixed numbers "2\frac{1}{2}" (= 5/2),
// \frac (also \dfrac \tfrac \cfrac and the shorthand \frac12), \sqrt{x} \sqrt[n]{x} (the real
// root of a negative number for odd n), powers x^2 x^{10}, +, -, \pm, \mp, \cdot, \times, *, /,
// \div, ':' (a ratio), implicit multiplication (2x, 2\pi, 3\sqrt2, (a)(b)), n!, \binom, |x|,
// \sin \cos \tan \cot \sec \csc and their inverses (\arcsin, \sin^{-1}), \sinh \cosh \tanh, \ln,
// \log (natural), \log_b, \exp; degrees (x^\circ) inside trigonometric functions, and dropped
// elsewhere ("30^\circ" is 30). Letters are variables, except i (the imaginary unit) and e
// (Euler's number); \pi; Greek letters and subscripted names (x_1) are variables; \overline{AB}
// is AB. Not read: \lfloor \lceil, \cap, \dots, \sum, \int, \lim, derivatives.
//
// Structures: "(a, b)" and "[a, b)" (tuples and intervals), "\{a, b\}", \emptyset, a top-level
// list "a, b" (a set; "\text{and}" separates too), \cup, \infty, pmatrix/bmatrix/matrix, "x = 5",
// "y = 2x + 3", "x \in [1, 2]" (the interval), inequalities ("x > 3" and "1 < x \le 2" are
// intervals; "f(2) < f(1) < f(4)" a chain), numerals "1011_2", "11_{10}", "152A_{11}". A whole
// answer of words ("\text{Monday}", "east") is text.
LatexParse parse_answer(std::string_view answer, SymbolTable& symbols, const LatexLimits& limits = {});

}  // namespace ponder
