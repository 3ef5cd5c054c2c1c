#include "daemon/core/domain.hpp"

#include <gtest/gtest.h>

namespace herald {
namespace {

TEST(Phase, NamesRoundTripInLifecycleOrder) {
  int number = 1;
  for (Phase p : kAllPhases) {
    EXPECT_EQ(parse_phase(to_string(p)), p);
    EXPECT_EQ(phase_number(p), number++);
  }
  EXPECT_EQ(phase_label(Phase::lessons_learned), "Lessons learned");
  EXPECT_FALSE(parse_phase("Containment"));
}

TEST(Severity, OrderedLowToCritical) {
  EXPECT_LT(*parse_severity("low"), *parse_severity("medium"));
  EXPECT_LT(*parse_severity("high"), *parse_severity("critical"));
  EXPECT_FALSE(parse_severity("urgent"));
}

TEST(EndpointType, ChatOrWebhook) {
  EXPECT_EQ(channel_of(*parse_endpoint_type("slack")), "chat");
  EXPECT_EQ(channel_of(*parse_endpoint_type("webhook")), "webhook");
  EXPECT_FALSE(parse_endpoint_type("irc"));
}

}  // namespace
}  // namespace herald
