#include "proxy/limits.hpp"

#include <gtest/gtest.h>

#include <string>

namespace sw::proxy {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const LimitClock::time_point t0 = LimitClock::time_point() + std::chrono::hours(1);

TEST(LimitReport, FirstHitLoggedThenCountedUntilTheIntervalEnds) {
  LimitReport report(seconds(10));
  EXPECT_TRUE(report.hit(Limit::max_requests_per_source, t0));
  for (int i = 0; i < 500; ++i) EXPECT_FALSE(report.hit(Limit::max_requests_per_source, t0 + milliseconds(i)));
  EXPECT_TRUE(report.summary(t0 + seconds(5)).empty()) << "nothing is summed up before the interval ends";
  auto lines = report.summary(t0 + seconds(10));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "limit: limits.max_requests_per_source hit 500 more times in the last 10s");
  EXPECT_TRUE(report.summary(t0 + seconds(30)).empty()) << "no hits since: no line";
  // A hit after a quiet interval is logged at once again.
  EXPECT_TRUE(report.hit(Limit::max_requests_per_source, t0 + seconds(31)));
}

TEST(LimitReport, LimitsAreReportedSeparately) {
  LimitReport report(seconds(10));
  EXPECT_TRUE(report.hit(Limit::max_message_bytes, t0));
  EXPECT_TRUE(report.hit(Limit::max_headers, t0)) << "another limit's first hit is news";
  EXPECT_FALSE(report.hit(Limit::max_headers, t0 + seconds(1)));
  auto lines = report.summary(t0 + seconds(11));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "limit: limits.max_headers hit 1 more time in the last 11s");
}

TEST(SourceLimits, RateAllowsABurstOfOneSecondThenRefills) {
  SourceLimits limits({10, 0, 100});
  int allowed = 0;
  for (int i = 0; i < 50; ++i) allowed += limits.allow_request("203.0.113.7", t0);
  EXPECT_EQ(allowed, 10);
  EXPECT_TRUE(limits.allow_request("198.51.100.1", t0)) << "another source has its own bucket";
  EXPECT_FALSE(limits.allow_request("203.0.113.7", t0 + milliseconds(50)));
  EXPECT_TRUE(limits.allow_request("203.0.113.7", t0 + milliseconds(100))) << "one token per 100 ms at 10/s";
  allowed = 0;
  for (int i = 0; i < 50; ++i) allowed += limits.allow_request("203.0.113.7", t0 + seconds(5));
  EXPECT_EQ(allowed, 10) << "a bucket never holds more than one second's worth";
}

TEST(SourceLimits, ZeroMeansNoLimitAndNothingRemembered) {
  SourceLimits limits({0, 0, 100});
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(limits.allow_request("203.0.113.7", t0));
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(limits.open_connection("203.0.113.7", t0), SourceLimits::Admission::uncounted);
  EXPECT_EQ(limits.tracked(), 0u);
}

TEST(SourceLimits, ConnectionsPerSourceAreCountedUntilClosed) {
  SourceLimits limits({0, 2, 100});
  using A = SourceLimits::Admission;
  EXPECT_EQ(limits.open_connection("203.0.113.7", t0), A::counted);
  EXPECT_EQ(limits.open_connection("203.0.113.7", t0), A::counted);
  EXPECT_EQ(limits.open_connection("203.0.113.7", t0), A::refused);
  EXPECT_EQ(limits.open_connection("198.51.100.1", t0), A::counted);
  limits.close_connection("203.0.113.7");
  EXPECT_EQ(limits.open_connection("203.0.113.7", t0), A::counted);
}

TEST(SourceLimits, TheTableStaysBoundedUnderAFloodOfAddresses) {
  SourceLimits limits({5, 0, 1000});
  auto now = t0;
  for (int i = 0; i < 200000; ++i) {
    if (i % 1000 == 0) now += seconds(2);  // idle sources may be forgotten once a second
    limits.allow_request("10.0." + std::to_string(i / 256 % 256) + "." + std::to_string(i % 256), now);
    ASSERT_LE(limits.tracked(), 1000u);
  }
  // A source in the middle of a burst is never forgotten: its bucket is not full again yet.
  SourceLimits busy({5, 0, 2});
  busy.allow_request("198.51.100.1", t0);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(busy.allow_request("203.0.113.7", t0 + seconds(2)));
  EXPECT_TRUE(busy.allow_request("198.51.100.2", t0 + milliseconds(2100))) << "takes the idle source's place";
  EXPECT_EQ(busy.tracked(), 2u);
  EXPECT_FALSE(busy.allow_request("203.0.113.7", t0 + milliseconds(2100))) << "still over its rate";
}

TEST(SourceLimits, ABusySourceKeepsItsConnectionsCountedWhenTheTableIsFull) {
  SourceLimits limits({0, 1, 1});
  using A = SourceLimits::Admission;
  EXPECT_EQ(limits.open_connection("203.0.113.7", t0), A::counted);
  EXPECT_EQ(limits.open_connection("198.51.100.1", t0 + seconds(5)), A::uncounted) << "full table: let through";
  EXPECT_EQ(limits.open_connection("203.0.113.7", t0 + seconds(5)), A::refused)
      << "its open connection keeps it in the table";
}

}  // namespace
}  // namespace sw::proxy
