#include "header.hpp"

#include <array>
#include <cstdint>

#include "text.hpp"

namespace sw::sip {
namespace {

struct Entry {
  std::string_view name;
  char compact;  // RFC 3261 7.3.3 and later RFCs; 0 when none
};

constexpr std::array<Entry, static_cast<std::size_t>(HeaderId::Count_)> kHeaders{{
    {"", 0},
    {"Via", 'v'},
    {"From", 'f'},
    {"To", 't'},
    {"Call-ID", 'i'},
    {"CSeq", 0},
    {"Contact", 'm'},
    {"Max-Forwards", 0},
    {"Route", 0},
    {"Record-Route", 0},
    {"Path", 0},
    {"Content-Length", 'l'},
    {"Content-Type", 'c'},
    {"Content-Encoding", 'e'},
    {"Expires", 0},
    {"Authorization", 0},
    {"Proxy-Authorization", 0},
    {"WWW-Authenticate", 0},
    {"Proxy-Authenticate", 0},
    {"Proxy-Require", 0},
    {"Require", 0},
    {"Supported", 'k'},
    {"Subject", 's'},
    {"Event", 'o'},
    {"Allow-Events", 'u'},
    {"Refer-To", 'r'},
    {"Referred-By", 'b'},
    {"Session-Expires", 'x'},
    {"Identity", 'y'},
    {"Reject-Contact", 'j'},
    {"Accept-Contact", 'a'},
    {"Request-Disposition", 'd'},
    {"User-Agent", 0},
    {"Server", 0},
}};

}  // namespace

// Known names grouped by length: a name is compared with the few of its length
// only (every header line of every message is looked up).
constexpr std::size_t kLongestName = 19;
constexpr auto kByLength = [] {
  std::array<std::array<std::uint8_t, 8>, kLongestName + 1> by{};
  std::array<std::size_t, kLongestName + 1> used{};
  for (std::size_t i = 1; i < kHeaders.size(); ++i) {
    auto n = kHeaders[i].name.size();
    by[n][used[n]++] = static_cast<std::uint8_t>(i);
  }
  return by;
}();

HeaderId header_id(std::string_view name) {
  if (name.size() == 1) {
    char c = ascii_lower(name[0]);
    for (std::size_t i = 1; i < kHeaders.size(); ++i)
      if (kHeaders[i].compact == c) return static_cast<HeaderId>(i);
    return HeaderId::Other;
  }
  if (name.size() > kLongestName) return HeaderId::Other;
  for (auto i : kByLength[name.size()]) {
    if (i == 0) break;
    // Most senders write the canonical spelling: one memcmp before the case-blind compare.
    if (kHeaders[i].name == name || iequals(kHeaders[i].name, name)) return static_cast<HeaderId>(i);
  }
  return HeaderId::Other;
}

std::string_view header_name(HeaderId id) { return kHeaders[static_cast<std::size_t>(id)].name; }

}  // namespace sw::sip
