#include "edit_list.hpp"

#include <algorithm>
#include <array>
#include <span>
#include <numeric>

namespace sw::proxy {

std::string EditList::apply(std::string_view original) const {
  // A message gets a handful of edits: their order is an insertion sort on the
  // stack (stable, so edits at one offset keep the order they were added in).
  constexpr std::size_t kOnStack = 16;
  std::array<std::uint32_t, kOnStack> on_stack;
  std::vector<std::uint32_t> on_heap;
  std::span<std::uint32_t> order(on_stack.data(), edits_.size());
  if (edits_.size() > kOnStack) {
    on_heap.resize(edits_.size());
    order = on_heap;
  }
  std::iota(order.begin(), order.end(), 0u);
  for (std::size_t i = 1; i < order.size(); ++i)
    for (std::size_t j = i; j > 0 && edits_[order[j - 1]].offset > edits_[order[j]].offset; --j)
      std::swap(order[j - 1], order[j]);
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
