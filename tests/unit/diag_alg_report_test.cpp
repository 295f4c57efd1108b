#include "diag/alg_report.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "diag/seal.hpp"
#include "test_messages.hpp"

// The per-path ALG report: first sightings told at once, counts at the end.
namespace sw::diag {
namespace {

using test::parse_ok;

const std::string kRegister =
    "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKsw1\r\n"
    "From: <sip:1001@example.com>;tag=a\r\nTo: <sip:1001@example.com>\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\n"
    "Content-Length: 0\r\n\r\n";

class AlgReportTest : public ::testing::Test {
 protected:
  void feed(const SealCheck& seal, std::string_view peer = "203.0.113.1:5060", std::string_view transport = "udp",
            Direction d = Direction::received) {
    auto m = parse_ok(kRegister);
    report_.on_message(Observed{d, Leg::phone, {}, transport, peer, m, false, {}, {}, &seal});
  }
  std::vector<std::string> lines_;
  AlgReport report_{[this](const std::string& line) { lines_.push_back(line); }, 2};
};

SealCheck with_status(SealCheck::Status status) {
  SealCheck c;
  c.status = status;
  return c;
}

TEST_F(AlgReportTest, FirstRewriteOfEachFieldIsToldOnceAndCounted) {
  auto rewritten = with_status(SealCheck::Status::rewritten);
  rewritten.changes.push_back({"via.0", "Via", "SIP/2.0/UDP 10.0.0.2:5060", "SIP/2.0/UDP 203.0.113.1:5060"});
  feed(rewritten);
  feed(rewritten);
  feed(with_status(SealCheck::Status::intact));
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0],
            "alg: udp 203.0.113.1: rewrites Via: sent \"SIP/2.0/UDP 10.0.0.2:5060\" arrived "
            "\"SIP/2.0/UDP 203.0.113.1:5060\" (first in REGISTER call-id=c1)");
  auto summary = report_.summary();
  ASSERT_EQ(summary.size(), 1u);
  EXPECT_EQ(summary[0], "alg report: udp 203.0.113.1: 3 sealed messages, 2 rewritten (Via 2), 0 unsealed, 0 invalid");
}

TEST_F(AlgReportTest, MissingAndInvalidSealsAreFindings) {
  feed(with_status(SealCheck::Status::absent));
  feed(with_status(SealCheck::Status::absent));
  auto invalid = with_status(SealCheck::Status::invalid);
  invalid.detail = "another key";
  feed(invalid);
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_NE(lines_[0].find("arrived without a seal"), std::string::npos) << lines_[0];
  EXPECT_NE(lines_[1].find("the seal does not verify (another key)"), std::string::npos) << lines_[1];
  EXPECT_EQ(report_.summary()[0], "alg report: udp 203.0.113.1: 0 sealed messages, 0 rewritten, 2 unsealed, 1 invalid");
}

TEST_F(AlgReportTest, PathsAreTransportAndAddressAndBounded) {
  auto intact = with_status(SealCheck::Status::intact);
  feed(intact, "203.0.113.1:5060", "udp");
  feed(intact, "203.0.113.1:40000", "udp");  // same path: NATs change ports
  feed(intact, "203.0.113.1:40000", "tcp");
  feed(intact, "[2001:db8::1]:5060", "udp");  // a third path: over the bound of 2
  feed(intact, "203.0.113.1:5060", "udp", Direction::sent);  // only arrivals count
  auto summary = report_.summary();
  ASSERT_EQ(summary.size(), 3u);
  EXPECT_TRUE(summary[0].starts_with("alg report: udp 203.0.113.1: 2 sealed")) << summary[0];
  EXPECT_TRUE(summary[1].starts_with("alg report: tcp 203.0.113.1: 1 sealed")) << summary[1];
  EXPECT_EQ(summary[2], "alg report: 1 messages from further paths not counted");
}

TEST_F(AlgReportTest, NothingOnTheLabPathIsSaid) {
  EXPECT_EQ(report_.summary(), std::vector<std::string>{"alg report: nothing arrived on the lab path"});
}

}  // namespace
}  // namespace sw::diag
