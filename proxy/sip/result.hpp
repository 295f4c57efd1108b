#pragma once
// One error vocabulary for the pure layers (SIP model, forwarding, routing).
// Details are static strings so that reporting an error never allocates.
#include <cstdint>
#include <string_view>
#include <utility>
#include <variant>

namespace sw {

enum class Errc : std::uint8_t {
  incomplete,          // stream framing: more bytes needed
  too_large,           // message over the size limit
  too_many_headers,    // header count over the limit
  line_too_long,       // one line over the limit
  bad_start_line,      // request or status line malformed
  bad_version,         // SIP version other than 2.0 (answer 505)
  bad_header,          // header line malformed
  duplicate_header,    // a single-valued header appears twice
  missing_header,      // a mandatory header is absent
  bad_content_length,  // Content-Length malformed, negative, or beyond the bytes
  bad_value,           // a numeric or structured value is out of range
  bad_uri,
  bad_via,
  cseq_mismatch,       // CSeq method differs from the request method
};

struct Error {
  Errc code;
  std::string_view detail;  // always a string literal
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error e) : v_(e) {}                 // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace sw
