// ponder report's engine: reads a results database read-only, sums the results of each
// strategy, budget and level, and writes them out as Markdown and gnuplot plots.
#include "eval/report.h"

#include <fcntl.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "search/search.h"
#include "util/auc.h"

extern char** environ;

namespace ponder {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- reading -------------------------------------------------------------------------------

using Database = std::unique_ptr<sqlite3, decltype(&sqlite3_close)>;

// One prepared read-only statement; binds by position from 1.
class Query {
 public:
  Query(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) fail();
  }
  ~Query() { sqlite3_finalize(stmt_); }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& bind(int i, int64_t v) {
    if (sqlite3_bind_int64(stmt_, i, v) != SQLITE_OK) fail();
    return *this;
  }
  // True while a row is available.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) fail();
    return false;
  }
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  double real(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }

 private:
  [[noreturn]] void fail() const { throw ReportError(sqlite3_errmsg(db_)); }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

Database open_read_only(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw ReportError("no such file: " + path.string());
  if (fs::is_directory(path, ec)) throw ReportError(path.string() + " is a directory, not a results database");
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  Database owned(db, &sqlite3_close);
  if (rc != SQLITE_OK) {
    throw ReportError("cannot open " + path.string() + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
  }
  sqlite3_busy_timeout(db, 10000);  // `ponder eval` may be writing it right now
  try {
    Query q(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('runs', 'problems', 'results')");
    q.step();
    if (q.integer(0) != 3) throw ReportError("it has no runs, problems and results tables");
  } catch (const ReportError& e) {
    throw ReportError(path.string() + " is not a ponder results database (" + e.what() + ")");
  }
  return owned;
}

// Long values (a system prompt) would swamp the header: cut them; the database has them whole.
std::string setting_text(const json& value) {
  constexpr size_t kMaxBytes = 60;
  // Six significant digits: a float setting (temperature 0.8) shows as given, not as 0.800000011920929.
  std::string text = value.is_string()         ? value.get<std::string>()
                     : value.is_number_float() ? fmt::format("{:g}", value.get<double>())
                                               : value.dump();
  // Control characters (a newline) would break the Markdown line: show them escaped.
  if (std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; })) {
    text = json(text).dump();
  }
  if (text.size() > kMaxBytes) {
    size_t cut = kMaxBytes - 3;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
    text = text.substr(0, cut) + "...";
  }
  return text;
}

// A model as `ponder eval` identifies it, {"file": name, "bytes": size}: its name and size.
std::string model_text(const json& model) {
  const double bytes = model.value("bytes", 0.0);
  return bytes >= 1e6 ? fmt::format("{} ({:.0f} MB)", model["file"].get<std::string>(), bytes / 1e6)
                      : fmt::format("{} ({:.0f} bytes)", model["file"].get<std::string>(), bytes);
}

// Null and empty values are settings not in use (no judge): left out.
void flatten_settings(const json& j, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& out) {
  if (j.is_null() || (j.is_string() && j.get<std::string>().empty())) return;
  if (j.is_object() && j.contains("file") && j["file"].is_string()) {
    out.emplace_back(prefix, model_text(j));
  } else if (j.is_object()) {
    for (const auto& [key, value] : j.items()) flatten_settings(value, prefix.empty() ? key : prefix + "." + key, out);
  } else {
    out.emplace_back(prefix, setting_text(j));
  }
}

std::vector<std::pair<std::string, std::string>> parse_settings(const std::string& settings) {
  std::vector<std::pair<std::string, std::string>> out;
  const json j = json::parse(settings, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    out.emplace_back("settings", setting_text(json(settings)));
  } else {
    flatten_settings(j, j.is_object() ? "" : "settings", out);
  }
  return out;
}

// Known strategies in the order of the Strategy enum (cheapest first), then any other by name.
bool strategy_order(const StrategyReport& a, const StrategyReport& b) {
  auto rank = [](const std::string& name) {
    const auto s = parse_strategy(name);
    return s ? static_cast<int>(*s) : 1000;
  };
  return std::make_pair(rank(a.name), a.name) < std::make_pair(rank(b.name), b.name);
}

size_t selection_index(const std::string& strategy, const std::string& selection) {
  for (size_t i = 0; i < kReportSelections.size(); ++i) {
    if (selection == kReportSelections[i]) return i;
  }
  throw ReportError("results of " + strategy + " name an unknown selection '" + selection + "'");
}

