// Plain-text SIP traces (diag/capture/text_trace): every format the reader
// knows, the framing rules (Content-Length against CRLF/LF mixtures, bodies with
// blank lines, messages back to back), what it refuses, and that it streams.
// Samples of each format live in tests/data/traces.
#include "diag/capture/text_trace.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/sip/message.hpp"

namespace sw::capture {
namespace {

using namespace std::chrono_literals;
using std::chrono::sys_days;

const std::filesystem::path kTraceDir = std::filesystem::path(SIPWITNESS_TEST_DATA) / "traces";

// What the sink saw, copied (the reader's views die with the call).
struct Got {
  std::optional<TimePoint> time;
  std::string transport, src, dst, bytes;
  std::uint64_t offset = 0, line = 0;
};

struct Read {
  std::vector<Got> messages;
  ReadOutcome outcome;
};

Read read_stream(std::istream& in, const ProgressSink& progress = {}, std::uint64_t total = 0) {
  Read r;
  r.outcome = read_text_trace(
      in, "trace.txt",
      [&](const CapturedMessage& m) {
        r.messages.push_back(Got{m.time, std::string(m.transport), m.src, m.dst,
                                 std::string(m.bytes), m.offset, m.line});
      },
      progress, total);
  return r;
}

Read read_text(std::string_view text) {
  std::istringstream in{std::string(text)};
  return read_stream(in);
}

// A complete message with CRLF line ends and a Content-Length that counts them.
std::string message(std::string_view start, std::string_view call_id, std::string_view body = "",
                    std::string_view extra_headers = "") {
  std::string m(start);
  m += "\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-";
  m += call_id;
  m += "\r\nFrom: <sip:1001@example.com>;tag=a1\r\nTo: <sip:1001@example.com>\r\nCall-ID: ";
  m += call_id;
  m += "\r\nCSeq: 1 ";
  m += start.starts_with("SIP/2.0") ? std::string_view("REGISTER")
                                    : start.substr(0, start.find(' '));
  m += "\r\n";
  m += extra_headers;
  m += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  m += body;
  return m;
}

std::string request(std::string_view call_id, std::string_view body = "",
                    std::string_view extra = "") {
  return message("REGISTER sip:example.com SIP/2.0", call_id, body, extra);
}

std::string lf(std::string_view crlf) {
  std::string out;
  for (std::size_t i = 0; i < crlf.size(); ++i)
    if (!(crlf[i] == '\r' && i + 1 < crlf.size() && crlf[i + 1] == '\n')) out += crlf[i];
  return out;
}

std::uint64_t lines_in(std::string_view s) {
  return static_cast<std::uint64_t>(std::count(s.begin(), s.end(), '\n'));
}

TimePoint utc(int y, unsigned mo, unsigned d, std::chrono::nanoseconds time_of_day) {
  return std::chrono::time_point_cast<TimePoint::duration>(
      sys_days{std::chrono::year{y} / std::chrono::month{mo} / std::chrono::day{d}} + time_of_day);
}

// The reader's output must be what the SIP parser accepts as one message whose
// body is exactly Content-Length bytes.
void expect_parses(const Got& got) {
  auto m = sip::parse(got.bytes, sip::Framing::datagram);
  ASSERT_TRUE(m.ok()) << m.error().detail << "\n" << got.bytes;
  EXPECT_EQ(m->raw.size(), got.bytes.size()) << "bytes past the message";
  auto cl = m->value(sip::HeaderId::ContentLength);
  if (!cl.empty()) {
    EXPECT_EQ(std::to_string(m->body.size()), cl);
  }
}

// Serves head, then unit `count` times, then tail, holding one unit only: far
// more input than a test could hold.
class RepeatBuf : public std::streambuf {
 public:
  RepeatBuf(std::string head, std::string unit, std::uint64_t count, std::string tail)
      : head_(std::move(head)), unit_(std::move(unit)), tail_(std::move(tail)), count_(count) {}
  std::uint64_t size() const { return head_.size() + unit_.size() * count_ + tail_.size(); }

 protected:
  int_type underflow() override {
    while (gptr() == egptr()) {
      std::string* next = nullptr;
      if (stage_ == 0) {
        next = &head_;
        stage_ = 1;
      } else if (stage_ == 1 && served_ < count_) {
        next = &unit_;
        ++served_;
      } else if (stage_ == 1) {
        next = &tail_;
        stage_ = 2;
      } else {
        return traits_type::eof();
      }
      setg(next->data(), next->data(), next->data() + next->size());
    }
    return traits_type::to_int_type(*gptr());
  }

 private:
  std::string head_, unit_, tail_;
  std::uint64_t count_;
  std::uint64_t served_ = 0;
  int stage_ = 0;
};

// Serves `data`, then fails like a disk would.
class FailingBuf : public std::streambuf {
 public:
  explicit FailingBuf(std::string data) : data_(std::move(data)) {}

