// The math grader (grade.h): both answers are read by the LaTeX parser (latex.h) into values,
// and the values are compared by kind; expressions by evaluation, exactly where they are exact.
#include "tasks/math/grade.h"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <optional>
#include <sstream>
#include <vector>

#include "tasks/math/answer.h"
#include "tasks/math/latex.h"

namespace ponder {
namespace {

using GiNaC::ex;
using GiNaC::ex_to;
using GiNaC::is_a;
using GiNaC::numeric;
using Kind = AnswerValue::Kind;

constexpr int kEvaluationDigits = 30;
// Exact answers whose values needed floating point (radicals, pi) agree to this relative
// precision, or differ by less than kRoundingFloor near zero (sin(pi) evaluates to 1e-31).
constexpr double kExactRelativeTolerance = 1e-12;
constexpr double kRoundingFloor = 1e-20;
constexpr size_t kPositivePoints = 3;
constexpr size_t kNegativePoints = 2;
constexpr size_t kBriefLength = 60;

std::string truncated(std::string s) {
  if (s.size() > kBriefLength) s = s.substr(0, kBriefLength - 3) + "...";
  return s;
}

std::string brief(const ex& e) {
  std::ostringstream out;
  out << e;
  return truncated(out.str());
}

std::string brief(const AnswerValue& v) {
  std::string out;
  auto items = [&](std::string_view separator) {
    for (size_t i = 0; i < v.items.size(); ++i) out += (i ? std::string(separator) : "") + brief(v.items[i]);
  };
  switch (v.kind) {
    case Kind::kExpression: return brief(v.expression);
    case Kind::kTuple:
      out += v.open;
      items(", ");
      out += v.close;
      break;
    case Kind::kSet:
      out += "{";
      items(", ");
      out += "}";
      break;
    case Kind::kUnion: items(" U "); break;
    case Kind::kMatrix: out = "a " + std::to_string(v.rows) + "x" + std::to_string(v.cols) + " matrix"; break;
    case Kind::kEquation: items(" = "); break;
    case Kind::kInequality: {
      static const char* const kSigns[] = {" < ", " <= ", " > ", " >= ", " != "};
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i > 0) out += kSigns[static_cast<int>(v.inequalities[i - 1])];
        out += brief(v.items[i]);
      }
      break;
    }
    case Kind::kNumeral: out = v.text + "_" + std::to_string(v.base); break;
    case Kind::kText: out = "\"" + v.text + "\""; break;
  }
  return truncated(out);
}

std::string kind_name(Kind kind) {
  switch (kind) {
    case Kind::kExpression: return "an expression";
    case Kind::kTuple: return "a tuple or interval";
    case Kind::kSet: return "a set";
    case Kind::kUnion: return "a union";
    case Kind::kMatrix: return "a matrix";
    case Kind::kEquation: return "an equation";
    case Kind::kInequality: return "an inequality";
    case Kind::kNumeral: return "a numeral";
    case Kind::kText: return "text";
  }
  return "a value";
}