StrategyReport& strategy_named(RunReport& run, const std::string& name) {
  for (StrategyReport& s : run.strategies) {
    if (s.name == name) return s;
  }
  StrategyReport& s = run.strategies.emplace_back();
  s.name = name;
  return s;
}

size_t level_group_of(RunReport& run, std::optional<int> level) {
  for (size_t i = 0; i < run.levels.size(); ++i) {
    if (run.levels[i].level == level) return i;
  }
  // A result whose problem the problems table lacks: it has no level, and no problem counted.
  run.levels.push_back({level, 0});
  return run.levels.size() - 1;
}

// Whether the settings (as `ponder eval` writes them) name a verifier: its solutions' scores
// then mean something.
bool has_verifier(const std::string& settings) {
  const json j = json::parse(settings, nullptr, false);
  if (!j.is_object()) return false;
  for (const char* key : {"prm", "judge", "confidence"}) {
    const auto it = j.find(key);
    if (it != j.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty())) return true;
  }
  return false;
}

// The verifier's ranking over the largest sampled search of each (problem, seed); nullopt when
// the run has no sampled search.
std::optional<VerifierRanking> read_ranking(sqlite3* db, const RunReport& run) {
  Query largest(db, "SELECT MAX(budget) FROM completions WHERE run_id = ? AND search = 'sample'");
  largest.bind(1, run.id);
  if (!largest.step() || largest.is_null(0)) return std::nullopt;
  VerifierRanking ranking;
  ranking.budget = largest.integer(0);
  ranking.by_level.resize(run.levels.size());
  Query rows(db,
             "SELECT c.problem_id, c.seed, p.level, c.correct, c.score FROM completions c "
             "LEFT JOIN problems p ON p.run_id = c.run_id AND p.problem_id = c.problem_id "
             "WHERE c.run_id = ? AND c.search = 'sample' AND c.budget = ? AND c.correct IS NOT NULL");
  rows.bind(1, run.id).bind(2, ranking.budget);
  struct Search {
    std::optional<int> level;
    std::vector<double> right, wrong;
  };
  std::map<std::pair<std::string, int64_t>, Search> searches;  // by (problem, seed)
  while (rows.step()) {
    Search& s = searches[{rows.text(0), rows.integer(1)}];
    s.level = rows.is_null(2) ? std::nullopt : std::optional<int>(rows.integer(2));
    (rows.integer(3) ? s.right : s.wrong).push_back(rows.real(4));
  }
  for (const auto& [key, s] : searches) {
    if (s.right.empty() || s.wrong.empty()) continue;
    std::vector<RankingCell*> cells = {&ranking.overall};
    for (size_t g = 0; g < run.levels.size(); ++g) {
      if (run.levels[g].level == s.level) cells.push_back(&ranking.by_level[g]);
    }
    const double wins = pairwise_wins(s.right, s.wrong);
    for (RankingCell* cell : cells) {
      cell->searches += 1;
      cell->pairs += static_cast<int64_t>(s.right.size() * s.wrong.size());
      cell->wins += wins;
    }
  }
  return ranking;
}

