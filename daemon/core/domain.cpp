#include "daemon/core/domain.hpp"

#include <array>
#include <utility>

namespace herald {
namespace {

template <class E, size_t N>
std::optional<E> lookup(const std::array<std::pair<E, std::string_view>, N>& table,
                        std::string_view text) {
  for (const auto& [value, name] : table) {
    if (name == text) {
      return value;
    }
  }
  return std::nullopt;
}

template <class E, size_t N>
std::string_view name_of(const std::array<std::pair<E, std::string_view>, N>& table, E value) {
  for (const auto& [v, name] : table) {
    if (v == value) {
      return name;
    }
  }
  return "unknown";
}

constexpr std::array<std::pair<Phase, std::string_view>, 7> kPhaseNames{{
    {Phase::preparation, "preparation"},
    {Phase::identification, "identification"},
    {Phase::containment, "containment"},
    {Phase::eradication, "eradication"},
    {Phase::recovery, "recovery"},
    {Phase::lessons_learned, "lessons_learned"},
    {Phase::closed, "closed"},
}};

constexpr std::array<std::pair<Phase, std::string_view>, 7> kPhaseLabels{{
    {Phase::preparation, "Preparation"},
    {Phase::identification, "Identification"},
    {Phase::containment, "Containment"},
    {Phase::eradication, "Eradication"},
    {Phase::recovery, "Recovery"},
    {Phase::lessons_learned, "Lessons learned"},
    {Phase::closed, "Closed"},
}};

constexpr std::array<std::pair<Severity, std::string_view>, 4> kSeverityNames{{
    {Severity::low, "low"},
    {Severity::medium, "medium"},
    {Severity::high, "high"},
    {Severity::critical, "critical"},
}};

constexpr std::array<std::pair<EndpointType, std::string_view>, 6> kEndpointTypeNames{{
    {EndpointType::slack, "slack"},
    {EndpointType::teams, "teams"},
    {EndpointType::mattermost, "mattermost"},
    {EndpointType::discord, "discord"},
    {EndpointType::googlechat, "googlechat"},
    {EndpointType::webhook, "webhook"},
}};

constexpr std::array<std::pair<MessageStatus, std::string_view>, 6> kStatusNames{{
    {MessageStatus::scheduled, "scheduled"},
    {MessageStatus::sending, "sending"},
    {MessageStatus::retrying, "retrying"},
    {MessageStatus::delivered, "delivered"},
    {MessageStatus::failed, "failed"},
    {MessageStatus::cancelled, "cancelled"},
}};

constexpr std::array<std::pair<AttemptOutcome, std::string_view>, 3> kOutcomeNames{{
    {AttemptOutcome::delivered, "delivered"},
    {AttemptOutcome::retryable, "retryable"},
    {AttemptOutcome::permanent, "permanent"},
}};

}  // namespace

std::optional<Phase> parse_phase(std::string_view text) {
  return lookup(kPhaseNames, text);
}
std::string_view to_string(Phase phase) {
  return name_of(kPhaseNames, phase);
}
std::string_view phase_label(Phase phase) {
  return name_of(kPhaseLabels, phase);
}
int phase_number(Phase phase) {
  return static_cast<int>(phase) + 1;
}

std::optional<Severity> parse_severity(std::string_view text) {
  return lookup(kSeverityNames, text);
}
std::string_view to_string(Severity severity) {
  return name_of(kSeverityNames, severity);
}

bool is_person_channel(std::string_view channel) {
  return channel == kChannelEmail || channel == kChannelSms;
}

std::optional<EndpointType> parse_endpoint_type(std::string_view text) {
  return lookup(kEndpointTypeNames, text);
}
std::string_view to_string(EndpointType type) {
  return name_of(kEndpointTypeNames, type);
}
std::string_view channel_of(EndpointType type) {
  return type == EndpointType::webhook ? kChannelWebhook : kChannelChat;
}

std::optional<MessageStatus> parse_message_status(std::string_view text) {
  return lookup(kStatusNames, text);
}
std::string_view to_string(MessageStatus status) {
  return name_of(kStatusNames, status);
}

std::string_view to_string(AttemptOutcome outcome) {
  return name_of(kOutcomeNames, outcome);
}

}  // namespace herald