uint64_t mix(uint64_t x) {  // splitmix64's finalizer: fixed, well-spread sample values
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Each variable a fixed non-integer rational in (0, 4), different per variable and point, so that
// x and y never take one value everywhere; the last kNegativePoints points are negative.
std::vector<GiNaC::exmap> sample_points(const SymbolTable& symbols) {
  static constexpr long kDenominators[] = {7, 11, 13, 17, 19, 23, 29, 31};
  std::vector<GiNaC::exmap> points(kPositivePoints + kNegativePoints);
  uint64_t index = 0;
  for (const auto& [name, symbol] : symbols.symbols()) {
    for (size_t k = 0; k < points.size(); ++k) {
      const uint64_t h = mix(index * 16 + k);
      const long denominator = kDenominators[h % 8];
      long numerator = 1 + static_cast<long>((h >> 8) % static_cast<uint64_t>(4 * denominator));
      if (numerator % denominator == 0) ++numerator;
      const numeric value(numerator, denominator);
      points[k][symbol] = k < kPositivePoints ? value : -value;
    }
    ++index;
  }
  return points;
}

const AnswerValue& unwrap(const AnswerValue& v) {
  const AnswerValue* p = &v;
  while ((p->kind == Kind::kSet || p->kind == Kind::kUnion) && p->items.size() == 1) p = &p->items[0];
  return *p;
}

class Comparator {
 public:
  Comparator(const SymbolTable& symbols, const GradeOptions& options, const LatexLimits& limits)
      : infinity_(symbols.infinity()), points_(sample_points(symbols)), options_(options), limits_(limits) {}

  Grade compare(const AnswerValue& gold_value, const AnswerValue& pred_value) {
    const AnswerValue& gold = unwrap(gold_value);
    const AnswerValue& pred = unwrap(pred_value);
    if (gold.kind == Kind::kEquation && pred.kind != Kind::kEquation) {
      if (const AnswerValue* side = solved_side(gold)) return compare(*side, pred);
    }
    if (pred.kind == Kind::kEquation && gold.kind != Kind::kEquation) {
      if (const AnswerValue* side = solved_side(pred)) return compare(gold, *side);
    }
    if (gold.kind == Kind::kNumeral || pred.kind == Kind::kNumeral) return numerals(gold, pred);
    if (gold.kind == Kind::kMatrix && pred.kind == Kind::kTuple) return vector_and_tuple(gold, pred);
    if (gold.kind == Kind::kTuple && pred.kind == Kind::kMatrix) return vector_and_tuple(pred, gold);
    if (gold.kind != pred.kind) return {false, "gold is " + kind_name(gold.kind) + ", pred is " + kind_name(pred.kind)};
    switch (gold.kind) {
      case Kind::kExpression:
        return expressions(gold.expression, pred.expression, gold.approximate || pred.approximate);
      case Kind::kTuple: return tuples(gold, pred);
      case Kind::kSet:
      case Kind::kUnion: return sets(gold, pred);
      case Kind::kMatrix: return matrices(gold, pred);
      case Kind::kEquation: return equations(gold, pred);
      case Kind::kInequality: return inequalities(gold, pred);
      case Kind::kText:
        if (gold.text == pred.text) return {true, "same text"};
        return {false, "different text: " + brief(gold) + " vs " + brief(pred)};
      case Kind::kNumeral: break;  // handled above
    }
    return {false, "cannot compare " + kind_name(gold.kind)};
  }

 private:
  // "x = 5" stands for 5: the side opposite a lone variable.
  const AnswerValue* solved_side(const AnswerValue& equation) const {
    auto variable = [&](const AnswerValue& v) {
      return v.kind == Kind::kExpression && is_a<GiNaC::symbol>(v.expression) && !v.expression.is_equal(infinity_);
    };
    if (variable(equation.items[0])) return &equation.items[1];
    if (variable(equation.items[1])) return &equation.items[0];
    return nullptr;
  }

  bool has_variables(const ex& e) const {
    for (auto it = e.preorder_begin(); it != e.preorder_end(); ++it) {
      if (is_a<GiNaC::symbol>(*it) && !it->is_equal(infinity_)) return true;
    }
    return false;
  }

  bool close(const numeric& a, const numeric& b, bool approximate) const {
    if (!approximate && a.is_crational() && b.is_crational()) return a == b;
    const numeric difference = abs(a - b);
    const numeric scale = std::max(abs(a), abs(b));
    if (approximate) return difference <= numeric(options_.relative_tolerance) * scale;
    return difference <= numeric(kExactRelativeTolerance) * scale || difference <= numeric(kRoundingFloor);
  }

  std::optional<numeric> value_at(const ex& e, size_t point, std::string* why) const {
    return evaluate(e, points_[point], limits_, why);
  }

  // A sample point where both values exist and, for a negative point, are real.
  bool usable(size_t point, const std::optional<numeric>& a, const std::optional<numeric>& b) const {
    if (!a || !b) return false;
    return point < kPositivePoints || (a->is_real() && b->is_real());
  }

  std::string at_point(size_t point) const {
    std::string where;
    for (const auto& [symbol, value] : points_[point]) {
      where += (where.empty() ? "" : ", ") + brief(symbol) + "=" + brief(value);
    }
    return truncated(where);
  }

  Grade expressions(const ex& gold, const ex& pred, bool approximate) const {
    if (gold.is_equal(pred)) return {true, has_variables(gold) ? "same expression" : "same value"};
    if (gold.has(infinity_) || pred.has(infinity_)) {
      // \infty is only ever equal to itself, up to GiNaC's simplification (-\infty, 2\infty).
      if ((gold - pred).is_zero()) return {true, "same expression"};
      return {false, "different values: " + brief(gold) + " vs " + brief(pred)};
    }
    if (!has_variables(gold) && !has_variables(pred)) {
      std::string why;
      const auto g = value_at(gold, 0, &why);
      if (!g) return {false, "cannot evaluate gold: " + why};
      const auto p = value_at(pred, 0, &why);
      if (!p) return {false, "cannot evaluate pred: " + why};
      if (close(*g, *p, approximate)) return {true, approximate ? "equal within tolerance" : "equal values"};
      return {false, "different values: " + brief(gold) + " vs " + brief(pred)};
    }
    size_t compared = 0;
    for (size_t point = 0; point < points_.size(); ++point) {
      const auto g = value_at(gold, point, nullptr);
      const auto p = value_at(pred, point, nullptr);
      if (!usable(point, g, p)) continue;
      if (!close(*g, *p, approximate)) {
        return {false, "different: " + brief(gold) + " vs " + brief(pred) + " differ at " + at_point(point)};
      }
      ++compared;
    }
    if (compared == 0) return {false, "cannot evaluate " + brief(gold) + " and " + brief(pred) + " at sample points"};
    return {true, "equal at " + std::to_string(compared) + " sample points"};
  }

  // Whether d1 is a constant multiple of d2 (positive when `positive`): the same equations or
  // inequalities (`what`). Compared where both are defined; zero must be zero on both sides.
  Grade proportional(const ex& d1, const ex& d2, bool approximate, bool positive, const std::string& what) const {
    if (d1.is_equal(d2)) return {true, "identical " + what};
    std::optional<numeric> ratio;
    size_t compared = 0;
    const numeric zero = 0;
    for (size_t point = 0; point < points_.size(); ++point) {
      const auto a = value_at(d1, point, nullptr);
      const auto b = value_at(d2, point, nullptr);
      if (!usable(point, a, b)) continue;
      ++compared;
      const bool a_zero = close(*a, zero, approximate), b_zero = close(*b, zero, approximate);
      if (a_zero && b_zero) continue;
      if (a_zero != b_zero) return {false, "different " + what + ": one holds at " + at_point(point)};
      const numeric r = *a / *b;
      if (positive && !(r.is_real() && r.is_positive())) return {false, "different " + what + ": opposite directions"};
      if (!ratio) {
        ratio = r;
      } else if (!close(r, *ratio, approximate)) {
        return {false, "different " + what};
      }
    }
    if (compared == 0) return {false, "cannot evaluate the " + what + " at sample points"};
    return {true, "equivalent " + what};
  }

  Grade equations(const AnswerValue& gold, const AnswerValue& pred) const {
    for (const AnswerValue* e : {&gold, &pred}) {
      if (e->items[0].kind != Kind::kExpression || e->items[1].kind != Kind::kExpression) {
        return {false, "cannot compare equations of structures"};
      }
    }
    const bool approximate = gold.items[0].approximate || gold.items[1].approximate || pred.items[0].approximate ||
                             pred.items[1].approximate;
    return proportional(gold.items[0].expression - gold.items[1].expression,
                        pred.items[0].expression - pred.items[1].expression, approximate, false, "equations");
  }

  // a < b as b - a > 0: the difference and whether it is strict; != as a - b != 0.
  static std::pair<ex, Inequality> positive_form(const AnswerValue& v) {
    const ex& lhs = v.items[0].expression;
    const ex& rhs = v.items[1].expression;
    switch (v.inequalities[0]) {
      case Inequality::kLess: return {rhs - lhs, Inequality::kGreater};
      case Inequality::kLessEqual: return {rhs - lhs, Inequality::kGreaterEqual};
      default: return {lhs - rhs, v.inequalities[0]};
    }
  }

  static Inequality flipped(Inequality r) {
    switch (r) {
      case Inequality::kLess: return Inequality::kGreater;
      case Inequality::kLessEqual: return Inequality::kGreaterEqual;
      case Inequality::kGreater: return Inequality::kLess;
      case Inequality::kGreaterEqual: return Inequality::kLessEqual;
      case Inequality::kNotEqual: return Inequality::kNotEqual;
    }
    return r;
  }

  // One inequality: the same up to a positive factor ("x + y > 1" is "2x + 2y > 2"). A chain
  // ("a < b < c"): the same relations between equal items, read forwards or backwards.
  Grade inequalities(const AnswerValue& gold, const AnswerValue& pred) {
    if (gold.items.size() == 2 && pred.items.size() == 2) {
      const auto [g, g_relation] = positive_form(gold);
      const auto [p, p_relation] = positive_form(pred);
      if (g_relation != p_relation) return {false, "different relations: " + brief(gold) + " vs " + brief(pred)};
      const bool approximate = gold.items[0].approximate || gold.items[1].approximate || pred.items[0].approximate ||
                               pred.items[1].approximate;
      return proportional(g, p, approximate, g_relation != Inequality::kNotEqual, "inequalities");
    }
    if (gold.inequalities == pred.inequalities) return items_in_order(gold, pred);
    AnswerValue backwards = pred;
    std::reverse(backwards.items.begin(), backwards.items.end());
    std::reverse(backwards.inequalities.begin(), backwards.inequalities.end());
    for (Inequality& r : backwards.inequalities) r = flipped(r);
    if (gold.inequalities == backwards.inequalities) return items_in_order(gold, backwards);
    return {false, "different relations: " + brief(gold) + " vs " + brief(pred)};
  }

  Grade items_in_order(const AnswerValue& gold, const AnswerValue& pred) {
    if (gold.items.size() != pred.items.size()) {
      return {false, std::to_string(gold.items.size()) + " items vs " + std::to_string(pred.items.size())};
    }
    for (size_t i = 0; i < gold.items.size(); ++i) {
      const Grade item = compare(gold.items[i], pred.items[i]);
      if (!item.equivalent) return {false, "item " + std::to_string(i + 1) + ": " + item.reason};
    }
    return {true, "same " + std::to_string(gold.items.size()) + " items in order"};
  }

  Grade tuples(const AnswerValue& gold, const AnswerValue& pred) {
    if (gold.open != pred.open || gold.close != pred.close) {
      return {false, "different brackets: " + brief(gold) + " vs " + brief(pred)};
    }
    return items_in_order(gold, pred);
  }

  Grade vector_and_tuple(const AnswerValue& matrix, const AnswerValue& tuple) {
    if (matrix.rows != 1 && matrix.cols != 1) return {false, "a matrix vs a tuple"};
    return items_in_order(matrix, tuple);
  }

  Grade matrices(const AnswerValue& gold, const AnswerValue& pred) {
    if (gold.rows != pred.rows || gold.cols != pred.cols)
      return {false, "different shapes: " + brief(gold) + " vs " + brief(pred)};
    return items_in_order(gold, pred);
  }

  // Each element of one is equal to an element of the other.
  Grade sets(const AnswerValue& gold, const AnswerValue& pred) {
    std::vector<std::optional<bool>> equal(gold.items.size() * pred.items.size());
    auto match = [&](size_t i, size_t j) {
      auto& known = equal[i * pred.items.size() + j];
      if (!known) known = compare(gold.items[i], pred.items[j]).equivalent;
      return *known;
    };
    for (size_t i = 0; i < gold.items.size(); ++i) {
      bool found = false;
      for (size_t j = 0; j < pred.items.size() && !found; ++j) found = match(i, j);
      if (!found) return {false, "gold's " + brief(gold.items[i]) + " is not in pred"};
    }
    for (size_t j = 0; j < pred.items.size(); ++j) {
      bool found = false;
      for (size_t i = 0; i < gold.items.size() && !found; ++i) found = match(i, j);
      if (!found) return {false, "pred's " + brief(pred.items[j]) + " is not in gold"};
    }
    return {true, "same " + std::to_string(gold.items.size()) + " elements"};
  }

  // "204_5" is 54, and is "204" written without its base.
  Grade numerals(const AnswerValue& gold, const AnswerValue& pred) {
    if (gold.kind == Kind::kNumeral && pred.kind == Kind::kNumeral) {
      if (gold.expression.is_equal(pred.expression)) return {true, "same number"};
      return {false, "different numbers: " + brief(gold) + " vs " + brief(pred)};
    }
    const AnswerValue& numeral = gold.kind == Kind::kNumeral ? gold : pred;
    const AnswerValue& other = gold.kind == Kind::kNumeral ? pred : gold;
    if (other.kind != Kind::kExpression) return {false, "a numeral vs " + kind_name(other.kind)};
    if (expressions(numeral.expression, other.expression, other.approximate).equivalent) return {true, "same value"};
    const bool decimal_digits = std::all_of(numeral.text.begin(), numeral.text.end(),
                                            [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
    if (decimal_digits) {
      SymbolTable none;
      const LatexParse digits = parse_answer(numeral.text, none, limits_);
      if (!digits.readings.empty() &&
          expressions(digits.readings[0].value.expression, other.expression, other.approximate).equivalent) {
        return {true, "same digits, base " + std::to_string(numeral.base) + " left out"};
      }
    }
    return {false, "different numbers: " + brief(numeral) + " vs " + brief(other)};
  }

  ex infinity_;
  std::vector<GiNaC::exmap> points_;
  const GradeOptions& options_;
  const LatexLimits& limits_;
};

// Evaluation precision for the duration of one grade.
class DigitsScope {
 public:
  explicit DigitsScope(long digits) : saved_(GiNaC::Digits) { GiNaC::Digits = digits; }
  ~DigitsScope() { GiNaC::Digits = saved_; }
  DigitsScope(const DigitsScope&) = delete;
  DigitsScope& operator=(const DigitsScope&) = delete;

 private:
  long saved_;
};

bool blank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

}  // namespace

Grade grade_answer(std::string_view gold, std::string_view pred, const GradeOptions& options) {
  if (gold.size() > options.max_length || pred.size() > options.max_length) {
    return {false, "too long (over " + std::to_string(options.max_length) + " bytes)"};
  }
  if (blank(gold)) return {false, "empty gold answer"};
  if (blank(pred)) return {false, "empty prediction"};
  if (options.compare_text_first && normalize_answer(gold) == normalize_answer(pred)) {
    return {true, "same answer after normalization"};
  }
  static std::mutex mutex;
  const std::lock_guard<std::mutex> lock(mutex);
  const DigitsScope digits(kEvaluationDigits);
  try {
    SymbolTable symbols;
    LatexLimits limits;
    limits.max_length = options.max_length;
    const LatexParse g = parse_answer(gold, symbols, limits);
    if (g.readings.empty()) return {false, "cannot read gold: " + g.error};
    const LatexParse p = parse_answer(pred, symbols, limits);
    if (p.readings.empty()) return {false, "cannot read pred: " + p.error};
    Comparator comparator(symbols, options, limits);
    std::optional<Grade> first;
    for (const AnswerReading& gr : g.readings) {
      for (const AnswerReading& pr : p.readings) {
        Grade grade = comparator.compare(gr.value, pr.value);
        if (grade.equivalent) {
          if (!gr.note.empty()) grade.reason += " (gold read with " + gr.note + ")";
          if (!pr.note.empty()) grade.reason += " (pred read with " + pr.note + ")";
          return grade;
        }
        if (!first) first = std::move(grade);
      }
    }
    return *first;
  } catch (const std::exception& e) {  // GiNaC's and CLN's errors (a pole, an overflow)
    return {false, std::string("cannot compare: ") + e.what()};
  }
}

}  // namespace ponder