RunReport read_run(sqlite3* db, int64_t id, const std::string& settings, const std::string& created) {
  RunReport run;
  run.id = id;
  run.created = created;
  run.settings = parse_settings(settings);

  Query levels(db,
               "SELECT level, COUNT(*) FROM problems WHERE run_id = ? GROUP BY level ORDER BY level IS NULL, level");
  levels.bind(1, id);
  while (levels.step()) {
    run.levels.push_back({levels.is_null(0) ? std::nullopt : std::optional<int>(levels.integer(0)), levels.integer(1)});
    run.problems += levels.integer(1);
  }

  Query seeds(db, "SELECT DISTINCT seed FROM results WHERE run_id = ? ORDER BY seed");
  seeds.bind(1, id);
  while (seeds.step()) run.seeds.push_back(seeds.integer(0));

  // A strategy's own selection is the same in all its results; should it ever differ, the
  // most frequent one wins.
  Query chosen(db,
               "SELECT strategy, chosen FROM results WHERE run_id = ? GROUP BY strategy, chosen "
               "ORDER BY strategy, COUNT(*) DESC");
  chosen.bind(1, id);
  std::string previous;
  while (chosen.step()) {
    const std::string name = chosen.text(0);
    if (name == previous) continue;
    previous = name;
    strategy_named(run, name).chosen = selection_index(name, chosen.text(1));
  }
  std::sort(run.strategies.begin(), run.strategies.end(), strategy_order);

  Query cells(db,
              "SELECT r.strategy, r.budget, p.level, COUNT(*), SUM(r.naive_correct), SUM(r.weighted_correct), "
              "SUM(r.majority_correct), SUM(r.completion_tokens), SUM(r.verifier_tokens), SUM(r.seconds) "
              "FROM results r LEFT JOIN problems p ON p.run_id = r.run_id AND p.problem_id = r.problem_id "
              "WHERE r.run_id = ? GROUP BY r.strategy, r.budget, p.level");
  cells.bind(1, id);
  while (cells.step()) {
    ReportCell cell;
    cell.pairs = cells.integer(3);
    for (size_t s = 0; s < kReportSelections.size(); ++s) cell.correct[s] = cells.integer(4 + static_cast<int>(s));
    cell.completion_tokens = cells.integer(7);
    cell.verifier_tokens = cells.integer(8);
    cell.seconds = cells.real(9);
    const int64_t budget = cells.integer(1);
    const size_t group =
        level_group_of(run, cells.is_null(2) ? std::nullopt : std::optional<int>(cells.integer(2)));
    StrategyReport& strategy = strategy_named(run, cells.text(0));
    strategy.by_level.resize(run.levels.size());
    strategy.by_level[group][budget] += cell;
    strategy.overall[budget] += cell;
    run.budgets.push_back(budget);
  }
  for (StrategyReport& s : run.strategies) s.by_level.resize(run.levels.size());
  std::sort(run.budgets.begin(), run.budgets.end());
  run.budgets.erase(std::unique(run.budgets.begin(), run.budgets.end()), run.budgets.end());
  if (has_verifier(settings)) run.ranking = read_ranking(db, run);
  return run;
}

// ---- Markdown ------------------------------------------------------------------------------

// Settings worth a line of their own, when the run has them; the rest share one line.
constexpr std::array<const char*, 5> kHeadlineSettings = {"dataset", "model", "prm", "judge", "confidence"};

std::string level_name(const LevelGroup& g) { return g.level ? std::to_string(*g.level) : "none"; }

// A table's two head lines: the leading columns (with their alignment rules), then a column per budget.
std::string table_head(const RunReport& run, const std::string& columns, const std::string& rules) {
  std::string header = "|" + columns + "|", rule = "|" + rules + "|";
  for (int64_t b : run.budgets) {
    header += fmt::format(" N={} |", b);
    rule += "---:|";
  }
  return header + "\n" + rule + "\n";
}

// "62.5", or "62.5 (7/8)" for a cell short of `complete` pairs, or "-" when not run.
std::string accuracy_text(const CellsByBudget& cells, int64_t budget, size_t selection, int64_t complete) {
  const auto it = cells.find(budget);
  if (it == cells.end()) return "-";
  std::string text = fmt::format("{:.1f}", it->second.accuracy_percent(selection));
  if (it->second.pairs < complete) text += fmt::format(" ({}/{})", it->second.pairs, complete);
  return text;
}

// Inline code; text with a backtick needs a longer fence.
std::string code_span(const std::string& text) {
  return text.find('`') == std::string::npos ? "`" + text + "`" : "`` " + text + " ``";
}

std::string join_ints(const std::vector<int64_t>& values) {
  std::string out;
  for (int64_t v : values) out += (out.empty() ? "" : ", ") + std::to_string(v);
  return out;
}