 protected:
  int_type underflow() override {
    if (served_) throw std::runtime_error("device error");
    served_ = true;
    setg(data_.data(), data_.data(), data_.data() + data_.size());
    return traits_type::to_int_type(*gptr());
  }

 private:
  std::string data_;
  bool served_ = false;
};

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// ---- raw messages ------------------------------------------------------------

TEST(TextTrace, RawMessagesSeparatedByBlankLines) {
  const std::string prose = "Trace from the customer, as sent:\n\n";
  const auto a = request("raw-a");
  const auto b = message("SIP/2.0 401 Unauthorized", "raw-a", "",
                         "WWW-Authenticate: Digest realm=\"example.com\", nonce=\"n1\"\r\n");
  const auto text = prose + a + "\r\n" + b + "\r\n\r\n";
  auto r = read_text(text);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].bytes, a);
  EXPECT_EQ(r.messages[1].bytes, b);
  EXPECT_EQ(r.messages[0].offset, prose.size());
  EXPECT_EQ(r.messages[0].line, 3u);
  EXPECT_EQ(r.messages[1].offset, prose.size() + a.size() + 2);
  EXPECT_EQ(r.messages[1].line, 3 + lines_in(a) + 1);
  for (const auto& m : r.messages) {
    EXPECT_FALSE(m.time);
    EXPECT_EQ(m.transport, "");
    EXPECT_EQ(m.src, "");
    EXPECT_EQ(m.dst, "");
    expect_parses(m);
  }
  EXPECT_EQ(r.outcome.stats.bytes, text.size());
  EXPECT_EQ(r.outcome.stats.sip_messages, 2u);
  EXPECT_EQ(r.outcome.stats.unreadable_text, 0u);
  EXPECT_EQ(r.outcome.stats.packets, 0u);
  EXPECT_FALSE(r.outcome.error);
}

TEST(TextTrace, LfOnlyTraceIsHandedOverWithCrlf) {
  // A pasted trace lost its CRs; Content-Length still counts them.
  const auto invite = message("INVITE sip:2002@example.com SIP/2.0", "lf-1",
                              "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\n"
                              "t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
                              "Content-Type: application/sdp\r\n");
  const auto trying = message("SIP/2.0 100 Trying", "lf-1");
  auto r = read_text(lf(invite) + "\n" + lf(trying));
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].bytes, invite);
  EXPECT_EQ(r.messages[1].bytes, trying);
  EXPECT_EQ(r.messages[1].offset, lf(invite).size() + 1);
  EXPECT_EQ(r.messages[1].line, lines_in(invite) + 2);
  for (const auto& m : r.messages) expect_parses(m);
}

TEST(TextTrace, MixedLineEndsInsideTheHeadersAreAllCrlf) {
  const auto a = request("mixed-1");
  std::string mixed = a;
  // Every other line break loses its CR.
  for (std::size_t pos = mixed.find("\r\n"), n = 0; pos != std::string::npos;
       pos = mixed.find("\r\n", pos + 1), ++n)
    if (n % 2 == 1) mixed.erase(pos, 1);
  auto r = read_text(mixed);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].bytes, a);
}

TEST(TextTrace, BodyWithBareLfAsSentIsKeptAsSent) {
  // The file kept its CRs (the start line ends in CRLF), so a body of bare LFs
  // is what the sender sent, and Content-Length counts those.
  const auto with_lf_body = request("lfbody-1", "v=0\no=- 1 1 IN IP4 192.0.2.10\ns=-\n");
  const auto next = request("lfbody-2");
  auto r = read_text(with_lf_body + next);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].bytes, with_lf_body);
  EXPECT_EQ(r.messages[1].bytes, next);

  // The same sender, in a trace that lost the header CRs: counting the body
  // with CRLF breaks ends inside a line, the file's own bytes end at a break.
  r = read_text(lf(with_lf_body) + lf(next));
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].bytes, with_lf_body);
  EXPECT_EQ(r.messages[1].bytes, next);
  EXPECT_EQ(r.outcome.stats.unreadable_text, 0u);
}

TEST(TextTrace, BodyWithBlankLinesIsFramedByContentLength) {
  const std::string body =
      "--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\ns=-\r\n\r\n"
      "--b1\r\nContent-Type: message/sipfrag\r\n\r\nSIP/2.0 200 OK\r\n--b1--\r\n";
  const auto a = request("multi-1", body, "Content-Type: multipart/mixed;boundary=b1\r\n");
  const auto b = message("SIP/2.0 200 OK", "multi-1");
  for (bool pasted : {false, true}) {
    SCOPED_TRACE(pasted ? "LF" : "CRLF");
    auto text = a + "\r\n" + b;
    auto r = read_text(pasted ? lf(text) : text);
    ASSERT_EQ(r.messages.size(), 2u);
    EXPECT_EQ(r.messages[0].bytes, a);
    EXPECT_EQ(r.messages[1].bytes, b);
    EXPECT_EQ(r.messages[1].line, lines_in(a) + 2);
    EXPECT_EQ(r.outcome.stats.unreadable_text, 0u);
    expect_parses(r.messages[0]);
  }
}

