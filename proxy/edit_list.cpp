#include "edit_list.hpp"

#include <algorithm>
#include <numeric>

namespace sw::proxy {

std::string EditList::apply(std::string_view original) const {
  std::vector<std::size_t> order(edits_.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return edits_[a].offset < edits_[b].offset; });
  std::size_t grow = 0;
  for (const auto& e : edits_) grow += e.text.size();
  std::string out;
  out.reserve(original.size() + grow);
  std::size_t pos = 0;
  for (auto i : order) {
    const auto& e = edits_[i];
    std::size_t at = std::min<std::size_t>(e.offset, original.size());
    if (at > pos) {
      out.append(original.substr(pos, at - pos));
      pos = at;
    }
    out.append(e.text);
    pos = std::max(pos, std::min<std::size_t>(at + e.erase, original.size()));
  }
  out.append(original.substr(std::min(pos, original.size())));
  return out;
}

}  // namespace sw::proxy
