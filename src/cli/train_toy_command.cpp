// ponder train-toy: the toy arithmetic task's data and models, reproduced from fixed seeds
// (issue 7). Stage "generator": the splits, the test split as a JSONL dataset for `ponder eval`,
// a small llama model trained from scratch on the train split, its training curve and its greedy
// accuracy per level on the validation split. Stage "prm": solutions sampled from that generator,
// each step labelled by exact checking, and a PRM in the RLHFlow format fine-tuned from the
// generator on them. Everything lands in --out-dir, with train-toy.json saying how it was made.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "engine/llama_engine.h"
#include "tasks/toy/arithmetic.h"
#include "tasks/toy/attempts.h"
#include "tasks/toy/prm_data.h"
#include "tasks/toy/train.h"
#include "util/auc.h"
#include "verify/prm.h"

namespace ponder::cli {
namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

struct TrainToyOptions {
  std::string out_dir = "models/toy";
  std::vector<std::string> stages = {"generator", "prm"};
  int train_per_level = 7000;  // what the committed models used
  int validation_per_level = 50;
  int test_per_level = 20;
  toy::TrainOptions generator;
  bool skip_eval = false;
  // The PRM: sampled solutions to the prm_problems_per_level train problems of each level that
  // follow the generator's.
  int prm_problems_per_level = 400;
  int prm_samples = 4;
  float prm_temperature = 1.0f;
  // Hard negatives: reference solutions with a one-digit slip (toy::slipped_solution), per problem.
  int prm_slips = 1;
  // Each problem's reference solution too, every step "+": with the slips, pairs of one text
  // right and wrong, so that a problem's difficulty alone does not tell its labels.
  bool prm_references = false;
  // Sampled solutions per validation problem for the held-out scores (the validation loss reads
  // the first of each): several, so that ranking within a problem can be measured.
  int prm_validation_samples = 4;
  std::string prm_loss_on = "labels";  // labels: the "+"/"-" answers only; all: every token
  toy::TrainOptions prm;
};

std::vector<toy::Document> generator_docs(const std::vector<toy::Problem>& problems) {
  std::vector<toy::Document> docs;
  docs.reserve(problems.size());
  for (const auto& p : problems) docs.push_back(p.text() + "\n" + p.solution());
  return docs;
}

// Problems [from, from + count) of each level (a split holds its levels in order, equally many).
std::vector<toy::Problem> level_slice(const std::vector<toy::Problem>& split, size_t from, size_t count) {
  std::vector<toy::Problem> out;
  const size_t level_size = split.size() / toy::kLevels;
  for (size_t level = 0; level < toy::kLevels; ++level) {
    for (size_t i = from; i < std::min(level_size, from + count); ++i) out.push_back(split[level * level_size + i]);
  }
  return out;
}

// ChatML's assistant header (kToyChatTemplate): a PRM's label follows it.
constexpr const char* kAssistantHeader = "<|im_start|>assistant\n";

std::string fmt_loss(double v) { return std::isnan(v) ? "-" : fmt::format("{:.4f}", v); }

void print_point(const toy::CurvePoint& c) {
  fmt::print("epoch {} step {:>6} tokens {:>9} train loss {} val loss {} lr {:.2e} {:.0f}s\n", c.epoch, c.step,
             c.tokens, fmt_loss(c.train_loss), fmt_loss(c.val_loss), c.lr, c.seconds);
  std::fflush(stdout);
}

// Floats as the user typed them (1e-3, not 0.0010000000474974513).
double tidy(float v) { return std::stod(fmt::format("{:g}", v)); }

ordered_json training_json(const toy::TrainOptions& t, const toy::TrainResult& r) {
  ordered_json j = {{"parameters", r.parameters}, {"epochs", t.epochs}, {"lr", tidy(t.lr)},
                    {"lr_min", tidy(t.lr_min)}, {"warmup_steps", t.warmup_steps},
                    {"weight_decay", tidy(t.weight_decay)}, {"seed", t.seed}, {"tokens_per_epoch", r.train_tokens},
                    {"train_seconds", std::round(r.train_seconds)}, {"tokens_per_second", std::round(r.tokens_per_second)}};
  if (!r.curve.empty()) {
    j["final_train_loss"] = r.curve.back().train_loss;
    if (!std::isnan(r.curve.back().val_loss)) j["final_val_loss"] = r.curve.back().val_loss;
  }
  return j;
}

std::unique_ptr<LlamaEngine> open_generator(const std::string& path, const TrainToyOptions& o) {
  LlamaEngineOptions eo;
  eo.model_path = path;
  eo.max_branches = 128;
  eo.kv_layout = KvLayout::kSplit;
  eo.n_ctx = eo.max_branches * 512;  // a problem and its longest solution fit in 512 tokens
  eo.n_threads = o.generator.n_threads;
  return open_llama_engine(eo);
}

// How many trainings made `entry` (a summary's generator entry): 1, plus one per continuation.
int trainings(const ordered_json& entry) {
  return entry.contains("continued_from") ? 1 + trainings(entry["continued_from"]) : 1;
}

// `previous`: the summary's generator entry before this run (null if none); a continued training
// nests it, so that the summary tells every run that made the model.
ordered_json train_generator(const TrainToyOptions& o, const toy::Splits& splits, const fs::path& dir,
                             const std::string& command_line, const ordered_json& previous) {
  const std::string model_path = (dir / "toy-generator.gguf").string();
  toy::TrainOptions t = o.generator;
  const bool continued = !t.init_from.empty();
  t.description = std::string("ponder toy arithmetic generator, ") +
                  (continued ? "training continued from " + t.init_from : "trained from scratch") + ": " + command_line;
  // A continued training's curve goes beside the earlier ones: generator-curve-2.csv, ...
  const int run = continued && !previous.is_null() ? trainings(previous) + 1 : 1;
  const std::string curve = run == 1 ? "generator-curve.csv" : fmt::format("generator-curve-{}.csv", run);
  fmt::print("training the generator{}\n", continued ? " (continued)" : "");
  const toy::TrainResult r =
      toy::train_language_model(generator_docs(level_slice(splits.train, 0, o.train_per_level)),
                                generator_docs(splits.validation), t, model_path, {}, print_point);
  toy::write_curve_csv((dir / curve).string(), r.curve);
  fmt::print("trained {} parameters on {} tokens per epoch: {:.0f} tokens/s, {:.0f}s; wrote {}\n", r.parameters,
             r.train_tokens, r.tokens_per_second, r.train_seconds, model_path);
  const auto& s = t.shape;
  ordered_json j = {{"file", "toy-generator.gguf"}, {"n_embd", s.n_embd}, {"n_layer", s.n_layer},
                    {"n_head", s.n_head}, {"n_ff", s.n_ff}, {"n_ctx", s.n_ctx}, {"batch", t.batch},
                    {"curve", curve}};
  if (continued) {
    j["init_from"] = fs::path(t.init_from).filename().string();
    if (!previous.is_null()) j["continued_from"] = previous;
  }
  j.update(training_json(t, r));
  if (o.skip_eval || splits.validation.empty()) return j;

  const auto engine = open_generator(model_path, o);
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  const auto attempts = toy::attempt_problems(*engine, splits.validation, 1, greedy);
  ordered_json levels = ordered_json::array();
  fmt::print("greedy accuracy on the validation split:\n");
  for (const auto& l : toy::accuracy_by_level(splits.validation, attempts)) {
    const double acc = static_cast<double>(l.correct) / static_cast<double>(l.attempts);
    fmt::print("  level {}: {}/{} = {:.1f}%\n", l.level, l.correct, l.attempts, 100.0 * acc);
    levels.push_back({{"level", l.level}, {"problems", l.attempts}, {"correct", l.correct}, {"accuracy", acc}});
  }
  j["greedy_validation"] = levels;
  std::ofstream samples(dir / "generator-validation-greedy.txt", std::ios::binary);
  for (const auto& a : attempts) {
    samples << "## " << splits.validation[a.problem].text() << (a.check.correct ? "  [correct]" : "  [wrong]") << a.text
            << "\n\n";
  }
  return j;
}

// Sampled solutions (`attempts`) as labelled PRM conversations, then per problem its reference
// solution when `references`, and `slips` slipped reference solutions (drawn from slip_seed),
// with their counts in `stats`.
std::vector<toy::Document> prm_docs(const std::vector<toy::Problem>& problems, const std::vector<toy::Attempt>& attempts,
                                    bool references, int slips, uint64_t slip_seed, ordered_json& stats) {
  std::vector<toy::Document> docs;
  int64_t good = 0, bad = 0, correct = 0, slipped = 0, reference = 0;
  auto add = [&](const toy::Problem& p, const toy::SolutionCheck& check) {
    toy::Document doc = toy::prm_document(p, check);
    if (doc.text.empty()) return;
    docs.push_back(std::move(doc));
    for (bool label : check.labels) (label ? good : bad) += 1;
    correct += check.correct ? 1 : 0;
  };
  for (const auto& a : attempts) add(problems[a.problem], a.check);
  toy::Rng rng(slip_seed);
  for (const auto& p : problems) {
    if (references) {
      add(p, toy::check_solution(p, p.solution()));
      ++reference;
    }
    for (int i = 0; i < slips; ++i) {
      if (const auto text = toy::slipped_solution(p, rng)) {
        add(p, toy::check_solution(p, *text));
        ++slipped;
      }
    }
  }
  stats = {{"solutions", attempts.size()}, {"reference_solutions", reference}, {"slipped_solutions", slipped},
           {"correct_solutions", correct}, {"steps_good", good}, {"steps_bad", bad}};
  return docs;
}

// The trained PRM read as ponder's verifier reads it, on held-out sampled solutions: how often a
// step's score is on the side of 0.5 its label is, the mean last-step score of correct and of
// wrong solutions, and how well the scores rank (what best-of-N and search depend on, unlike a
// threshold at 0.5): the AUC of the last-step score between correct and wrong solutions, and of
// each step's score between "+" and "-" steps, over all pairs and over pairs of the same level (the
// levels' base rates differ, so a score that only knows the level already ranks well over all
// pairs), and of the last-step score over pairs of the same problem: what best-of-N depends on.
ordered_json prm_accuracy(const std::string& prm_path, const std::vector<toy::Problem>& problems,
                          const std::vector<toy::Attempt>& attempts, int32_t threads) {
  LlamaEngineOptions eo;
  eo.model_path = prm_path;
  eo.max_branches = 2;
  eo.n_ctx = 2 * 1024;
  eo.n_threads = threads;
  const auto engine = open_llama_engine(eo);
  ProcessRewardModel prm(*engine, PrmFormat::rlhflow());
  int64_t steps = 0, agree = 0;
  double last[2] = {0.0, 0.0};
  int64_t solutions[2] = {0, 0};
  std::vector<double> last_scores[2], step_scores[2];  // [wrong, correct], [-, +]
  std::vector<std::vector<double>> level_last[2], level_step[2];  // the same by level - 1
  std::vector<std::vector<double>> problem_last[2];                // ... and by problem
  for (auto* v : {&level_last[0], &level_last[1], &level_step[0], &level_step[1]}) v->resize(toy::kLevels);
  for (auto* v : {&problem_last[0], &problem_last[1]}) v->resize(problems.size());
  for (const auto& a : attempts) {
    if (a.check.steps.empty()) continue;
    const auto scored = prm.extend({{prm.root(problems[a.problem].text()), a.check.steps, true}});
    const std::vector<double>& scores = scored[0].step_scores;
    for (size_t i = 0; i < scores.size(); ++i) {
      agree += (scores[i] > 0.5) == a.check.labels[i] ? 1 : 0;
      step_scores[a.check.labels[i]].push_back(scores[i]);
      level_step[a.check.labels[i]][static_cast<size_t>(problems[a.problem].level - 1)].push_back(scores[i]);
    }
    steps += static_cast<int64_t>(scores.size());
    last[a.check.correct] += scores.back();
    last_scores[a.check.correct].push_back(scores.back());
    level_last[a.check.correct][static_cast<size_t>(problems[a.problem].level - 1)].push_back(scores.back());
    problem_last[a.check.correct][a.problem].push_back(scores.back());
    solutions[a.check.correct] += 1;
    prm.release(scored[0].state);
  }
  auto mean = [](double sum, int64_t n) { return n ? ordered_json(sum / static_cast<double>(n)) : ordered_json(); };
  auto json_of = [](double v) { return std::isnan(v) ? ordered_json() : ordered_json(v); };
  auto auc = [&](const std::vector<double>& pos, const std::vector<double>& neg) { return json_of(roc_auc(pos, neg)); };
  auto auc_within = [&](const std::vector<std::vector<double>>& pos, const std::vector<std::vector<double>>& neg) {
    return json_of(roc_auc_within(pos, neg));
  };
  return {{"steps", steps}, {"step_accuracy", mean(static_cast<double>(agree), steps)},
          {"mean_last_score_correct", mean(last[1], solutions[1])}, {"mean_last_score_wrong", mean(last[0], solutions[0])},
          {"last_score_auc", auc(last_scores[1], last_scores[0])}, {"step_auc", auc(step_scores[1], step_scores[0])},
          {"last_score_auc_within_level", auc_within(level_last[1], level_last[0])},
          {"step_auc_within_level", auc_within(level_step[1], level_step[0])},
          {"last_score_auc_within_problem", auc_within(problem_last[1], problem_last[0])}};
}

ordered_json train_prm(const TrainToyOptions& o, const toy::Splits& splits, const fs::path& dir,
                       const std::string& command_line) {
  const std::string generator_path = (dir / "toy-generator.gguf").string();
  if (!fs::exists(generator_path)) {
    throw std::runtime_error("the PRM stage needs " + generator_path + ": run the generator stage first");
  }
  SamplingParams sampling;
  sampling.temperature = o.prm_temperature;
  sampling.seed = o.prm.seed;
  ordered_json train_stats, val_stats;
  std::vector<toy::Document> train_docs, val_docs;
  std::vector<toy::Attempt> val_attempts;
  {
    const auto engine = open_generator(generator_path, o);
    fmt::print("sampling {} solutions per problem for the PRM\n", o.prm_samples);
    // The train split's problems after the generator's: its solutions to problems it did not
    // train on, as at test time (except for repeats: level 1 has only ~200 problems).
    // Slips draw from a stream of their own, so that the sampled solutions do not depend on them.
    const auto problems = level_slice(splits.train, o.train_per_level, o.prm_problems_per_level);
    train_docs = prm_docs(problems, toy::attempt_problems(*engine, problems, o.prm_samples, sampling), o.prm_references,
                          o.prm_slips, o.prm.seed ^ 0x5111Bull, train_stats);
    sampling.seed += 1u << 30;  // validation draws its own samples
    // Validation keeps to sampled solutions, as at test time; the loss reads each problem's first.
    val_attempts = toy::attempt_problems(*engine, splits.validation, o.prm_validation_samples, sampling);
    std::vector<toy::Attempt> first;
    for (size_t i = 0; i < val_attempts.size(); i += static_cast<size_t>(o.prm_validation_samples)) {
      first.push_back(val_attempts[i]);
    }
    val_docs = prm_docs(splits.validation, first, false, 0, 0, val_stats);
  }
  fmt::print("PRM data: {} (validation {})\n", train_stats.dump(), val_stats.dump());

  const std::string model_path = (dir / "toy-prm.gguf").string();
  toy::TrainOptions t = o.prm;
  t.init_from = generator_path;
  t.description = "ponder toy arithmetic PRM (RLHFlow format), fine-tuned from the toy generator: " + command_line;
  // The loss on the answers only: on whole conversations it is mostly the problems' and steps'
  // text, which the generator already predicts, and the PRM learned to judge poorly.
  if (o.prm_loss_on == "labels") t.loss_after = kAssistantHeader;
  fmt::print("training the PRM\n");
  const toy::TrainResult r = toy::train_language_model(train_docs, val_docs, t, model_path,
                                                       {{"tokenizer.chat_template", toy::kToyChatTemplate}}, print_point);
  toy::write_curve_csv((dir / "prm-curve.csv").string(), r.curve);
  fmt::print("trained the PRM: {:.0f} tokens/s, {:.0f}s; wrote {}\n", r.tokens_per_second, r.train_seconds, model_path);
  ordered_json j = {{"file", "toy-prm.gguf"}, {"init_from", "toy-generator.gguf"},
                    {"problems_per_level", o.prm_problems_per_level}, {"samples_per_problem", o.prm_samples},
                    {"slips_per_problem", o.prm_slips}, {"references", o.prm_references},
                    {"validation_samples_per_problem", o.prm_validation_samples}, {"temperature", tidy(o.prm_temperature)}, {"n_ctx", t.shape.n_ctx}, {"batch", t.batch},
                    {"data", train_stats}, {"validation_data", val_stats}};
  j["loss_on"] = o.prm_loss_on;
  j["scored_tokens_per_epoch"] = r.scored_tokens;
  j.update(training_json(t, r));
  if (!val_attempts.empty()) {
    j["validation_scores"] = prm_accuracy(model_path, splits.validation, val_attempts, t.n_threads);
    fmt::print("PRM on the validation samples: {}\n", j["validation_scores"].dump());
  }
  return j;
}

int run(const TrainToyOptions& o, const std::string& command_line) {
  for (const auto& s : o.stages) {
    if (s != "generator" && s != "prm") throw std::runtime_error("unknown stage '" + s + "' (generator, prm)");
  }
  auto has = [&](const char* stage) { return std::find(o.stages.begin(), o.stages.end(), stage) != o.stages.end(); };
  fs::create_directories(o.out_dir);
  const fs::path dir(o.out_dir);

  // The generator trains on the first train_per_level problems of each level, the PRM on its
  // solutions to the next prm_problems_per_level (a level's problems do not depend on how many
  // are drawn).
  const toy::Splits splits = toy::make_splits(o.train_per_level + o.prm_problems_per_level, o.validation_per_level,
                                              o.test_per_level);
  toy::write_jsonl((dir / "toy-test.jsonl").string(), splits.test, "test");
  fmt::print("splits (seeds {}/{}/{}): train {} (generator) + {} (PRM), validation {}, test {} problems; wrote {}\n",
             toy::kTrainSeed, toy::kValidationSeed, toy::kTestSeed, o.train_per_level * toy::kLevels,
             o.prm_problems_per_level * toy::kLevels, splits.validation.size(), splits.test.size(),
             (dir / "toy-test.jsonl").string());

  // The summary keeps what earlier runs wrote about stages not run now.
  const fs::path summary_path = dir / "train-toy.json";
  ordered_json summary = ordered_json::object();
  if (std::ifstream in(summary_path); in) {
    try {
      summary = ordered_json::parse(in);
    } catch (const nlohmann::json::exception&) {
      throw std::runtime_error(summary_path.string() + " is not JSON: move it away or fix it");
    }
  }
  summary["seeds"] = {{"train", toy::kTrainSeed}, {"validation", toy::kValidationSeed}, {"test", toy::kTestSeed}};
  summary["problems_per_level"] = {{"train", o.train_per_level},
                                   {"prm_train", o.prm_problems_per_level},
                                   {"validation", o.validation_per_level},
                                   {"test", o.test_per_level}};
  // Written after each stage, so that a later stage's failure loses nothing of an earlier one.
  auto save = [&] {
    std::ofstream(summary_path, std::ios::binary) << summary.dump(2) << '\n';
    fmt::print("wrote {}\n", summary_path.string());
  };
  if (has("generator")) {
    const ordered_json previous = summary.contains("generator") ? summary["generator"] : ordered_json();
    summary["generator"] = train_generator(o, splits, dir, command_line, previous);
    summary["generator"]["command"] = command_line;
    save();
  }
  if (has("prm")) {
    summary["prm"] = train_prm(o, splits, dir, command_line);
    summary["prm"]["command"] = command_line;
    save();
  }
  return 0;
}

void add_training_options(CLI::App* cmd, toy::TrainOptions& t, const std::string& prefix) {
  cmd->add_option("--" + prefix + "epochs", t.epochs, "passes over the training data")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--" + prefix + "lr", t.lr, "peak learning rate (AdamW)")->capture_default_str();
  cmd->add_option("--" + prefix + "lr-min", t.lr_min, "final learning rate (cosine decay)")->capture_default_str();
  cmd->add_option("--" + prefix + "warmup", t.warmup_steps, "linear warmup steps")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--" + prefix + "weight-decay", t.weight_decay, "AdamW weight decay")->capture_default_str();
  cmd->add_option("--" + prefix + "seed", t.seed, "seed of the initial weights, the training order (and samples)")
      ->capture_default_str();
  cmd->add_option("--" + prefix + "log-points", t.log_points, "training-curve points per epoch")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--" + prefix + "batch", t.batch, "windows per optimizer step")
      ->check(CLI::PositiveNumber)->capture_default_str();
}

}  // namespace