TEST(TextTrace, MessagesBackToBackWithoutBlankLine) {
  const auto b = message("SIP/2.0 200 OK", "b2b");
  {
    SCOPED_TRACE("body ends in CRLF, next start line follows at once");
    const auto a = request("b2b", "hello\r\n");
    auto r = read_text(a + b);
    ASSERT_EQ(r.messages.size(), 2u);
    EXPECT_EQ(r.messages[0].bytes, a);
    EXPECT_EQ(r.messages[1].bytes, b);
    EXPECT_EQ(r.messages[1].offset, a.size());
    EXPECT_EQ(r.messages[1].line, lines_in(a) + 1);
  }
  for (bool pasted : {false, true}) {
    SCOPED_TRACE(pasted ? "body without line break, LF trace"
                        : "body without line break, CRLF trace");
    const auto a = request("b2b", "hello\r\nworld");  // a stream: the next message starts mid-line
    auto first = pasted ? lf(a) : a;
    auto r = read_text(first + (pasted ? lf(b) : b));
    ASSERT_EQ(r.messages.size(), 2u);
    EXPECT_EQ(r.messages[0].bytes, a);
    EXPECT_EQ(r.messages[1].bytes, b);
    EXPECT_EQ(r.messages[1].offset, first.size());
    EXPECT_EQ(r.messages[1].line, lines_in(a) + 1);
  }
  {
    SCOPED_TRACE("Content-Length 0 and the empty line dropped");
    const auto a = request("b2b");
    auto cut = a.substr(0, a.size() - 2);
    auto r = read_text(cut + b);
    ASSERT_EQ(r.messages.size(), 2u);
    EXPECT_EQ(r.messages[0].bytes, a);
    EXPECT_EQ(r.messages[1].bytes, b);
    EXPECT_EQ(r.messages[1].offset, cut.size());
  }
}

TEST(TextTrace, WithoutContentLengthTheBodyRunsToTheBlankLine) {
  const std::string head =
      "MESSAGE sip:2002@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-m\r\n"
      "From: <sip:1001@example.com>;tag=1\r\nTo: <sip:2002@example.com>\r\nCall-ID: nocl\r\n"
      "CSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n\r\n";
  const std::string body = "line one\r\nline two\r\n";
  const auto b = message("SIP/2.0 200 OK", "nocl");
  for (bool pasted : {false, true}) {
    SCOPED_TRACE(pasted ? "LF" : "CRLF");
    auto text = head + body + "\r\n" + b;
    auto r = read_text(pasted ? lf(text) : text);
    ASSERT_EQ(r.messages.size(), 2u);
    EXPECT_EQ(r.messages[0].bytes, head + body);
    EXPECT_EQ(r.messages[1].bytes, b);
  }
  // With no body at all the message ends at the empty line after the headers.
  auto r = read_text(head + "\r\n" + b);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].bytes, head);
}

TEST(TextTrace, TrailingBlankLinesAreNotPartOfTheBody) {
  const auto a = request("trail-1");
  const auto b = request("trail-2", "hello");
  const auto c = request("trail-3");
  auto text = a + "\r\n\r\n\n\n   \n\t\n" + b + "\r\n\r\n\r\n" + c + "\n\n";
  auto r = read_text(text);
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].bytes, a);
  EXPECT_EQ(r.messages[1].bytes, b);
  EXPECT_EQ(r.messages[2].bytes, c);
  EXPECT_EQ(r.outcome.stats.unreadable_text, 0u);
}

TEST(TextTrace, ContentLengthCompactFormAndOversize) {
  std::string compact = request("compact", "hello");
  compact.replace(compact.find("Content-Length:"), 15, "l:");
  auto r = read_text(compact + "\r\n");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].bytes, compact);

  std::string huge = request("huge");
  huge.replace(huge.find("Content-Length: 0"), 17, "Content-Length: 99999999");
  const auto next = request("after-huge");
  r = read_text(huge + "some body\r\n\r\n" + next);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].bytes, next);
  EXPECT_EQ(r.outcome.stats.unreadable_text, 1u);
}

// ---- what cannot be read ------------------------------------------------------

TEST(TextTrace, TruncatedLastMessageIsUnreadable) {
  const auto a = request("trunc-1");
  auto b = request("trunc-2", std::string(200, 'x'));
  b.resize(b.size() - 150);  // the trace ends 150 bytes into the body
  auto r = read_text(a + "\r\n" + b);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].bytes, a);
  EXPECT_EQ(r.outcome.stats.unreadable_text, 1u);
  EXPECT_EQ(r.outcome.stats.bytes, a.size() + 2 + b.size());
  EXPECT_FALSE(r.outcome.error);

  // Headers cut off: no empty line and no Content-Length 0 to vouch for them.
  auto headers_only = request("trunc-3");
  headers_only.resize(headers_only.find("Content-Length"));
  r = read_text(a + headers_only);
  EXPECT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.outcome.stats.unreadable_text, 1u);

  // The file ends inside the start line.
  r = read_text(a + "SIP/2.0 200 OK");
  EXPECT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.outcome.stats.unreadable_text, 1u);
}

