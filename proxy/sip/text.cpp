#include "text.hpp"

#include <charconv>

namespace sw::sip {

std::optional<std::string_view> find_param(std::string_view params, std::string_view name) {
  std::optional<std::string_view> found;
  for_each_param(params, [&](std::string_view pname, std::string_view value) {
    if (!iequals(pname, name)) return true;
    found = value;
    return false;
  });
  return found;
}

char* write_ipv4(const unsigned char* bytes, char* out) {
  for (int i = 0; i < 4; ++i) {
    if (i) *out++ = '.';
    out = std::to_chars(out, out + 3, bytes[i]).ptr;
  }
  return out;
}

bool read_ipv4(std::string_view text, unsigned char* bytes) {
  std::size_t i = 0;
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0 && (i >= text.size() || text[i++] != '.')) return false;
    std::size_t start = i;
    unsigned value = 0;
    while (i < text.size() && i - start < 3 && text[i] >= '0' && text[i] <= '9')
      value = value * 10 + static_cast<unsigned>(text[i++] - '0');
    if (i == start || value > 255 || (text[start] == '0' && i - start > 1)) return false;
    bytes[octet] = static_cast<unsigned char>(value);
  }
  return i == text.size();
}

}  // namespace sw::sip
