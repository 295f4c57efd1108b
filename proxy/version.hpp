#pragma once
namespace sw::proxy {
inline constexpr const char* kVersion = SIPWITNESS_VERSION;
}