void write_header(std::ostringstream& md, const RunReport& run) {
  std::string others;
  for (const char* key : kHeadlineSettings) {
    for (const auto& [k, v] : run.settings) {
      if (k == key) md << "- " << k << ": " << code_span(v) << "\n";
    }
  }
  for (const auto& [k, v] : run.settings) {
    if (std::find(kHeadlineSettings.begin(), kHeadlineSettings.end(), k) != kHeadlineSettings.end()) continue;
    others += (others.empty() ? "" : ", ") + code_span(k + "=" + v);
  }
  if (!others.empty()) md << "- settings: " << others << "\n";
  if (!run.created.empty()) md << "- created: " << run.created << "\n";
  std::string levels;
  if (run.has_levels()) {
    for (const LevelGroup& g : run.levels) {
      levels += fmt::format("{}level {}: {}", levels.empty() ? " (" : ", ", level_name(g), g.problems);
    }
    levels += ")";
  }
  md << fmt::format("- problems: {}{}; seeds: {}; a complete cell averages {} (problem, seed) pairs\n\n", run.problems,
                    levels, join_ints(run.seeds), run.complete_pairs());
  md << "Accuracy: the percentage of the (problem, seed) pairs with a result whose selected answer is correct. "
        "A cell with fewer pairs than complete shows them, as `50.0 (7/8)`; `-`: not run.\n\n";
}

void write_accuracy_table(std::ostringstream& md, const RunReport& run) {
  md << "### Accuracy (%) by budget\n\n";
  md << table_head(run, " strategy | selection ", "---|---");
  for (const StrategyReport& s : run.strategies) {
    // The strategy's own selection first, then the others it could have used.
    std::vector<size_t> order = {s.chosen};
    for (size_t i = 0; i < kReportSelections.size(); ++i) {
      if (i != s.chosen) order.push_back(i);
    }
    for (size_t selection : order) {
      const bool own = selection == s.chosen;
      md << (own ? fmt::format("| {} | **{}** (own) |", s.name, kReportSelections[selection])
                 : fmt::format("| | {} |", kReportSelections[selection]));
      for (int64_t b : run.budgets) md << " " << accuracy_text(s.overall, b, selection, run.complete_pairs()) << " |";
      md << "\n";
    }
  }
  md << "\n";
}

void write_level_table(std::ostringstream& md, const RunReport& run) {
  md << "### Accuracy (%) by level and budget (each strategy's own selection)\n\n";
  md << table_head(run, " level | problems | strategy ", "---:|---:|---");
  for (size_t g = 0; g < run.levels.size(); ++g) {
    for (size_t i = 0; i < run.strategies.size(); ++i) {
      const StrategyReport& s = run.strategies[i];
      md << (i == 0 ? fmt::format("| {} | {} | {} |", level_name(run.levels[g]), run.levels[g].problems, s.name)
                    : fmt::format("| | | {} |", s.name));
      for (int64_t b : run.budgets) {
        md << " " << accuracy_text(s.by_level[g], b, s.chosen, run.complete_pairs(g)) << " |";
      }
      md << "\n";
    }
  }
  md << "\n";
}

void write_ranking_table(std::ostringstream& md, const RunReport& run) {
  const VerifierRanking& r = *run.ranking;
  md << "### Verifier ranking within a problem\n\n";
  md << fmt::format(
      "How often the verifier scores a right solution above a wrong one to the same problem (ties count one "
      "half; 0.5 is a coin toss), over the sampled searches at N={}: what best-of-N picks by. Only searches "
      "with both a right and a wrong solution have pairs.\n\n",
      r.budget);
  md << "| level | searches with right and wrong | (right, wrong) pairs | AUC |\n|---|---:|---:|---:|\n";
  auto row = [&](const std::string& name, const RankingCell& c) {
    md << fmt::format("| {} | {} | {} | {} |\n", name, c.searches, c.pairs,
                      c.pairs ? fmt::format("{:.3f}", c.auc()) : std::string("-"));
  };
  if (run.has_levels()) {
    for (size_t g = 0; g < run.levels.size(); ++g) row(level_name(run.levels[g]), r.by_level[g]);
  }
  row("all", r.overall);
  md << "\n";
}

void write_cost_table(std::ostringstream& md, const RunReport& run) {
  md << "### Cost per problem (means over the (problem, seed) pairs)\n\n";
  md << "| strategy | budget | pairs | completion tokens | verifier tokens | seconds |\n";
  md << "|---|---:|---:|---:|---:|---:|\n";
  for (const StrategyReport& s : run.strategies) {
    for (const auto& [budget, cell] : s.overall) {
      md << fmt::format("| {} | {} | {} | {:.1f} | {:.1f} | {:.2f} |\n", s.name, budget, cell.pairs,
                        cell.mean_completion_tokens(), cell.mean_verifier_tokens(), cell.mean_seconds());
    }
  }
  md << "\n";
}

// ---- plots ---------------------------------------------------------------------------------

