// The LaTeX answer parser (latex.h): a recursive-descent parser straight over the characters
// (LaTeX macro arguments are characters: \frac12 is 1/2) after notation.h's clean-up, building
// GiNaC expressions only through bounded.h's checks. Every recursion counts its depth.
#include "tasks/math/latex.h"

#include <algorithm>
#include <functional>
#include <set>
#include <utility>

#include "tasks/math/notation.h"

namespace ponder {

using GiNaC::ex;
using GiNaC::ex_to;
using GiNaC::is_a;
using GiNaC::numeric;
using notation::is_digit;
using notation::is_letter;
using notation::is_space;
using notation::trim;

const GiNaC::symbol& SymbolTable::get(const std::string& name) {
  auto it = symbols_.find(name);
  if (it == symbols_.end()) it = symbols_.emplace(name, GiNaC::symbol(name)).first;
  return it->second;
}

namespace {

enum class Relation { kEqual, kIn, kLess, kLessEqual, kGreater, kGreaterEqual, kNotEqual };

Inequality to_inequality(Relation r) {
  switch (r) {
    case Relation::kLess: return Inequality::kLess;
    case Relation::kLessEqual: return Inequality::kLessEqual;
    case Relation::kGreater: return Inequality::kGreater;
    case Relation::kGreaterEqual: return Inequality::kGreaterEqual;
    default: return Inequality::kNotEqual;
  }
}

// A value met while parsing: an expression (several values after \pm), or a structure.
struct Term {
  std::vector<ex> values;
  bool approximate = false;
  std::optional<AnswerValue> structure;
};

Term expression_term(ex e, bool approximate = false) { return Term{{std::move(e)}, approximate, std::nullopt}; }

AnswerValue expression_value(const ex& e, bool approximate) {
  AnswerValue v;
  v.expression = e;
  v.approximate = approximate;
  return v;
}

struct FunctionSpec {
  std::string_view name;  // without the backslash
  std::function<ex(const ex&)> apply;
  std::string_view inverse;  // the function that ^{-1} names
  bool angle;                // takes an angle: degrees there are converted to radians
};

const std::vector<FunctionSpec>& functions() {
  static const std::vector<FunctionSpec> kFunctions = {
      {"sin", [](const ex& x) { return GiNaC::sin(x); }, "arcsin", true},
      {"cos", [](const ex& x) { return GiNaC::cos(x); }, "arccos", true},
      {"tan", [](const ex& x) { return GiNaC::tan(x); }, "arctan", true},
      {"cot", [](const ex& x) { return GiNaC::cos(x) / GiNaC::sin(x); }, "arccot", true},
      {"sec", [](const ex& x) { return 1 / GiNaC::cos(x); }, "", true},
      {"csc", [](const ex& x) { return 1 / GiNaC::sin(x); }, "", true},
      {"arcsin", [](const ex& x) { return GiNaC::asin(x); }, "", false},
      {"arccos", [](const ex& x) { return GiNaC::acos(x); }, "", false},
      {"arctan", [](const ex& x) { return GiNaC::atan(x); }, "", false},
      {"arccot", [](const ex& x) { return GiNaC::atan(1 / x); }, "", false},
      {"sinh", [](const ex& x) { return GiNaC::sinh(x); }, "", false},
      {"cosh", [](const ex& x) { return GiNaC::cosh(x); }, "", false},
      {"tanh", [](const ex& x) { return GiNaC::tanh(x); }, "", false},
      {"ln", [](const ex& x) { return GiNaC::log(x); }, "", false},
      {"log", [](const ex& x) { return GiNaC::log(x); }, "", false},
      {"exp", [](const ex& x) { return GiNaC::exp(x); }, "", false},
  };
  return kFunctions;
}

const FunctionSpec* find_function(std::string_view name) {
  for (const FunctionSpec& f : functions()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

constexpr std::string_view kGreek[] = {"alpha",  "beta",  "gamma",    "delta", "epsilon", "varepsilon", "zeta",
                                       "eta",    "theta", "vartheta", "iota",  "kappa",   "lambda",     "mu",
                                       "nu",     "xi",    "rho",      "sigma", "tau",     "upsilon",    "phi",
                                       "varphi", "chi",   "psi",      "omega", "Gamma",   "Delta",      "Theta",
                                       "Lambda", "Xi",    "Sigma",    "Phi",   "Psi",     "Omega"};

class Parser {
 public:
  Parser(std::string_view s, SymbolTable& symbols, const LatexLimits& limits)
      : s_(s), symbols_(symbols), limits_(limits) {}

  AnswerValue parse() {
    if (at_end()) throw MathError("empty answer");
    std::vector<Term> items = parse_list();
    if (!at_end()) fail("unexpected");
    if (items.size() == 1) return to_value(std::move(items[0]));
    return set_of(std::move(items));
  }

 private:
  // Counts nesting on the C++ stack: deep input is refused, never a stack overflow.
  class Nesting {
   public:
    explicit Nesting(Parser& p) : p_(p) {
      if (++p_.depth_ > p_.limits_.max_depth) {
        throw MathError("nested too deeply (over " + std::to_string(p_.limits_.max_depth) + " levels)");
      }
    }
    ~Nesting() { --p_.depth_; }
    Nesting(const Nesting&) = delete;
    Nesting& operator=(const Nesting&) = delete;

   private:
    Parser& p_;
  };

  // ---- scanning

  void skip_spaces() {
    while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
  }
  bool at_end() {
    skip_spaces();
    return pos_ >= s_.size();
  }
  char peek() {
    skip_spaces();
    return pos_ < s_.size() ? s_[pos_] : '\0';
  }
  bool accept(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  // The control word or symbol at the position, without its backslash ("frac", "{", "\\").
  std::string_view peek_command() {
    skip_spaces();
    if (pos_ + 1 >= s_.size() || s_[pos_] != '\\') return {};
    size_t end = pos_ + 1;
    if (!is_letter(s_[end])) return s_.substr(end, 1);
    while (end < s_.size() && is_letter(s_[end])) ++end;
    return s_.substr(pos_ + 1, end - pos_ - 1);
  }
  bool accept_command(std::string_view name) {
    if (peek_command() != name) return false;
    pos_ += 1 + name.size();
    return true;
  }
  void expect(char c, std::string_view what) {
    if (!accept(c)) fail("expected '" + std::string(1, c) + "' " + std::string(what) + ", found");
  }
  void expect_command(std::string_view name) {
    if (!accept_command(name)) fail("expected \\" + std::string(name) + ", found");
  }
  [[noreturn]] void fail(const std::string& what) {
    skip_spaces();
    if (pos_ >= s_.size()) throw MathError(what + " end of answer");
    throw MathError(what + " '" + std::string(s_.substr(pos_, 12)) + "' at " + std::to_string(pos_));
  }

  // ---- values

  ex as_expression(Term t, std::string_view where) {
    if (t.structure && t.structure->kind == AnswerValue::Kind::kNumeral) return t.structure->expression;
    if (t.structure) throw MathError("a tuple, set or matrix " + std::string(where));
    if (t.values.size() != 1) throw MathError("\\pm " + std::string(where));
    return t.values[0];
  }
  Term to_expression_term(Term t, std::string_view where) {
    if (t.structure && t.structure->kind == AnswerValue::Kind::kNumeral)
      return expression_term(t.structure->expression);
    if (t.structure) throw MathError("a tuple, set or matrix " + std::string(where));
    return t;
  }

  AnswerValue to_value(Term t) {
    if (t.structure) return std::move(*t.structure);
    if (t.values.size() == 1) return expression_value(t.values[0], t.approximate);
    return set_of({std::move(t)});
  }

  // A set, with each value of a \pm expression as an element.
  AnswerValue set_of(std::vector<Term> items) {
    AnswerValue set;
    set.kind = AnswerValue::Kind::kSet;
    for (Term& t : items) {
      if (t.structure) {
        set.items.push_back(std::move(*t.structure));
      } else {
        for (const ex& e : t.values) set.items.push_back(expression_value(e, t.approximate));
      }
    }
    if (set.items.size() > limits_.max_items)
      throw MathError("too many items (over " + std::to_string(limits_.max_items) + ")");
    return set;
  }

  AnswerValue item_value(Term t, std::string_view where) {
    if (!t.structure && t.values.size() != 1) throw MathError("\\pm " + std::string(where));
    return to_value(std::move(t));
  }

  // Each combination of the operands' values (\pm makes several), bounded.
  Term combine(Term a, Term b, std::string_view what, const std::function<std::vector<ex>(const ex&, const ex&)>& op) {
    a = to_expression_term(std::move(a), what);
    b = to_expression_term(std::move(b), what);
    Term out;
    out.approximate = a.approximate || b.approximate;
    for (const ex& x : a.values) {
      for (const ex& y : b.values) {
        for (ex& r : op(x, y)) {
          check_size(r, limits_);
          out.values.push_back(std::move(r));
        }
      }
    }
    if (out.values.size() > limits_.max_alternatives) {
      throw MathError("too many \\pm values (over " + std::to_string(limits_.max_alternatives) + ")");
    }
    return out;
  }
  Term combine1(Term a, Term b, std::string_view what, const std::function<ex(const ex&, const ex&)>& op) {
    return combine(std::move(a), std::move(b), what,
                   [&](const ex& x, const ex& y) { return std::vector<ex>{op(x, y)}; });
  }
  Term map_values(Term a, std::string_view what, const std::function<ex(const ex&)>& op) {
    a = to_expression_term(std::move(a), what);
    for (ex& e : a.values) {
      e = op(e);
      check_size(e, limits_);
    }
    return a;
  }

  // ---- grammar

  // item (',' item)*
  std::vector<Term> parse_list() {
    std::vector<Term> items;
    do {
      items.push_back(parse_item());
      if (items.size() > limits_.max_items)
        throw MathError("too many items (over " + std::to_string(limits_.max_items) + ")");
    } while (accept(','));
    return items;
  }

  std::optional<Relation> accept_relation() {
    const char c = peek();
    if (c == '=') return ++pos_, Relation::kEqual;
    if (c == '<' || c == '>') {
      ++pos_;
      if (pos_ < s_.size() && s_[pos_] == '=') return ++pos_, c == '<' ? Relation::kLessEqual : Relation::kGreaterEqual;
      return c == '<' ? Relation::kLess : Relation::kGreater;
    }
    if (c == '!' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '=') return pos_ += 2, Relation::kNotEqual;
    static const std::pair<std::string_view, Relation> kCommands[] = {{"le", Relation::kLessEqual},
                                                                      {"leq", Relation::kLessEqual},
                                                                      {"leqslant", Relation::kLessEqual},
                                                                      {"lt", Relation::kLess},
                                                                      {"ge", Relation::kGreaterEqual},
                                                                      {"geq", Relation::kGreaterEqual},
                                                                      {"geqslant", Relation::kGreaterEqual},
                                                                      {"gt", Relation::kGreater},
                                                                      {"ne", Relation::kNotEqual},
                                                                      {"neq", Relation::kNotEqual},
                                                                      {"in", Relation::kIn},
                                                                      {"approx", Relation::kEqual}};
    for (const auto& [name, relation] : kCommands) {
      if (accept_command(name)) return relation;
    }
    return std::nullopt;
  }

  // union (relation union)*
  Term parse_item() {
    std::vector<Term> operands{parse_union()};
    std::vector<Relation> relations;
    while (const auto r = accept_relation()) {
      relations.push_back(*r);
      operands.push_back(parse_union());
    }
    if (relations.empty()) return std::move(operands[0]);
    return relation_term(std::move(operands), relations);
  }

  std::optional<GiNaC::symbol> lone_symbol(const Term& t) const {
    if (t.structure || t.values.size() != 1 || !is_a<GiNaC::symbol>(t.values[0])) return std::nullopt;
    if (t.values[0].is_equal(symbols_.infinity())) return std::nullopt;
    return ex_to<GiNaC::symbol>(t.values[0]);
  }

  bool is_bound(const Term& t) const {
    return !t.structure && t.values.size() == 1 && !has_symbols_other_than_infinity(t.values[0]);
  }
  bool has_symbols_other_than_infinity(const ex& e) const {
    for (auto it = e.preorder_begin(); it != e.preorder_end(); ++it) {
      if (is_a<GiNaC::symbol>(*it) && !it->is_equal(symbols_.infinity())) return true;
    }
    return false;
  }

  AnswerValue interval(const Term& low, bool low_closed, const Term& high, bool high_closed) {
    AnswerValue v;
    v.kind = AnswerValue::Kind::kTuple;
    v.open = low_closed ? '[' : '(';
    v.close = high_closed ? ']' : ')';
    v.items = {expression_value(low.values[0], low.approximate), expression_value(high.values[0], high.approximate)};
    return v;
  }

  // "x = 5", "y = 2x + 3", "x \in [1,2]", "x > 3" (an interval), "1 < x \le 2" (an interval).
  Term relation_term(std::vector<Term> operands, const std::vector<Relation>& relations) {
    const auto is = [&](Relation r) {
      return std::all_of(relations.begin(), relations.end(), [&](Relation x) { return x == r; });
    };
    const auto upward = [](Relation r) { return r == Relation::kLess || r == Relation::kLessEqual; };
    const auto downward = [](Relation r) { return r == Relation::kGreater || r == Relation::kGreaterEqual; };
    const auto closed = [](Relation r) { return r == Relation::kLessEqual || r == Relation::kGreaterEqual; };
    const Term infinity = expression_term(symbols_.infinity());
    const Term minus_infinity = expression_term(-symbols_.infinity());

    if (relations.size() == 1 && relations[0] == Relation::kIn) {
      if (!lone_symbol(operands[0])) throw MathError("\\in needs a variable on its left");
      return std::move(operands[1]);
    }
    if (is(Relation::kEqual)) {
      if (relations.size() != 1) throw MathError("chained equation");
      AnswerValue eq;
      eq.kind = AnswerValue::Kind::kEquation;
      const bool variable_left = lone_symbol(operands[0]).has_value();
      eq.items.push_back(item_value(std::move(operands[0]), "in an equation"));
      if (!variable_left && operands[1].structure) throw MathError("a tuple, set or matrix in an equation");
      eq.items.push_back(item_value(std::move(operands[1]), "in an equation"));
      return Term{{}, false, std::move(eq)};
    }
    // "x < 3" and "3 > x" are intervals.
    if (relations.size() == 1 && relations[0] != Relation::kNotEqual) {
      const Relation r = relations[0];
      if (lone_symbol(operands[0]) && is_bound(operands[1])) {
        return upward(r) ? Term{{}, false, interval(minus_infinity, false, operands[1], closed(r))}
                         : Term{{}, false, interval(operands[1], closed(r), infinity, false)};
      }
      if (lone_symbol(operands[1]) && is_bound(operands[0])) {
        return upward(r) ? Term{{}, false, interval(operands[0], closed(r), infinity, false)}
                         : Term{{}, false, interval(minus_infinity, false, operands[0], closed(r))};
      }
    }
    // "a < x < b" and "b > x > a".
    if (relations.size() == 2 && lone_symbol(operands[1]) && is_bound(operands[0]) && is_bound(operands[2])) {
      if (upward(relations[0]) && upward(relations[1])) {
        return Term{{}, false, interval(operands[0], closed(relations[0]), operands[2], closed(relations[1]))};
      }
      if (downward(relations[0]) && downward(relations[1])) {
        return Term{{}, false, interval(operands[2], closed(relations[1]), operands[0], closed(relations[0]))};
      }
    }
    // Any other inequality or chain of them: "x + y > 1", "f(2) < f(1) < f(4)".
    if (std::none_of(relations.begin(), relations.end(),
                     [](Relation r) { return r == Relation::kEqual || r == Relation::kIn; })) {
      AnswerValue v;
      v.kind = AnswerValue::Kind::kInequality;
      for (const Relation r : relations) v.inequalities.push_back(to_inequality(r));
      for (Term& t : operands) {
        const bool approximate = t.approximate;
        v.items.push_back(expression_value(as_expression(std::move(t), "in an inequality"), approximate));
      }
      return Term{{}, false, std::move(v)};
    }
    throw MathError("equations mixed with inequalities");
  }

  // sum (\cup sum)*
  Term parse_union() {
    Term first = parse_sum();
    if (peek_command() != "cup") return first;
    AnswerValue u;
    u.kind = AnswerValue::Kind::kUnion;
    u.items.push_back(item_value(std::move(first), "in a union"));
    while (accept_command("cup")) {
      u.items.push_back(item_value(parse_sum(), "in a union"));
      if (u.items.size() > limits_.max_items)
        throw MathError("too many items (over " + std::to_string(limits_.max_items) + ")");
    }
    return Term{{}, false, std::move(u)};
  }

  enum class AddOp { kPlus, kMinus, kPlusMinus };

  std::optional<AddOp> accept_add_op() {
    if (accept('+')) return AddOp::kPlus;
    if (accept('-')) return AddOp::kMinus;
    if (accept_command("pm") || accept_command("mp")) return AddOp::kPlusMinus;
    return std::nullopt;
  }

  static std::vector<ex> add_op(AddOp op, const ex& x, const ex& y) {
    switch (op) {
      case AddOp::kPlus: return {x + y};
      case AddOp::kMinus: return {x - y};
      case AddOp::kPlusMinus: return {x + y, x - y};
    }
    return {};
  }

  // [sign] product (sign product)*, where a sign is +, -, \pm or \mp.
  Term parse_sum() {
    Nesting nesting(*this);
    Term acc;
    if (const auto sign = accept_add_op()) {
      acc = combine(expression_term(0), parse_product(false), "after a sign",
                    [&](const ex& x, const ex& y) { return add_op(*sign, x, y); });
    } else {
      acc = parse_product(false);
    }
    while (const auto op = accept_add_op()) {
      acc = combine(std::move(acc), parse_product(false), "in a sum",
                    [&](const ex& x, const ex& y) { return add_op(*op, x, y); });
    }
    return acc;
  }

  // Whether what follows starts a factor of an implicit product ("2x", "3\sqrt2", "(a)(b)").
  // In a function's argument a further function ends it: "\sin x \cos x".
  bool starts_implicit_factor(bool function_argument) {
    const char c = peek();
    if (is_digit(c) || is_letter(c) || c == '(' || c == '{') return true;
    if (c == '.' && pos_ + 1 < s_.size() && is_digit(s_[pos_ + 1])) return true;
    if (c == '|') return abs_depth_ == 0;
    if (c != '\\') return false;
    const std::string_view name = peek_command();
    if (find_function(name)) return !function_argument;
    static const std::set<std::string_view> kFactorCommands = {"frac",  "dfrac",    "tfrac", "cfrac",  "sqrt",
                                                               "pi",    "infty",    "binom", "dbinom", "tbinom",
                                                               "begin", "overline", "{"};
    if (kFactorCommands.contains(name)) return true;
    return std::find(std::begin(kGreek), std::end(kGreek), name) != std::end(kGreek);
  }

  // factor ((* | \cdot | \times | / | \div | :)? factor)*
  Term parse_product(bool function_argument) {
    Term acc = parse_signed_factor();
    for (;;) {
      if (accept('*') || accept_command("cdot") || accept_command("times")) {
        acc = combine1(std::move(acc), parse_signed_factor(), "in a product",
                       [](const ex& x, const ex& y) { return x * y; });
      } else if (accept('/') || accept_command("div") || accept(':')) {
        acc = combine1(std::move(acc), parse_signed_factor(), "in a quotient",
                       [](const ex& x, const ex& y) { return x / y; });
      } else if (starts_implicit_factor(function_argument)) {
        acc = combine1(std::move(acc), parse_power(), "in a product", [](const ex& x, const ex& y) { return x * y; });
      } else {
        return acc;
      }
    }
  }

  // "2 \cdot -3"
  Term parse_signed_factor() {
    Nesting nesting(*this);
    if (accept('-')) return map_values(parse_signed_factor(), "after a sign", [](const ex& x) { return -x; });
    if (accept('+')) return parse_signed_factor();
    if (accept_command("pm") || accept_command("mp")) {
      return combine(expression_term(0), parse_signed_factor(), "after a sign", [](const ex&, const ex& y) {
        return std::vector<ex>{y, -y};
      });
    }
    return parse_power();
  }

  bool accept_degree() {
    const size_t start = pos_;
    if (accept_command("circ")) return true;
    if (accept('{') && accept_command("circ") && accept('}')) return true;
    pos_ = start;
    return false;
  }

  // primary ['!'] ['^' argument]
  Term parse_power() {
    Nesting nesting(*this);
    Term base = parse_primary();
    base = accept_factorial(std::move(base));
    if (!accept('^')) return base;
    if (accept_degree()) {
      if (angle_depth_ == 0) return base;  // "30^\circ" is 30; in \sin 30^\circ it is pi/6
      return map_values(std::move(base), "in degrees", [](const ex& x) { return x * GiNaC::Pi / 180; });
    }
    Term exponent = parse_argument();
    return combine1(std::move(base), std::move(exponent), "in a power",
                    [&](const ex& x, const ex& y) { return checked_power(x, y, limits_); });
  }

  Term accept_factorial(Term t) {
    if (peek() != '!' || (pos_ + 1 < s_.size() && s_[pos_ + 1] == '=')) return t;
    ++pos_;
    return map_values(std::move(t), "in a factorial", [&](const ex& x) -> ex {
      if (is_a<numeric>(x)) {
        const numeric& n = ex_to<numeric>(x);
        if (!n.is_nonneg_integer()) throw MathError("factorial of a number that is not a natural number");
        if (n > numeric(limits_.max_factorial)) {
          throw MathError("factorial too large (over " + std::to_string(limits_.max_factorial) + "!)");
        }
      }
      return GiNaC::factorial(x);
    });
  }

  // A macro argument: a {group}, or one character (\frac12, x^2), or one command (\sqrt\pi).
  Term parse_argument() {
    const char c = peek();
    if (c == '{') return parse_group();
    if (is_digit(c)) {
      ++pos_;
      return expression_term(c - '0');
    }
    if (is_letter(c)) return parse_letter();
    if (c == '(') return parse_bracket();
    if (c == '-' && pos_ + 1 < s_.size() && is_digit(s_[pos_ + 1])) {  // x^-1, written without braces
      pos_ += 2;
      return expression_term(-(s_[pos_ - 1] - '0'));
    }
    if (c == '\\') return parse_primary();
    fail("expected an argument, found");
  }

  // { item }
  Term parse_group() {
    Nesting nesting(*this);
    expect('{', "");
    Term t = parse_item();
    expect('}', "to close a group");
    return t;
  }

  Term parse_primary() {
    Nesting nesting(*this);
    const char c = peek();
    if (is_digit(c) || (c == '.' && pos_ + 1 < s_.size() && is_digit(s_[pos_ + 1]))) return parse_number();
    if (is_letter(c)) return parse_letter();
    if (c == '(' || c == '[') return parse_bracket();
    if (c == '{') return parse_group();
    if (c == '|') return parse_absolute_value();
    if (c != '\\') fail("unexpected");
    const std::string_view name = peek_command();
    if (name == "{") return parse_set();
    if (name == "frac" || name == "dfrac" || name == "tfrac" || name == "cfrac") return parse_fraction();
    if (name == "sqrt") return parse_root();
    if (name == "binom" || name == "dbinom" || name == "tbinom") return parse_binomial();
    if (name == "overline") {  // a segment \overline{AB} or a conjugate: the same notation on both sides
      pos_ += 1 + name.size();
      return parse_argument();
    }
    if (name == "begin") return parse_matrix();
    if (const FunctionSpec* f = find_function(name)) return parse_function(*f, 1 + name.size());
    pos_ += 1 + name.size();
    if (name == "pi") return expression_term(GiNaC::Pi);
    if (name == "infty") return expression_term(symbols_.infinity());
    if (name == "emptyset" || name == "varnothing") {
      AnswerValue empty;
      empty.kind = AnswerValue::Kind::kSet;
      return Term{{}, false, std::move(empty)};
    }
    if (std::find(std::begin(kGreek), std::end(kGreek), name) != std::end(kGreek)) {
      return expression_term(symbols_.get(std::string(name)));
    }
    pos_ -= 1 + name.size();
    fail("unsupported command");
  }

  // Digits of a number, bounded.
  std::string_view read_digits() {
    const size_t start = pos_;
    while (pos_ < s_.size() && is_digit(s_[pos_])) ++pos_;
    if (pos_ - start > limits_.max_number_bits * 3 / 10) throw MathError("number too long");
    return s_.substr(start, pos_ - start);
  }

  static numeric integer_of(std::string_view digits) {
    numeric n = 0;
    for (size_t i = 0; i < digits.size(); i += 9) {
      const std::string_view chunk = digits.substr(i, 9);
      n = n * GiNaC::pow(numeric(10), numeric(static_cast<long>(chunk.size()))) +
          numeric(std::stol(std::string(chunk)));
    }
    return n;
  }

  // "0011_2", "152A_{11}", "0.0011_{2}": digits and letters then a base subscript, read at once.
  std::optional<Term> try_numeral() {
    size_t end = pos_;
    while (end < s_.size() && (is_digit(s_[end]) || is_letter(s_[end]) || s_[end] == '.')) ++end;
    if (end >= s_.size() || s_[end] != '_') return std::nullopt;
    size_t base_end = end + 1;
    std::string_view base_digits;
    if (base_end < s_.size() && s_[base_end] == '{') {
      const size_t close = s_.find('}', base_end);
      if (close == std::string_view::npos) return std::nullopt;
      base_digits = trim(s_.substr(base_end + 1, close - base_end - 1));
      base_end = close + 1;
    } else if (base_end < s_.size() && is_digit(s_[base_end])) {
      base_digits = s_.substr(base_end, 1);
      ++base_end;
    }
    if (base_digits.empty() || base_digits.size() > 2 ||
        !std::all_of(base_digits.begin(), base_digits.end(), is_digit)) {
      return std::nullopt;
    }
    const int base = std::stoi(std::string(base_digits));
    const std::string_view digits = s_.substr(pos_, end - pos_);
    if (base < 2 || base > 36 || digits.size() > limits_.max_number_bits / 8 ||
        std::count(digits.begin(), digits.end(), '.') > 1) {
      return std::nullopt;
    }
    numeric value = 0, scale = 1;
    bool fraction = false;
    for (char d : digits) {
      if (d == '.') {
        fraction = true;
        continue;
      }
      const int digit = is_digit(d) ? d - '0' : std::tolower(static_cast<unsigned char>(d)) - 'a' + 10;
      if (digit >= base) return std::nullopt;
      value = value * base + digit;
      if (fraction) scale *= base;
    }
    pos_ = base_end;
    AnswerValue numeral;
    numeral.kind = AnswerValue::Kind::kNumeral;
    numeral.text = std::string(digits);
    numeral.base = base;
    numeral.expression = value / scale;
    return Term{{}, false, std::move(numeral)};
  }

  // "2\frac{1}{2}" after an integer: a mixed number. Both parts plain integers, or it is a
  // product ("2\frac{\pi}{3}").
  std::optional<numeric> try_mixed_fraction() {
    const size_t start = pos_;
    const std::string_view name = peek_command();
    if (name != "frac" && name != "dfrac" && name != "tfrac" && name != "cfrac") return std::nullopt;
    pos_ += 1 + name.size();
    auto integer_argument = [&]() -> std::optional<numeric> {
      skip_spaces();
      if (pos_ < s_.size() && is_digit(s_[pos_])) return numeric(s_[pos_++] - '0');
      if (!accept('{')) return std::nullopt;
      skip_spaces();
      const std::string_view digits = read_digits();
      if (digits.empty() || !accept('}')) return std::nullopt;
      return integer_of(digits);
    };
    const auto numerator = integer_argument();
    const auto denominator = numerator ? integer_argument() : std::nullopt;
    if (!denominator || denominator->is_zero()) {
      pos_ = start;
      return std::nullopt;
    }
    return *numerator / *denominator;
  }

  Term parse_number() {
    if (auto numeral = try_numeral()) return std::move(*numeral);
    const std::string_view whole = read_digits();
    numeric value = integer_of(whole);
    bool decimal = false;
    if (pos_ < s_.size() && s_[pos_] == '.' &&
        (pos_ + 1 < s_.size() && (is_digit(s_[pos_ + 1]) || s_.compare(pos_ + 1, 9, "\\overline") == 0))) {
      ++pos_;
      decimal = true;
      const std::string_view fraction = read_digits();
      const numeric scale = GiNaC::pow(numeric(10), numeric(static_cast<long>(fraction.size())));
      value += integer_of(fraction) / scale;
      if (s_.compare(pos_, 9, "\\overline") == 0) {  // 0.1\overline{6} = 1/6: exact
        pos_ += 9;
        expect('{', "after \\overline");
        skip_spaces();
        const std::string_view repeating = read_digits();
        expect('}', "to close \\overline");
        if (repeating.empty()) throw MathError("empty \\overline");
        const numeric period = GiNaC::pow(numeric(10), numeric(static_cast<long>(repeating.size())));
        value += integer_of(repeating) / (scale * (period - 1));
        decimal = false;
      }
    }
    // Scientific notation: "1e3", "2.5E-4"; a lone e is Euler's number ("2e").
    if (pos_ + 1 < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      size_t digits_at = pos_ + 1;
      if (s_[digits_at] == '-' || s_[digits_at] == '+') ++digits_at;
      if (digits_at < s_.size() && is_digit(s_[digits_at])) {
        const bool negative = s_[pos_ + 1] == '-';
        pos_ = digits_at;
        const std::string_view exponent_digits = read_digits();
        if (exponent_digits.size() > 6) throw MathError("number too large");
        const long exponent = std::stol(std::string(exponent_digits));
        value = ex_to<numeric>(value * checked_power(10, negative ? -exponent : exponent, limits_));
      }
    }
    if (!decimal && value.is_integer()) {
      if (const auto fraction = try_mixed_fraction()) return expression_term(value + *fraction);
    }
    return expression_term(value, decimal);
  }

  // A variable (x, x_1, a_{n}), i or e, or a function written without a backslash ("sin x").
  Term parse_letter() {
    size_t run_end = pos_;
    while (run_end < s_.size() && is_letter(s_[run_end])) ++run_end;
    if (const FunctionSpec* f = find_function(s_.substr(pos_, run_end - pos_))) {
      return parse_function(*f, run_end - pos_);
    }
    if (s_.compare(pos_, 4, "sqrt") == 0 && run_end == pos_ + 4) {
      pos_ += 4;
      return root_term(parse_argument(), std::nullopt);
    }
    return parse_variable();
  }

  Term parse_variable() {
    std::string name(1, s_[pos_++]);
    if (pos_ < s_.size() && s_[pos_] == '_') {
      const size_t start = pos_++;
      if (pos_ < s_.size() && s_[pos_] == '{') {
        const size_t end = notation::group_end(s_, pos_);
        if (end == std::string::npos) fail("unclosed subscript");
        pos_ = end;
      } else if (pos_ < s_.size() && (is_digit(s_[pos_]) || is_letter(s_[pos_]))) {
        ++pos_;
      } else {
        fail("bad subscript");
      }
      name += s_.substr(start, pos_ - start);
      return expression_term(symbols_.get(name));
    }
    if (name == "i") return expression_term(GiNaC::I);
    if (name == "e") return expression_term(GiNaC::exp(ex(1)));
    return expression_term(symbols_.get(name));
  }

  // ( list ) or [ list ], closed by ) or ]: a parenthesis, a tuple or an interval.
  Term parse_bracket() {
    Nesting nesting(*this);
    const char open = s_[pos_++];
    std::vector<Term> items = parse_list();
    const char close = peek();
    if (close != ')' && close != ']') fail("expected ')' or ']', found");
    ++pos_;
    if (items.size() == 1) {
      if ((open == '(') != (close == ')')) throw MathError("an interval needs two ends");
      return std::move(items[0]);
    }
    AnswerValue tuple;
    tuple.kind = AnswerValue::Kind::kTuple;
    tuple.open = open;
    tuple.close = close;
    for (Term& t : items) tuple.items.push_back(item_value(std::move(t), "in a tuple"));
    return Term{{}, false, std::move(tuple)};
  }

  Term parse_set() {
    Nesting nesting(*this);
    expect_command("{");
    if (accept_command("}")) return Term{{}, false, set_of({})};
    std::vector<Term> items = parse_list();
    expect_command("}");
    return Term{{}, false, set_of(std::move(items))};
  }

  Term parse_absolute_value() {
    Nesting nesting(*this);
    ++pos_;
    ++abs_depth_;
    Term inner = parse_sum();
    --abs_depth_;
    expect('|', "to close |...|");
    return map_values(std::move(inner), "in |...|", [](const ex& x) { return GiNaC::abs(x); });
  }

  Term parse_fraction() {
    pos_ += 1 + peek_command().size();
    Term numerator = parse_argument();
    Term denominator = parse_argument();
    return combine1(std::move(numerator), std::move(denominator), "in a fraction",
                    [](const ex& x, const ex& y) { return x / y; });
  }

  Term root_term(Term radicand, std::optional<Term> degree) {
    if (!degree) {
      return map_values(std::move(radicand), "under a root",
                        [&](const ex& x) { return checked_power(x, GiNaC::numeric(1, 2), limits_); });
    }
    return combine1(std::move(radicand), std::move(*degree), "under a root", [&](const ex& x, const ex& n) {
      // The real root of a negative number for an odd degree: \sqrt[3]{-8} = -2.
      if (is_a<numeric>(n) && ex_to<numeric>(n).is_odd() && is_a<numeric>(x) && ex_to<numeric>(x).is_real() &&
          ex_to<numeric>(x).is_negative()) {
        return -checked_power(-x, 1 / n, limits_);
      }
      return checked_power(x, 1 / n, limits_);
    });
  }

  Term parse_root() {
    expect_command("sqrt");
    std::optional<Term> degree;
    if (accept('[')) {
      degree = parse_sum();
      expect(']', "after the degree of a root");
    }
    return root_term(parse_argument(), std::move(degree));
  }

  Term parse_binomial() {
    pos_ += 1 + peek_command().size();
    Term n = parse_argument();
    Term k = parse_argument();
    return combine1(std::move(n), std::move(k), "in a binomial", [&](const ex& x, const ex& y) {
      if (is_a<numeric>(x) && abs(ex_to<numeric>(x)) > numeric(limits_.max_factorial)) {
        throw MathError("binomial too large (over " + std::to_string(limits_.max_factorial) + ")");
      }
      return GiNaC::binomial(x, y);
    });
  }

  // \sin x, \sin^2 x, \sin^{-1} x, \sin(x), \log_2 8; the argument of "\sin 2x" is 2x.
  Term parse_function(const FunctionSpec& spec, size_t name_length) {
    Nesting nesting(*this);
    pos_ += name_length;
    const FunctionSpec* f = &spec;
    std::optional<Term> power;
    std::optional<Term> log_base;
    if (accept('^')) {
      Term exponent = parse_argument();
      if (!exponent.structure && exponent.values.size() == 1 && exponent.values[0].is_equal(-1) &&
          !f->inverse.empty()) {
        f = find_function(f->inverse);
      } else {
        power = std::move(exponent);
      }
    }
    if (f->name == "log" && accept('_')) log_base = parse_argument();
    if (f->angle) ++angle_depth_;
    Term argument = peek() == '(' ? parse_bracket() : parse_product(true);
    if (f->angle) --angle_depth_;
    Term result = map_values(std::move(argument), "as a function argument", f->apply);
    if (log_base) {
      result = combine1(std::move(result), std::move(*log_base), "as a logarithm's base",
                        [](const ex& x, const ex& b) { return x / GiNaC::log(b); });
    }
    if (power) {
      result = combine1(std::move(result), std::move(*power), "in a power",
                        [&](const ex& x, const ex& y) { return checked_power(x, y, limits_); });
    }
    return accept_power_after_parenthesis(std::move(result));
  }

  // "\sin(x)^2": a power after a parenthesized argument applies to the function's value.
  Term accept_power_after_parenthesis(Term t) {
    if (peek() != '^') return t;
    ++pos_;
    Term exponent = parse_argument();
    return combine1(std::move(t), std::move(exponent), "in a power",
                    [&](const ex& x, const ex& y) { return checked_power(x, y, limits_); });
  }

  // \begin{pmatrix} a & b \\ c & d \end{pmatrix} (also bmatrix, Bmatrix, matrix, smallmatrix).
  Term parse_matrix() {
    Nesting nesting(*this);
    expect_command("begin");
    skip_spaces();
    const size_t name_start = pos_;
    const size_t name_end = peek() == '{' ? notation::group_end(s_, pos_) : std::string::npos;
    if (name_end == std::string::npos) fail("expected {environment}, found");
    const std::string name(s_.substr(name_start + 1, name_end - name_start - 2));
    static const std::set<std::string, std::less<>> kMatrices = {"pmatrix", "bmatrix", "Bmatrix", "matrix",
                                                                 "smallmatrix"};
    if (!kMatrices.contains(name)) throw MathError("unsupported environment " + name);
    pos_ = name_end;
    AnswerValue m;
    m.kind = AnswerValue::Kind::kMatrix;
    std::vector<AnswerValue> row;
    auto end_row = [&]() {
      if (row.empty()) return;
      if (m.rows > 0 && row.size() != m.cols) throw MathError("matrix rows of different lengths");
      m.cols = row.size();
      ++m.rows;
      for (AnswerValue& v : row) m.items.push_back(std::move(v));
      row.clear();
      if (m.items.size() > limits_.max_items)
        throw MathError("too many items (over " + std::to_string(limits_.max_items) + ")");
    };
    for (;;) {
      if (accept_command("end")) {
        const std::string closing = "{" + name + "}";
        skip_spaces();
        if (s_.compare(pos_, closing.size(), closing) != 0) fail("expected " + closing + ", found");
        pos_ += closing.size();
        end_row();
        break;
      }
      row.push_back(item_value(parse_item(), "in a matrix"));
      if (accept('&')) continue;
      if (accept_command("\\")) {
        end_row();
        continue;
      }
      if (peek_command() != "end") fail("expected &, \\\\ or \\end, found");
    }
    if (m.rows == 0) throw MathError("empty matrix");
    return Term{{}, false, std::move(m)};
  }

  std::string_view s_;
  size_t pos_ = 0;
  int depth_ = 0;
  int angle_depth_ = 0;  // inside the argument of a trigonometric function
  int abs_depth_ = 0;    // inside |...|, where '|' closes rather than starts a factor
  SymbolTable& symbols_;
  const LatexLimits& limits_;
};

}  // namespace

LatexParse parse_answer(std::string_view answer, SymbolTable& symbols, const LatexLimits& limits) {
  LatexParse out;
  if (answer.size() > limits.max_length) {
    out.error = "longer than " + std::to_string(limits.max_length) + " bytes";
    return out;
  }
  try {
    const notation::CleanAnswer clean = notation::clean(answer);
    auto as_text = [&](std::string_view text) {
      AnswerValue v;
      v.kind = AnswerValue::Kind::kText;
      v.text = notation::text_key(text);
      out.readings.push_back({std::move(v), ""});
      return out;
    };
    std::string math = clean.math;
    if (clean.whole_text) {
      // "\text{(B)}" is the letter B; "\text{Monday}" and "\text{4:30 p.m.}" are text.
      if (notation::looks_like_words(*clean.whole_text)) return as_text(*clean.whole_text);
      math = notation::clean(*clean.whole_text).math;
    } else if (notation::looks_like_words(math)) {
      return as_text(math);
    }
    for (const notation::Spelling& spelling : notation::spellings(math)) {
      try {
        out.readings.push_back({Parser(spelling.math, symbols, limits).parse(), spelling.note});
      } catch (const std::exception& e) {
        if (out.error.empty()) out.error = e.what();
      }
    }
    if (out.readings.empty() && clean.whole_text) return as_text(*clean.whole_text);
    if (!out.readings.empty()) out.error.clear();
  } catch (const std::exception& e) {  // GiNaC's own errors too: division by zero, poles
    out.readings.clear();
    out.error = e.what();
  }
  return out;
}

}  // namespace ponder
