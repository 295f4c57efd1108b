#pragma once
// Forwarding is an edit list over the received bytes: every byte not covered by
// an edit leaves exactly as it arrived (Authorization, SDP, unknown headers).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sw::proxy {

class EditList {
 public:
  EditList() { edits_.reserve(8); }  // a forwarded request's edits, without regrowing
  void insert(std::uint32_t offset, std::string text) { edits_.push_back({offset, 0, std::move(text)}); }
  void erase(std::uint32_t offset, std::uint32_t length) { edits_.push_back({offset, length, {}}); }
  void replace(std::uint32_t offset, std::uint32_t length, std::string text) {
    edits_.push_back({offset, length, std::move(text)});
  }
  bool empty() const { return edits_.empty(); }
  // Applies the edits to original (offsets refer to it). Edits at the same offset
  // keep the order they were added in; overlapping erases are a caller bug and
  // are clipped rather than trusted.
  std::string apply(std::string_view original) const;

 private:
  struct Edit {
    std::uint32_t offset;
    std::uint32_t erase;
    std::string text;
  };
  std::vector<Edit> edits_;
};

}  // namespace sw::proxy