// One colour per strategy, fixed by its place in the report, the same in every figure.
constexpr std::array<const char*, 8> kStrategyColours = {"#1b9e77", "#d95f02", "#7570b3", "#e7298a",
                                                         "#66a61e", "#e6ab02", "#a6761d", "#666666"};
constexpr std::array<const char*, 3> kSelectionColours = {"#377eb8", "#e41a1c", "#4daf4a"};

// Level groups with at least one result: a panel each.
std::vector<size_t> plotted_level_groups(const RunReport& run) {
  std::vector<size_t> groups;
  if (!run.has_levels()) return groups;
  for (size_t g = 0; g < run.levels.size(); ++g) {
    if (std::any_of(run.strategies.begin(), run.strategies.end(),
                    [g](const StrategyReport& s) { return !s.by_level[g].empty(); })) {
      groups.push_back(g);
    }
  }
  return groups;
}

// A gnuplot string literal: single quotes, where only '' needs escaping.
std::string quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("''") : std::string(1, c);
  return q + "'";
}

// Columns: budget, then accuracy (%) by kReportSelections, so selection i is column i + 2.
std::string datablock(const std::string& name, const CellsByBudget& cells) {
  std::string block = "$" + name + " << EOD\n";
  for (const auto& [budget, cell] : cells) {
    block += fmt::format("{} {:.4f} {:.4f} {:.4f}\n", budget, cell.accuracy_percent(0), cell.accuracy_percent(1),
                         cell.accuracy_percent(2));
  }
  return block + "EOD\n";
}

std::string overall_block(size_t strategy) { return fmt::format("overall_{}", strategy); }
std::string level_block(size_t group, size_t strategy) { return fmt::format("level{}_{}", group, strategy); }

// Axes shared by every panel: log2 budget with a tic at each budget run, accuracy from 0 to a
// round ceiling above the best value (small models score low; a 0-100 axis would flatten them).
std::string axes(const RunReport& run, double y_max) {
  std::string tics;
  for (int64_t b : run.budgets) tics += fmt::format("{}'{}' {}", tics.empty() ? "" : ", ", b, b);
  return fmt::format(
      "set logscale x 2\nset xrange [{}:{}]\nset xtics ({})\nset yrange [0:{}]\nset grid\n"
      "set xlabel 'budget N (log2 scale)'\nset ylabel 'accuracy (%)'\n",
      static_cast<double>(run.budgets.front()) / 1.5, static_cast<double>(run.budgets.back()) * 1.5, tics, y_max);
}

double y_ceiling(const RunReport& run) {
  double best = 0.0;
  for (const StrategyReport& s : run.strategies) {
    auto consider = [&best](const CellsByBudget& cells) {
      for (const auto& [budget, cell] : cells) {
        for (size_t i = 0; i < kReportSelections.size(); ++i) best = std::max(best, cell.accuracy_percent(i));
      }
    };
    consider(s.overall);
    for (const CellsByBudget& cells : s.by_level) consider(cells);
  }
  return std::min(100.0, std::max(10.0, 10.0 * std::ceil((best + 5.0) / 10.0)));
}

// How strategy i's line looks, the same in every figure.
std::string strategy_style(const RunReport& run, size_t i, bool titled) {
  const StrategyReport& s = run.strategies[i];
  return fmt::format("with linespoints lw 2 pt 7 ps 0.8 lc rgb '{}' {}", kStrategyColours[i % kStrategyColours.size()],
                     titled ? "title " + quoted(s.name + " (" + kReportSelections[s.chosen] + ")") : "notitle");
}

// Strategy i's own selection from a datablock.
std::string strategy_line(const RunReport& run, const std::string& block, size_t i, bool titled) {
  return fmt::format("${} using 1:{} {}", block, run.strategies[i].chosen + 2, strategy_style(run, i, titled));
}

std::string selection_line(const std::string& block, size_t selection, bool own) {
  return fmt::format("${} using 1:{} with linespoints lw {} dt {} pt 7 ps 0.7 lc rgb '{}' notitle", block,
                     selection + 2, own ? 2.5 : 1.5, own ? 1 : 2, kSelectionColours[selection]);
}

struct Figure {
  std::string name;  // file name without extension
  int width = 0, height = 0;
  std::string commands;
};