TEST(TextTrace, TruncatedBodyDoesNotSwallowTheNextMessage) {
  // Content-Length says 40 bytes more than the trace kept; counting them would
  // end inside the next message.
  auto a = request("short-1", "v=0\r\n");
  a.replace(a.find("Content-Length: 5"), 17, "Content-Length: 45");
  const auto b = message("SIP/2.0 200 OK", "short-2");
  const auto c = request("short-3");
  auto r = read_text(a + "\r\n" + b + "\r\n" + c);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].bytes, b);
  EXPECT_EQ(r.messages[1].bytes, c);
  EXPECT_EQ(r.outcome.stats.unreadable_text, 1u);
}

TEST(TextTrace, GarbageHeadersAreUnreadable) {
  const auto good = request("good-1");
  struct Row {
    const char* name;
    std::string text;
  };
  const std::vector<Row> rows = {
      {"a line that is no header",
       "INVITE sip:2002@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10\r\nthis is not a "
       "header\r\n"
       "Call-ID: g1\r\n\r\n"},
      {"header name with a space",
       "INVITE sip:2002@example.com SIP/2.0\r\nCall ID: g2\r\nContent-Length: 0\r\n\r\n"},
      {"Content-Length not a number",
       "INVITE sip:2002@example.com SIP/2.0\r\nCall-ID: g3\r\nContent-Length: ten\r\n\r\n"},
      {"two Content-Lengths that disagree",
       "INVITE sip:2002@example.com SIP/2.0\r\nContent-Length: 3\r\nl: 4\r\n\r\nabcd"},
      {"continuation before any header",
       "INVITE sip:2002@example.com SIP/2.0\r\n  folded\r\nCall-ID: g4\r\n\r\n"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto r = read_text(row.text + "\r\n" + good);
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].bytes, good);
    EXPECT_EQ(r.outcome.stats.unreadable_text, 1u);
  }
}

TEST(TextTrace, GarbageInputGivesNoMessages) {
  std::mt19937 rng(20261121);
  std::string noise(1 << 20, '\0');
  for (auto& c : noise) c = static_cast<char>(rng() & 0xff);
  const std::string prose =
      "this line mentions SIP/2.0 in passing\n"
      "SIP/2.0 99 Too Low\nSIP/2.0 700 Too High\nSIP/2.0 2000 OK\nSIP/2.0\n"
      "INVITE nocolon SIP/2.0\nINVITE sip:bob@example.com SIP/3.0\n"
      "please INVITE sip:bob@example.com SIP/2.0\n  INVITE sip:bob@example.com SIP/2.0\n"
      "Via: SIP/2.0/UDP 192.0.2.10\nContent-Length: 12\n\n\r\n\r\r\r\n";
  for (const auto& text : {noise, prose, prose + noise + prose, std::string()}) {
    auto r = read_text(text);
    EXPECT_EQ(r.messages.size(), 0u);
    EXPECT_EQ(r.outcome.stats.sip_messages, 0u);
    EXPECT_EQ(r.outcome.stats.unreadable_text, 0u);
    EXPECT_EQ(r.outcome.stats.bytes, text.size());
    EXPECT_FALSE(r.outcome.error);
  }
}

TEST(TextTrace, StartLines) {
  struct Row {
    std::string_view line;
    bool accepted;
  };
  const Row rows[] = {
      {"SIP/2.0 200 OK", true},
      {"SIP/2.0 183", true},
      {"sip/2.0 486 Busy Here", true},
      {"INVITE sip:bob@example.com SIP/2.0", true},
      {"OPTIONS tel:+15551234567 SIP/2.0", true},
      {"SIP/2.0 99 Low", false},
      {"SIP/2.0 700 High", false},
      {"SIP/2.0 20x OK", false},
      {"INVITE bob SIP/2.0", false},
      {"INVITE sip:bob@example.com SIP/2.1", false},
      {"IN(VITE sip:bob@example.com SIP/2.0", false},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.line);
    auto text = std::string(row.line) + "\r\nCall-ID: s1\r\nContent-Length: 0\r\n\r\n";
    auto r = read_text(text);
    EXPECT_EQ(r.messages.size(), row.accepted ? 1u : 0u);
    if (row.accepted && !r.messages.empty()) {
      EXPECT_EQ(r.messages[0].bytes, text);
    }
  }
  // Blanks pasted after a start line are dropped, not handed to the parser.
  auto r =
      read_text("OPTIONS sip:example.com SIP/2.0  \t\r\nCall-ID: s2\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].bytes,
            "OPTIONS sip:example.com SIP/2.0\r\nCall-ID: s2\r\nContent-Length: 0\r\n\r\n");
}

