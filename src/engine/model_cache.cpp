#include "engine/model_cache.h"

#include <filesystem>
#include <map>
#include <mutex>
#include <tuple>

#include "llama.h"

namespace ponder {

std::shared_ptr<llama_model> load_shared_model(const std::string& path, int n_gpu_layers, bool vocab_only) {
  using Key = std::tuple<std::string, int, bool>;
  static std::mutex mu;
  static std::map<Key, std::weak_ptr<llama_model>> loaded;

  std::error_code ec;
  std::string canonical = std::filesystem::weakly_canonical(path, ec).string();
  if (ec) canonical = path;
  // Loading happens under the lock: two threads asking for the same file must not load it twice.
  std::lock_guard<std::mutex> lock(mu);
  if (vocab_only) {
    if (auto full = loaded[Key{canonical, n_gpu_layers, false}].lock()) return full;
  }
  std::weak_ptr<llama_model>& slot = loaded[Key{canonical, n_gpu_layers, vocab_only}];
  if (auto model = slot.lock()) return model;
  llama_model_params params = llama_model_default_params();
  params.n_gpu_layers = n_gpu_layers;
  params.vocab_only = vocab_only;
  llama_model* model = llama_model_load_from_file(path.c_str(), params);
  if (!model) return nullptr;
  std::shared_ptr<llama_model> shared(model, [](llama_model* m) { llama_model_free(m); });
  slot = shared;
  return shared;
}

}  // namespace ponder