Figure accuracy_figure(const RunReport& run, double y_max) {
  std::string plot;
  for (size_t i = 0; i < run.strategies.size(); ++i) {
    plot += (i ? ", \\\n     " : "plot ") + strategy_line(run, overall_block(i), i, true);
  }
  return {"accuracy", 950, 500,
          "set title " +
              quoted(fmt::format("{} run {}: accuracy against budget (own selection)", run.database, run.id)) +
              "\n" + axes(run, y_max) + "set key outside right top samplen 3\n" + plot + "\n"};
}

// Panels three to a row, with a last slot of their own for the key (in a panel it would cover
// lines); the key's entries are plots of NaN, which draw nothing but their sample.
std::string multiplot(const RunReport& run, const std::string& title, size_t panels, double y_max, int& width,
                      int& height) {
  const size_t slots = panels + 1;
  const size_t cols = std::min<size_t>(slots, 3), rows = (slots + 2) / 3;
  width = static_cast<int>(420 * cols);
  height = static_cast<int>(330 * rows);
  return fmt::format("set multiplot layout {},{} title {}\n{}unset key\n", rows, cols,
                     quoted(fmt::format("{} run {}: {}", run.database, run.id, title)), axes(run, y_max));
}

std::string key_slot(const std::vector<std::string>& entries) {
  std::string commands =
      "unset title\nunset border\nunset tics\nunset xlabel\nunset ylabel\nunset grid\nunset logscale x\n"
      "set xrange [0:1]\nset yrange [0:1]\nset key center center samplen 4\nplot ";
  for (size_t i = 0; i < entries.size(); ++i) commands += (i ? ", " : "") + entries[i];
  return commands + "\nunset multiplot\n";
}

Figure selections_figure(const RunReport& run, double y_max) {
  Figure f{"accuracy_selections", 0, 0, {}};
  f.commands = multiplot(run, "accuracy by answer selection", run.strategies.size(), y_max, f.width, f.height);
  for (size_t i = 0; i < run.strategies.size(); ++i) {
    const StrategyReport& s = run.strategies[i];
    f.commands += "set title " + quoted(s.name) + "\nplot ";
    for (size_t sel = 0; sel < kReportSelections.size(); ++sel) {
      f.commands += (sel ? ", " : "") + selection_line(overall_block(i), sel, sel == s.chosen);
    }
    f.commands += "\n";
  }
  std::vector<std::string> key;
  for (size_t sel = 0; sel < kReportSelections.size(); ++sel) {
    key.push_back(fmt::format("NaN with lines lw 2 lc rgb '{}' title {}", kSelectionColours[sel],
                              quoted(kReportSelections[sel])));
  }
  key.push_back("NaN with lines lw 2.5 dt 1 lc rgb 'black' title 'the strategy''s own selection'");
  key.push_back("NaN with lines lw 1.5 dt 2 lc rgb 'black' title 'another selection'");
  f.commands += key_slot(key);
  return f;
}

Figure level_figure(const RunReport& run, const std::vector<size_t>& groups, double y_max) {
  Figure f{"accuracy_by_level", 0, 0, {}};
  f.commands = multiplot(run, "accuracy by MATH level (own selection)", groups.size(), y_max, f.width, f.height);
  for (size_t g : groups) {
    const std::string title = fmt::format("level {} ({} problems)", level_name(run.levels[g]), run.levels[g].problems);
    f.commands += "set title " + quoted(title) + "\nplot ";
    bool first = true;
    for (size_t i = 0; i < run.strategies.size(); ++i) {
      if (run.strategies[i].by_level[g].empty()) continue;
      f.commands += (first ? "" : ", ") + strategy_line(run, level_block(g, i), i, false);
      first = false;
    }
    f.commands += "\n";
  }
  std::vector<std::string> key;
  for (size_t i = 0; i < run.strategies.size(); ++i) key.push_back("NaN " + strategy_style(run, i, true));
  f.commands += key_slot(key);
  return f;
}

