#pragma once
// Small helpers for SIP text, allocation-free but for to_lower. SIP line folding (CRLF followed by
// whitespace) counts as whitespace everywhere, so folded values need no copy.
#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sw::sip {

constexpr bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

constexpr char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

inline std::string to_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = ascii_lower(c);
  return out;
}

constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

constexpr std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

// A set of bytes built at compile time and tested with one lookup per byte
// (string_view::find_first_of calls memchr on the set for every byte of text).
class CharSet {
 public:
  constexpr explicit CharSet(std::string_view chars) {
    for (char c : chars) bits_[static_cast<unsigned char>(c)] = true;
  }
  constexpr bool has(char c) const { return bits_[static_cast<unsigned char>(c)]; }
  // This set and the characters of more.
  constexpr CharSet with(std::string_view more) const {
    CharSet out = *this;
    for (char c : more) out.bits_[static_cast<unsigned char>(c)] = true;
    return out;
  }
  constexpr bool any_in(std::string_view text) const {
    for (char c : text)
      if (has(c)) return true;
    return false;
  }
  constexpr bool all_in(std::string_view text) const {
    for (char c : text)
      if (!has(c)) return false;
    return true;
  }

 private:
  std::array<bool, 256> bits_{};
};

// RFC 3261 25.1 token characters.
inline constexpr CharSet kTokenChars{"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"};

constexpr bool is_token_char(char c) { return kTokenChars.has(c); }

constexpr bool is_token(std::string_view s) { return !s.empty() && kTokenChars.all_in(s); }

// Parses an unsigned decimal that must fill the whole view.
template <class T>
std::optional<T> parse_uint(std::string_view s) {
  T v{};
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Appends an integer in decimal, without the temporary string of std::to_string.
template <class T>
void append_decimal(std::string& out, T value) {
  char digits[24];
  out.append(digits, std::to_chars(digits, digits + sizeof digits, value).ptr);
}

// Splits a comma-separated header value into its elements, honouring quoted
// strings (with backslash escapes) and <...> (URIs may contain commas).
// Calls f(std::string_view element) with each trimmed, non-empty element;
// stops early when f returns false. Returns false if a quote or bracket is unbalanced.
template <class F>
bool for_each_list_item(std::string_view value, F&& f) {
  // Most bytes open nothing and split nothing: they cost one table lookup each.
  constexpr CharSet kOpensOrSplits{"\"<,"};
  const std::size_t n = value.size();
  std::size_t start = 0;
  for (std::size_t i = 0; i < n; ++i) {
    while (i < n && !kOpensOrSplits.has(value[i])) ++i;
    if (i == n) break;
    if (value[i] == '"') {
      for (++i; i < n && value[i] != '"'; ++i)
        if (value[i] == '\\') ++i;
      if (i >= n) return false;
    } else if (value[i] == '<') {
      i = value.find('>', i + 1);
      if (i == std::string_view::npos) return false;
    } else {
      auto item = trim(value.substr(start, i - start));
      if (!item.empty() && !f(item)) return true;
      start = i + 1;
    }
  }
  auto item = trim(value.substr(start));
  if (!item.empty()) f(item);
  return true;
}

// Calls f(name, value) for each ;name[=value] parameter of a list such as
// ";lr;transport=tcp", in order, until f returns false. Both come trimmed; a
// flag's value is "", a quoted value keeps its quotes, and a ';' inside quotes
// (a backslash escapes there) does not end a parameter.
template <class F>
void for_each_param(std::string_view params, F&& f) {
  constexpr auto npos = std::string_view::npos;
  // Only a quoted value can hold a ';' that does not end a parameter: without
  // quotes the parameters are split by memchr instead of byte by byte.
  const bool quoted = params.find('"') != npos;
  std::size_t i = params.find(';');
  while (i != npos) {
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
    if (!f(trim(param.substr(0, eq)), eq == npos ? std::string_view{} : trim(param.substr(eq + 1)))) return;
    i = end < params.size() ? end : npos;
  }
}

// Looks up a ;name[=value] parameter in a parameter list such as ";lr;transport=tcp".
// Returns the value of its first occurrence (empty for a flag) or nullopt when
// absent. Names compare case-insensitively; quoted values keep their quotes.
std::optional<std::string_view> find_param(std::string_view params, std::string_view name);

// Writes an IPv4 address (4 bytes, network order) in dotted form at out and
// returns the end. Faster than inet_ntop, which goes through sprintf: the
// proxy and the capture reader format addresses for every message.
char* write_ipv4(const unsigned char* bytes, char* out);

// Reads a dotted-quad IPv4 address into bytes (4, network order) as inet_pton
// does (no leading zeros, which some parsers read as octal), without its copy
// into a C string: the relay and the hints read a few per message.
bool read_ipv4(std::string_view text, unsigned char* bytes);

}  // namespace sw::sip