TEST(TextTrace, ByteOrderMarkIsSkipped) {
  const auto a = request("bom");
  auto r = read_text("\xEF\xBB\xBF" + a);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].bytes, a);
  EXPECT_EQ(r.messages[0].offset, 3u);
  EXPECT_EQ(r.messages[0].line, 1u);
}

// ---- sngrep ----------------------------------------------------------------------

TEST(TextTrace, SngrepExport) {
  const auto a = request("sng-1");
  const auto b = message("SIP/2.0 401 Unauthorized", "sng-1");
  const std::string h1 = "2026/11/21 10:00:00.123456 192.0.2.10:5060 -> 192.0.2.1:5060\n";
  const std::string h2 = "2026/11/21 10:00:01.000007 2001:db8::1:5060 -> 2001:db8::10:5062\n";
  // sngrep writes "header\npayload\n\n" per message.
  const auto text = h1 + a + "\n\n" + h2 + b + "\n\n";
  auto r = read_text(text);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].bytes, a);
  EXPECT_EQ(r.messages[0].time, utc(2026, 11, 21, 10h + 123456us));
  EXPECT_EQ(r.messages[0].src, "192.0.2.10:5060");
  EXPECT_EQ(r.messages[0].dst, "192.0.2.1:5060");
  EXPECT_EQ(r.messages[0].transport, "");
  EXPECT_EQ(r.messages[0].offset, h1.size());
  EXPECT_EQ(r.messages[0].line, 2u);
  EXPECT_EQ(r.messages[1].bytes, b);
  EXPECT_EQ(r.messages[1].time, utc(2026, 11, 21, 10h + 1s + 7us));
  EXPECT_EQ(r.messages[1].src, "[2001:db8::1]:5060");
  EXPECT_EQ(r.messages[1].dst, "[2001:db8::10]:5062");
  EXPECT_EQ(r.messages[1].line, 1 + lines_in(a) + 2 + 2);
  EXPECT_EQ(r.outcome.stats.unreadable_text, 0u);
}

TEST(TextTrace, MarkerDescribesOnlyTheMessageRightAfterIt) {
  const auto a = request("leak-1");
  const auto b = request("leak-2");
  auto r = read_text(
      "2026/11/21 10:00:00.123456 192.0.2.10:5060 -> 192.0.2.1:5060\n"
      "some unrelated log line\n" +
      a + "\n\n" + b);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_FALSE(r.messages[0].time);
  EXPECT_EQ(r.messages[0].src, "");

  r = read_text("2026/11/21 10:00:00.123456 192.0.2.10:5060 -> 192.0.2.1:5060\n" + a + "\n\n" + b);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_TRUE(r.messages[0].time);
  EXPECT_EQ(r.messages[0].src, "192.0.2.10:5060");
  EXPECT_FALSE(r.messages[1].time);
  EXPECT_EQ(r.messages[1].src, "");
}

TEST(TextTrace, TruncatedSngrepRecordIsUnreadable) {
  auto a = request("sng-trunc", std::string(100, 'x'));
  a.resize(a.size() - 60);
  const auto b = request("sng-next");
  auto r = read_text("2026/11/21 10:00:00.000001 192.0.2.10:5060 -> 192.0.2.1:5060\n" + a + "\n\n" +
                     "2026/11/21 10:00:00.000002 192.0.2.1:5060 -> 192.0.2.10:5060\n" + b + "\n\n");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].bytes, b);
  EXPECT_EQ(r.messages[0].src, "192.0.2.1:5060");
  EXPECT_EQ(r.outcome.stats.unreadable_text, 1u);
}

// ---- Asterisk pjsip logger ---------------------------------------------------------

