#include "text.hpp"

#include <charconv>

namespace sw::sip {

std::optional<std::string_view> find_param(std::string_view params, std::string_view name) {
  // Only a quoted value can hold a ';' that does not end a parameter: without
  // quotes the parameters are split by memchr instead of byte by byte.
  const bool quoted = params.find('"') != std::string_view::npos;
  std::size_t i = params.find(';');
  while (i != std::string_view::npos) {
    ++i;
    std::size_t end = i;
    if (quoted) {
      bool in_quote = false;
      while (end < params.size() && (in_quote || params[end] != ';')) {
        if (params[end] == '"') in_quote = !in_quote;
        else if (in_quote && params[end] == '\\') ++end;
        ++end;
      }
      end = std::min(end, params.size());
    } else {
      end = std::min(params.find(';', i), params.size());
    }
    auto param = params.substr(i, end - i);
    auto eq = param.find('=');
    auto pname = trim(param.substr(0, eq));
    if (iequals(pname, name))
      return eq == std::string_view::npos ? std::string_view{} : trim(param.substr(eq + 1));
    i = end < params.size() ? end : std::string_view::npos;
  }
  return std::nullopt;
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
