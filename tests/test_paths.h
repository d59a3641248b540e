// Where tests find models and binaries: the paths the build compiled in (tests/CMakeLists.txt),
// unless environment variables of the same names say otherwise. A test that lacks what it needs
// is skipped with the reason (fails, in CI).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace ponder::testing {

inline std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// ../shared/models/stories260K.gguf: a real trained tiny model.
inline std::string stories_model() {
  return env_or("PONDER_SHARED_DIR", PONDER_SHARED_DIR) + "/models/stories260K.gguf";
}

// A file of ../shared by its path there, e.g. "data/math500.jsonl".
inline std::string shared_file(const std::string& path) {
  return env_or("PONDER_SHARED_DIR", PONDER_SHARED_DIR) + "/" + path;
}

// Random-weight models made by the make_test_models fixture (tests/make_test_models.sh).
inline std::string test_model(const std::string& name) {
  return env_or("PONDER_TEST_MODELS", PONDER_TEST_MODELS) + "/" + name;
}

inline std::string build_file(const std::string& name) {
  return env_or("PONDER_BUILD_DIR", PONDER_BUILD_DIR) + "/" + name;
}

// A file of this checkout, e.g. test data kept beside its test ("src/verify/story/guard_cases.txt";
// __FILE__ will not do: ccache builds compile with paths relative to the build directory).
inline std::string source_file(const std::string& path) { return std::string(PONDER_SOURCE_DIR) + "/" + path; }

inline bool exists(const std::string& path) { return std::filesystem::exists(path); }

}  // namespace ponder::testing

// Outside CI a missing input skips the test (with the reason); in CI (CI set) it fails, so that
// a broken set-up cannot pass as green.
#define PONDER_REQUIRE_FILE(path)                                              \
  do {                                                                         \
    if (!::ponder::testing::exists(path)) {                                    \
      if (std::getenv("CI")) FAIL() << "missing test input " << (path);        \
      GTEST_SKIP() << "missing test input " << (path);                         \
    }                                                                          \
  } while (0)