TEST(TextTrace, AsteriskPjsipLogger) {
  const auto a = request("ast-1");
  const auto b = message("SIP/2.0 401 Unauthorized", "ast-1");
  const auto c = request("ast-2");
  const auto d = message("SIP/2.0 200 OK", "ast-2");
  const std::string text =
      "[Nov 21 10:00:00] VERBOSE[1234] res_pjsip_logger.c: <--- Received SIP request (" +
      std::to_string(a.size()) + " bytes) from UDP:192.0.2.10:5060 --->\n" + a + "\n" +
      "[Nov 21 10:00:00] VERBOSE[1234][C-00000002] res_pjsip_logger.c: <--- Transmitting SIP "
      "response (" +
      std::to_string(b.size()) + " bytes) to UDP:192.0.2.10:5060 --->\n" + b + "\n" +
      "[Nov 21 10:00:01] NOTICE[1234] res_pjsip/pjsip_distributor.c: Request 'REGISTER' failed\n" +
      // Console output (no log prefix), a TCP peer and an older Asterisk printing IPv6 bare.
      "<--- Received SIP request (10 bytes) from TCP:[2001:db8::10]:5070 --->\n" + c + "\n" +
      "<--- Transmitting SIP response (10 bytes) to TLS:2001:db8::10:5061 --->\n" + d + "\n";
  auto r = read_text(text);
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0].bytes, a);
  EXPECT_EQ(r.messages[0].src, "192.0.2.10:5060");
  EXPECT_EQ(r.messages[0].dst, "");  // the local side is not printed
  EXPECT_EQ(r.messages[0].transport, "udp");
  EXPECT_EQ(r.messages[0].time, utc(2000, 11, 21, 10h));
  EXPECT_EQ(r.messages[0].line, 2u);
  EXPECT_EQ(r.messages[1].bytes, b);
  EXPECT_EQ(r.messages[1].src, "");
  EXPECT_EQ(r.messages[1].dst, "192.0.2.10:5060");
  EXPECT_EQ(r.messages[1].transport, "udp");
  EXPECT_EQ(r.messages[2].bytes, c);
  EXPECT_EQ(r.messages[2].src, "[2001:db8::10]:5070");
  EXPECT_EQ(r.messages[2].transport, "tcp");
  EXPECT_FALSE(r.messages[2].time);
  EXPECT_EQ(r.messages[3].bytes, d);
  EXPECT_EQ(r.messages[3].dst, "[2001:db8::10]:5061");
  EXPECT_EQ(r.messages[3].transport, "tls");
  EXPECT_EQ(r.outcome.stats.unreadable_text, 0u);
}

TEST(TextTrace, AsteriskTimestamps) {
  struct Row {
    std::string_view prefix;
    std::optional<TimePoint> time;
  };
  const Row rows[] = {
      {"[Nov 21 10:00:00] ", utc(2000, 11, 21, 10h)},
      {"[Nov  1 09:05:07] ", utc(2000, 11, 1, 9h + 5min + 7s)},
      {"[Feb 29 12:00:00] ", utc(2000, 2, 29, 12h)},
      {"[2026-11-21 10:00:00.123] ", utc(2026, 11, 21, 10h + 123ms)},
      {"[2026-11-21 10:00:00] ", utc(2026, 11, 21, 10h)},
      {"", std::nullopt},
      {"[not a time] ", std::nullopt},
      {"[Nov 31 10:00:00] ", std::nullopt},
      {"[Nov 21 25:00:00] ", std::nullopt},
      {"[9999-12-31 10:00:00] ", std::nullopt},  // beyond what the clock holds
  };
  const auto a = request("ast-time");
  for (const auto& row : rows) {
    SCOPED_TRACE(row.prefix);
    auto r = read_text(std::string(row.prefix) +
                       "VERBOSE[7] res_pjsip_logger.c: <--- Received SIP request (1 bytes) from "
                       "UDP:192.0.2.10:5060 --->\n" +
                       a);
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].time, row.time);
    EXPECT_EQ(r.messages[0].src, "192.0.2.10:5060");
  }
}

TEST(TextTrace, AsteriskYearlessDatesCrossNewYear) {
  const auto a = request("ny-1");
  auto marker = [](std::string_view when) {
    return "[" + std::string(when) +
           "] VERBOSE[7] res_pjsip_logger.c: <--- Received SIP request (1 bytes) from "
           "UDP:192.0.2.10:5060 --->\n";
  };
  auto r = read_text(marker("Dec 31 23:59:59") + a + "\n" + marker("Jan  1 00:00:01") + a + "\n" +
                     marker("Jan  1 00:00:02") + a + "\n");
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].time, utc(2000, 12, 31, 23h + 59min + 59s));
  EXPECT_EQ(r.messages[1].time, utc(2001, 1, 1, 1s));
  EXPECT_EQ(r.messages[2].time, utc(2001, 1, 1, 2s));
}

// ---- Kamailio sipdump ----------------------------------------------------------------

std::string sipdump_record(std::string_view tag, std::string_view time, std::string_view proto,
                           std::string_view src_ip, int src_port, std::string_view dst_ip,
                           int dst_port, std::string_view msg) {
  std::string out = "====================\ntag: ";
  out.append(tag).append("\npid: 4120\nprocess: 3\ntime: ").append(time);
  out.append("\ndate: Sat Nov 21 10:00:00 2026\nproto: ").append(proto);
  out.append("\nsrcip: ").append(src_ip).append("\nsrcport: ").append(std::to_string(src_port));
  out.append("\ndstip: ").append(dst_ip).append("\ndstport: ").append(std::to_string(dst_port));
  out.append("\n~~~~~~~~~~~~~~~~~~~~\n").append(msg).append("||||||||||||||||||||\n");
  return out;
}