Command add_train_toy_command(CLI::App& app) {
  auto o = std::make_shared<TrainToyOptions>();
  o->prm.lr = 5e-4f;
  o->prm.lr_min = 5e-5f;
  o->prm.warmup_steps = 20;
  o->prm.shape.n_ctx = 512;
  o->prm.batch = 1;
  CLI::App* cmd = app.add_subcommand(
      "train-toy", "Reproduce the toy arithmetic task from fixed seeds: its splits, the test set as JSONL, a small "
                   "generator trained from scratch and a PRM (with ggml-opt, llama.cpp's training engine)");
  cmd->add_option("--out-dir", o->out_dir, "where the dataset, models, curves and summary go")->capture_default_str();
  cmd->add_option("--stages", o->stages, "what to make: generator, prm (the PRM needs the generator in --out-dir)")
      ->delimiter(',')->capture_default_str();
  cmd->add_option("--train-per-level", o->train_per_level, "training problems per level")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--validation-per-level", o->validation_per_level, "validation problems per level")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--test-per-level", o->test_per_level, "test problems per level")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  auto& s = o->generator.shape;
  cmd->add_option("--n-embd", s.n_embd, "generator embedding width")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--n-layer", s.n_layer, "generator blocks")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--n-head", s.n_head, "generator attention heads")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--n-ff", s.n_ff, "generator feed-forward width")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--n-ctx", s.n_ctx, "generator tokens per training window (and its context length)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  add_training_options(cmd, o->generator, "");
  cmd->add_option("--init-from", o->generator.init_from,
                  "continue training this toy generator GGUF (its shape is kept) instead of starting from scratch")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--skip-eval", o->skip_eval, "do not measure the generator's greedy accuracy on validation");
  cmd->add_option("--prm-problems-per-level", o->prm_problems_per_level,
                  "problems per level (after the generator's in the train split) sampled for the PRM")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--prm-samples", o->prm_samples, "solutions sampled per problem for the PRM")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--prm-temperature", o->prm_temperature, "sampling temperature of those solutions")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--prm-slips", o->prm_slips,
                  "hard negatives per problem: the reference solution with a one-digit slip in one step")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_flag("--prm-references", o->prm_references,
                "also each problem's reference solution, every step \"+\" (with the slips: the same text right and "
                "wrong)");
  cmd->add_option("--prm-validation-samples", o->prm_validation_samples,
                  "solutions sampled per validation problem for the held-out scores (the loss reads the first)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  add_training_options(cmd, o->prm, "prm-");
  cmd->add_option("--prm-loss-on", o->prm_loss_on,
                  "what the PRM's loss counts: labels (its \"+\"/\"-\" answers) or all (every token)")
      ->check(CLI::IsMember({"labels", "all"}))
      ->capture_default_str();
  cmd->add_option("--prm-n-ctx", o->prm.shape.n_ctx, "PRM tokens per training window (its conversations are longer)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--threads", o->generator.n_threads, "CPU threads (0: all)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_flag("--verbose", o->generator.verbose, "show llama.cpp's log");
  return {cmd, [o, cmd] {
            o->prm.n_threads = o->generator.n_threads;
            o->prm.verbose = o->generator.verbose;
            // The options given, recorded in the summary and the models so that each says how it
            // was made.
            std::string line = "ponder train-toy";
            for (const auto* opt : cmd->get_options()) {
              if (opt->count() == 0) continue;
              line += " " + opt->get_name();
              if (opt->get_expected_min() == 0) continue;
              std::string values;
              for (const auto& v : opt->results()) values += (values.empty() ? "" : ",") + v;
              line += " " + values;
            }
            return run(*o, line);
          }};
}

}  // namespace ponder::cli
