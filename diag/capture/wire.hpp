#pragma once
// Network byte order and IP protocol numbers, for the packet decoder and the
// packet builder alike.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sw::capture::wire {

inline constexpr std::uint8_t kProtoTcp = 6;
inline constexpr std::uint8_t kProtoUdp = 17;

inline std::uint16_t read16(std::string_view in, std::size_t at) {
  return static_cast<std::uint16_t>((static_cast<std::uint8_t>(in[at]) << 8) | static_cast<std::uint8_t>(in[at + 1]));
}

inline std::uint32_t read32(std::string_view in, std::size_t at) {
  return (std::uint32_t{read16(in, at)} << 16) | read16(in, at + 2);
}

inline void write16(std::string& out, std::size_t at, std::uint16_t v) {
  out[at] = static_cast<char>(v >> 8);
  out[at + 1] = static_cast<char>(v & 0xff);
}

inline void write32(std::string& out, std::size_t at, std::uint32_t v) {
  write16(out, at, static_cast<std::uint16_t>(v >> 16));
  write16(out, at + 2, static_cast<std::uint16_t>(v & 0xffff));
}

}  // namespace sw::capture::wire