TEST(TextTrace, KamailioSipdump) {
  const auto a = request("kam-1");
  const auto b = message("SIP/2.0 200 OK", "kam-1", "done", "Content-Type: text/plain\r\n");
  const auto first = sipdump_record("rcv", "1700000000.123456", "udp ipv4", "192.0.2.10", 5060,
                                    "203.0.113.5", 5060, a);
  // The body has no line break, so sipdump's closing line follows it directly.
  const auto second = sipdump_record("snd", "1700000001.000500", "tcp ipv6", "2001:db8::5", 5060,
                                     "2001:db8::10", 40123, b);
  auto r = read_text(first + second);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].bytes, a);
  EXPECT_EQ(r.messages[0].time, TimePoint(1700000000s + 123456us));
  EXPECT_EQ(r.messages[0].transport, "udp");
  EXPECT_EQ(r.messages[0].src, "192.0.2.10:5060");
  EXPECT_EQ(r.messages[0].dst, "203.0.113.5:5060");
  EXPECT_EQ(r.messages[0].line, 13u);
  EXPECT_EQ(r.messages[1].bytes, b);
  EXPECT_EQ(r.messages[1].time, TimePoint(1700000001s + 500us));
  EXPECT_EQ(r.messages[1].transport, "tcp");
  EXPECT_EQ(r.messages[1].src, "[2001:db8::5]:5060");
  EXPECT_EQ(r.messages[1].dst, "[2001:db8::10]:40123");
  EXPECT_EQ(r.messages[1].offset, first.size() + second.find("SIP/2.0 200 OK"));
  EXPECT_EQ(r.outcome.stats.unreadable_text, 0u);
}

TEST(TextTrace, TruncatedSipdumpRecordIsUnreadable) {
  auto a = request("kam-trunc", "0123456789");
  a.resize(a.size() - 4);
  const auto b = request("kam-next");
  auto r = read_text(
      sipdump_record("rcv", "1700000000.1", "udp ipv4", "192.0.2.10", 5060, "192.0.2.1", 5060, a) +
      sipdump_record("rcv", "1700000000.2", "udp ipv4", "192.0.2.11", 5060, "192.0.2.1", 5060, b));
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].bytes, b);
  EXPECT_EQ(r.messages[0].src, "192.0.2.11:5060");
  EXPECT_EQ(r.messages[0].time, TimePoint(1700000000s + 200ms));
  EXPECT_EQ(r.outcome.stats.unreadable_text, 1u);
}

// ---- streaming ---------------------------------------------------------------------------

TEST(TextTrace, HugeLineDoesNotBlowMemory) {
  const auto a = request("after-huge-line");
  const long before = peak_rss_kib();
  RepeatBuf buf("prose ", std::string(1 << 20, 'x'), 100, "\n" + a);  // a 100 MiB line
  std::istream in(&buf);
  auto r = read_stream(in);
  const long grown_kib = peak_rss_kib() - before;
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].bytes, a);
  EXPECT_EQ(r.messages[0].line, 2u);
  EXPECT_EQ(r.messages[0].offset, buf.size() - a.size());
  EXPECT_EQ(r.outcome.stats.bytes, buf.size());
  EXPECT_LT(grown_kib, 32 * 1024) << "the reader held the line";

  // A huge header inside a message: that message is unreadable, the next is read.
  const auto giant = request("giant", "", "X-Junk: " + std::string(2 << 20, 'j') + "\r\n");
  r = read_text(giant + "\r\n" + a);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].bytes, a);
  EXPECT_EQ(r.outcome.stats.unreadable_text, 1u);
}

TEST(TextTrace, LargeTraceStreamsWithProgress) {
  const auto record = "2026/11/21 10:00:00.000001 192.0.2.10:5060 -> 192.0.2.1:5060\n" +
                      request("bulk", "v=0\r\ns=-\r\n") + "\n\n";
  const std::uint64_t count = (24u << 20) / record.size();  // about 24 MiB
  RepeatBuf buf("", record, count, "");
  std::istream in(&buf);
  std::vector<std::uint64_t> reported;
  std::uint64_t seen = 0, last_line = 0;
  auto outcome = read_text_trace(
      in, "bulk.txt",
      [&](const CapturedMessage& m) {
        ++seen;
        last_line = m.line;
      },
      [&](std::uint64_t done, std::uint64_t total) {
        EXPECT_EQ(total, buf.size());
        reported.push_back(done);
      },
      buf.size());
  EXPECT_EQ(seen, count);
  EXPECT_EQ(outcome.stats.sip_messages, count);
  EXPECT_EQ(outcome.stats.bytes, buf.size());
  EXPECT_EQ(last_line, (count - 1) * lines_in(record) + 2);
  ASSERT_GE(reported.size(), 2u);
  EXPECT_LE(reported.size(), buf.size() / (4u << 20) + 2);
  EXPECT_EQ(reported.back(), buf.size());
  for (std::size_t i = 1; i + 1 < reported.size(); ++i)
    EXPECT_GE(reported[i] - reported[i - 1], 1u << 20);
}

