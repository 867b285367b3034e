#include <l2o/core/progress.h>

#include <gtest/gtest.h>

#include <cmath>

namespace l2o {
namespace {

TEST(Progress, EtaExtrapolatesTheRateOfTheUnitsDoneSinceTheStart) {
  // 10 of 100 units in 20 s: 90 more take 180 s.
  EXPECT_DOUBLE_EQ(estimate_eta(10, 0, 100, 20.0), 180.0);
  // A resumed job: 50 units were done before; the 10 done since in 20 s set the rate, 40 left -> 80 s.
  EXPECT_DOUBLE_EQ(estimate_eta(60, 50, 100, 20.0), 80.0);
  // Nothing done yet: unknown, shown as "?".
  EXPECT_TRUE(std::isinf(estimate_eta(50, 50, 100, 3.0)));
  EXPECT_EQ(format_duration(estimate_eta(50, 50, 100, 3.0)), "?");
  EXPECT_DOUBLE_EQ(estimate_eta(100, 0, 100, 20.0), 0.0);
}

TEST(Progress, TimeBudgetCapsTheEta) {
  // 1 of 100000 meta-iterations after 10 s would be 277 h; a budget with 60 s left ends it sooner.
  EXPECT_DOUBLE_EQ(estimate_eta(1, 0, 100000, 10.0, 60.0), 60.0);
  // When the units end first, the budget does not matter.
  EXPECT_DOUBLE_EQ(estimate_eta(90, 0, 100, 90.0, 600.0), 10.0);
  EXPECT_DOUBLE_EQ(estimate_eta(5, 5, 100, 1.0, 30.0), 30.0);
}

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(format_duration(12.2), "12s");
  EXPECT_EQ(format_duration(184), "3m04s");
  EXPECT_EQ(format_duration(3720), "1h02m");
}

}  // namespace
}  // namespace l2o