std::string plot_script(const RunReport& run, const fs::path& dir, const std::vector<Figure>& figures) {
  std::string script = fmt::format("# Plots of run {} of {}, written by ponder report. Redraw: gnuplot plots.gp\n",
                                   run.id, run.database);
  for (size_t i = 0; i < run.strategies.size(); ++i) {
    script += datablock(overall_block(i), run.strategies[i].overall);
    for (size_t g : plotted_level_groups(run)) script += datablock(level_block(g, i), run.strategies[i].by_level[g]);
  }
  for (const Figure& f : figures) {
    // pngcairo draws smoother lines; plain png (libgd) where gnuplot was built without cairo.
    script += fmt::format(
        "\nif (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {{\n"
        "  set terminal pngcairo size {0},{1} noenhanced font 'sans,10' background rgb 'white'\n"
        "}} else {{\n"
        "  set terminal png size {0},{1} noenhanced\n"
        "}}\n",
        f.width, f.height);
    script += "set output " + quoted((dir / (f.name + ".png")).string()) + "\nreset\n" + f.commands + "unset output\n";
    script += fmt::format("set terminal svg size {},{} noenhanced font 'sans,11' background rgb 'white'\n", f.width,
                          f.height);
    script += "set output " + quoted((dir / (f.name + ".svg")).string()) + "\nreset\n" + f.commands + "unset output\n";
  }
  return script;
}