TEST(TextTrace, ManyFailingMessagesDoNotMakeReadingQuadratic) {
  // Each start line claims a body running far past the next ones; re-reading
  // after every failure would read the file tens of thousands of times.
  const std::string unit = "INVITE sip:x@example.com SIP/2.0\r\nContent-Length: 250001\r\n\r\n";
  RepeatBuf buf("", unit, (2u << 20) / unit.size(), "");
  std::istream in(&buf);
  auto r = read_stream(in);
  EXPECT_EQ(r.outcome.stats.bytes, buf.size());
  EXPECT_GT(r.outcome.stats.unreadable_text, 0u);
  EXPECT_FALSE(r.outcome.error);
}

TEST(TextTrace, ReadErrorStopsWithItsOffset) {
  std::string data;
  while (data.size() < 300 * 1024) data += request("io-" + std::to_string(data.size())) + "\r\n";
  FailingBuf buf(data);
  std::istream in(&buf);
  auto r = read_stream(in);
  ASSERT_TRUE(r.outcome.error);
  EXPECT_EQ(r.outcome.error->file, "trace.txt");
  EXPECT_EQ(r.outcome.error->offset, r.outcome.stats.bytes);
  EXPECT_LE(r.outcome.error->offset, data.size());
  EXPECT_GT(r.messages.size(), 0u);  // what came before still counts
  for (const auto& m : r.messages) EXPECT_LE(m.offset + m.bytes.size(), r.outcome.error->offset);
}

// ---- sample files --------------------------------------------------------------------------

struct Sample {
  const char* file;
  std::vector<std::uint64_t> lines;  // of each message's start line
};

Read read_sample(const char* file) {
  std::ifstream in(kTraceDir / file, std::ios::binary);
  EXPECT_TRUE(in) << file;
  return read_stream(in);
}

TEST(TextTraceFiles, EverySampleFramesIntoParsableMessages) {
  const Sample samples[] = {
      {"raw.txt", {3, 16, 26, 40, 50, 70}},
      {"sngrep.txt", {2, 23, 35, 47, 69}},
      {"asterisk_pjsip.txt", {3, 17, 29, 45}},
      {"kamailio_sipdump.txt", {13, 37, 60, 85}},
  };
  for (const auto& sample : samples) {
    SCOPED_TRACE(sample.file);
    auto r = read_sample(sample.file);
    EXPECT_EQ(r.outcome.stats.unreadable_text, 0u);
    EXPECT_FALSE(r.outcome.error);
    EXPECT_EQ(r.outcome.stats.bytes, std::filesystem::file_size(kTraceDir / sample.file));
    ASSERT_EQ(r.messages.size(), sample.lines.size());
    for (std::size_t i = 0; i < r.messages.size(); ++i) {
      EXPECT_EQ(r.messages[i].line, sample.lines[i]);
      expect_parses(r.messages[i]);
    }
  }
}

TEST(TextTraceFiles, SamplesCarryTheirTimesAndAddresses) {
  auto sngrep = read_sample("sngrep.txt");
  ASSERT_EQ(sngrep.messages.size(), 5u);
  EXPECT_EQ(sngrep.messages[0].time, utc(2026, 11, 21, 10h + 15min + 2s + 104211us));
  EXPECT_EQ(sngrep.messages[0].src, "192.0.2.20:5062");
  EXPECT_EQ(sngrep.messages[1].src, "198.51.100.7:5060");
  EXPECT_EQ(sngrep.messages[0].offset, 64u);

  auto asterisk = read_sample("asterisk_pjsip.txt");
  ASSERT_EQ(asterisk.messages.size(), 4u);
  EXPECT_EQ(asterisk.messages[0].src, "192.0.2.13:5060");
  EXPECT_EQ(asterisk.messages[1].dst, "192.0.2.13:5060");
  EXPECT_EQ(asterisk.messages[2].time, utc(2000, 11, 21, 10h + 20min + 1s));

  auto kamailio = read_sample("kamailio_sipdump.txt");
  ASSERT_EQ(kamailio.messages.size(), 4u);
  EXPECT_EQ(kamailio.messages[0].transport, "udp");
  EXPECT_EQ(kamailio.messages[2].transport, "tcp");
  EXPECT_EQ(kamailio.messages[2].src, "192.0.2.30:46512");
  EXPECT_EQ(kamailio.messages[3].time, TimePoint(1763720400s + 390508us));

  auto raw = read_sample("raw.txt");
  ASSERT_EQ(raw.messages.size(), 6u);
  for (const auto& m : raw.messages) {
    EXPECT_FALSE(m.time);
    EXPECT_EQ(m.bytes.find("\r\n"), m.bytes.find('\n') - 1) << "line ends made CRLF";
  }
}

}  // namespace
}  // namespace sw::capture
