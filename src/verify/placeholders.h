// Filling "{name}" placeholders in verifier prompt templates.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace ponder {

// Replaces each placeholder (e.g. "{problem}") by its value in one pass over `tmpl`, so that
// placeholders inside the inserted values stay as they are.
inline std::string fill_placeholders(std::string_view tmpl,
                                     std::initializer_list<std::pair<std::string_view, std::string_view>> values) {
  std::string out;
  for (size_t i = 0; i < tmpl.size();) {
    bool replaced = false;
    for (const auto& [name, value] : values) {
      if (tmpl.substr(i).starts_with(name)) {
        out += value;
        i += name.size();
        replaced = true;
        break;
      }
    }
    if (!replaced) out += tmpl[i++];
  }
  return out;
}

}  // namespace ponder