// Runs `gnuplot script`; returns its exit status, with its standard error in `errors`.
int run_gnuplot(const fs::path& script, std::string& errors) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) throw ReportError(std::string("cannot run gnuplot: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[1]);
  const std::string script_path = script.string();
  char* argv[] = {const_cast<char*>("gnuplot"), const_cast<char*>(script_path.c_str()), nullptr};
  pid_t pid = 0;
  const int spawn_error = posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (spawn_error != 0) {
    close(pipe_fds[0]);
    if (spawn_error == ENOENT) {
      throw ReportError("gnuplot not found on PATH (Debian: apt-get install gnuplot-nox), so no plots were drawn");
    }
    throw ReportError(std::string("cannot run gnuplot: ") + std::strerror(spawn_error));
  }
  char buffer[4096];
  ssize_t n;
  while ((n = read(pipe_fds[0], buffer, sizeof buffer)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) errors.append(buffer, static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string last_line(const std::string& text) {
  const size_t end = text.find_last_not_of(" \t\r\n");
  if (end == std::string::npos) return "no message";
  const size_t newline = text.find_last_of('\n', end);
  const size_t start = newline == std::string::npos ? 0 : newline + 1;
  return text.substr(start, end - start + 1);
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out.flush()) throw ReportError("cannot write " + path.string());
}

// With several runs each puts its plots in a folder of its own; one run puts them beside report.md.
std::string plots_subdir(const std::vector<RunReport>& runs, const RunReport& run) {
  return runs.size() == 1 ? "" : fmt::format("run-{}/", run.id);
}

std::string run_markdown(const RunReport& run, const std::optional<std::string>& plots_dir) {
  std::ostringstream md;
  md << "## Run " << run.id << "\n\n";
  write_header(md, run);
  write_accuracy_table(md, run);
  if (run.has_levels()) write_level_table(md, run);
  write_cost_table(md, run);
  if (run.ranking) write_ranking_table(md, run);
  if (plots_dir) {
    md << "### Plots\n\n";
    md << fmt::format("![accuracy against budget]({0}accuracy.png)\n\n", *plots_dir);
    md << fmt::format("![accuracy by selection]({0}accuracy_selections.png)\n\n", *plots_dir);
    if (!plotted_level_groups(run).empty()) {
      md << fmt::format("![accuracy by level]({0}accuracy_by_level.png)\n\n", *plots_dir);
    }
  }
  return md.str();
}

}  // namespace

// ---- the API -------------------------------------------------------------------------------

double ReportCell::accuracy_percent(size_t selection) const {
  return pairs ? 100.0 * static_cast<double>(correct[selection]) / static_cast<double>(pairs) : 0.0;
}
double ReportCell::mean_completion_tokens() const {
  return pairs ? static_cast<double>(completion_tokens) / static_cast<double>(pairs) : 0.0;
}
double ReportCell::mean_verifier_tokens() const {
  return pairs ? static_cast<double>(verifier_tokens) / static_cast<double>(pairs) : 0.0;
}
double ReportCell::mean_seconds() const { return pairs ? seconds / static_cast<double>(pairs) : 0.0; }

ReportCell& ReportCell::operator+=(const ReportCell& other) {
  pairs += other.pairs;
  for (size_t i = 0; i < correct.size(); ++i) correct[i] += other.correct[i];
  completion_tokens += other.completion_tokens;
  verifier_tokens += other.verifier_tokens;
  seconds += other.seconds;
  return *this;
}

double RankingCell::auc() const { return pairs ? wins / static_cast<double>(pairs) : std::nan(""); }

int64_t RunReport::complete_pairs() const { return problems * static_cast<int64_t>(seeds.size()); }
int64_t RunReport::complete_pairs(size_t level_group) const {
  return levels[level_group].problems * static_cast<int64_t>(seeds.size());
}
bool RunReport::has_levels() const {
  return std::any_of(levels.begin(), levels.end(), [](const LevelGroup& g) { return g.level.has_value(); });
}

std::vector<RunReport> read_report(const fs::path& database, std::optional<int64_t> run) {
  const Database db = open_read_only(database);
  const std::string where = database.string();
  try {
    std::vector<int64_t> all_runs;
    Query ids(db.get(), "SELECT id FROM runs ORDER BY id");
    while (ids.step()) all_runs.push_back(ids.integer(0));
    if (run && std::find(all_runs.begin(), all_runs.end(), *run) == all_runs.end()) {
      throw ReportError(fmt::format("no run {} in {} (its runs: {})", *run, where,
                                    all_runs.empty() ? "none" : join_ints(all_runs)));
    }

    std::vector<RunReport> reports;
    Query runs(db.get(),
               "SELECT id, settings, created FROM runs WHERE id IN (SELECT DISTINCT run_id FROM results) ORDER BY id");
    while (runs.step()) {
      if (run && runs.integer(0) != *run) continue;
      reports.push_back(read_run(db.get(), runs.integer(0), runs.text(1), runs.text(2)));
      reports.back().database = database.filename().string();
    }
    if (reports.empty()) {
      throw ReportError(run ? fmt::format("run {} in {} has no results yet", *run, where)
                            : where + " has no results yet");
    }
    return reports;
  } catch (const ReportError& e) {
    // The queries' own errors (a damaged file, a foreign schema) say nothing of where.
    if (std::string(e.what()).find(where) != std::string::npos) throw;
    throw ReportError(where + ": " + e.what());
  }
}

std::string report_markdown(const std::vector<RunReport>& runs, bool link_plots) {
  std::string md = "# ponder report: " + (runs.empty() ? std::string() : runs.front().database) + "\n\n";
  for (const RunReport& run : runs) {
    md += run_markdown(run, link_plots ? std::optional<std::string>(plots_subdir(runs, run)) : std::nullopt);
  }
  return md;
}

void write_plots(const RunReport& run, const fs::path& dir) {
  const double y_max = y_ceiling(run);
  std::vector<Figure> figures = {accuracy_figure(run, y_max), selections_figure(run, y_max)};
  const std::vector<size_t> groups = plotted_level_groups(run);
  if (!groups.empty()) figures.push_back(level_figure(run, groups, y_max));

  const fs::path script = dir / "plots.gp";
  write_file(script, plot_script(run, fs::absolute(dir), figures));
  std::vector<fs::path> images;
  for (const Figure& f : figures) {
    for (const char* extension : {".png", ".svg"}) {
      images.push_back(dir / (f.name + extension));
      fs::remove(images.back());  // so that a stale file cannot pass for a new one
    }
  }
  std::string errors;
  const int status = run_gnuplot(script, errors);
  if (status != 0) {
    throw ReportError(fmt::format("gnuplot failed (exit {}) on {}: {}", status, script.string(), last_line(errors)));
  }
  for (const fs::path& p : images) {
    std::error_code ec;
    if (fs::file_size(p, ec) == 0 || ec) {
      throw ReportError("gnuplot did not draw " + p.string() + ": " + last_line(errors));
    }
  }
}

void write_report(const std::vector<RunReport>& runs, const fs::path& dir) {
  fs::create_directories(dir);
  const fs::path markdown = dir / "report.md";
  write_file(markdown, report_markdown(runs, true));
  try {
    for (const RunReport& run : runs) {
      const fs::path plots = dir / plots_subdir(runs, run);
      fs::create_directories(plots);
      write_plots(run, plots);
    }
  } catch (const ReportError& e) {
    throw ReportError("wrote " + markdown.string() + " but not its plots: " + e.what());
  }
}

}  // namespace ponder
