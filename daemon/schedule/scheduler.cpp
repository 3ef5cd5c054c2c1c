#include "daemon/schedule/scheduler.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "daemon/plan/planner.hpp"
#include "daemon/schedule/schedule.hpp"

namespace herald::schedule {
namespace {

std::string recipient_of(const Message& m) {
  return m.contact_id.empty() ? "endpoint:" + m.endpoint_id : "contact:" + m.contact_id;
}

// Escalation messages get their own id space: "rule#escalation".
std::string id_rule(const Message& m) {
  return m.kind == "escalation" ? m.rule_id + "#escalation" : m.rule_id;
}

}  // namespace

Message first_message(const plan::Intent& intent, const Event& event, std::string_view kind,
                      Timestamp planned_at, Timestamp now, const std::vector<Contact>& contacts) {
  Message m;
  m.kind = kind;
  m.event_id = event.event_id;
  m.client_id = event.client_id;
  m.incident_id = event.incident_id;
  m.phase = event.phase;
  m.rule_id = intent.rule_id;
  m.contact_id = intent.contact_id;
  m.endpoint_id = intent.endpoint_id;
  m.role = intent.role;
  m.channel = intent.channel;
  m.id = plan::message_id(m.client_id, m.event_id, id_rule(m), recipient_of(m), m.channel, 1);
  m.status = MessageStatus::scheduled;
  m.created_at = now;
  m.planned_at = planned_at;
  m.repeat = intent.repeat;
  m.quiet_hours = intent.quiet_hours;
  m.send_at = planned_at;
  if (intent.contact_id.empty()) {
    return m;  // an endpoint: no quiet hours
  }
  // The store lists contacts by id: a binary search, so that planning an event for 10,000
  // people is not quadratic. A list in another order falls back to a scan.
  auto by_id = [](const Contact& c, const std::string& id) { return c.id < id; };
  auto contact = std::lower_bound(contacts.begin(), contacts.end(), intent.contact_id, by_id);
  if (contact == contacts.end() || contact->id != intent.contact_id) {
    contact = std::find_if(contacts.begin(), contacts.end(),
                           [&](const Contact& c) { return c.id == intent.contact_id; });
  }
  if (contact != contacts.end()) {
    m.send_at = send_time(planned_at, *contact, intent.quiet_hours);
  }
  return m;
}

Status schedule_repeats(store::Repo& repo, const std::vector<Message>& claimed, Timestamp now) {
  for (const Message& m : claimed) {
    if (!m.repeat) {
      continue;
    }
    auto incident = repo.incident(m.client_id, m.incident_id);
    if (!incident) {
      return incident.error();
    }
    if (!incident->has_value() || (*incident)->phase != m.phase) {
      continue;  // the phase is over: no more updates about it
    }
    Message next = m;
    next.update_number = m.update_number + 1;
    next.id = plan::message_id(m.client_id, m.event_id, id_rule(m), recipient_of(m), m.channel,
                               next.update_number);
    next.status = MessageStatus::scheduled;
    next.attempts = 0;
    next.created_at = now;
    // The next slot on the rule's cadence that is still ahead: updates missed while Herald was
    // down, or held back by quiet hours, are not sent in a burst afterwards.
    next.planned_at = m.planned_at + *m.repeat;
    if (next.planned_at <= now) {
      auto behind = (now - m.planned_at) / *m.repeat;
      next.planned_at = m.planned_at + *m.repeat * (behind + 1);
    }
    next.send_at = next.planned_at;
    next.delivered_at.reset();
    next.acknowledged_at.reset();
    next.last_error.clear();
    if (!m.contact_id.empty()) {
      auto acked =
          repo.contact_acknowledged(m.client_id, m.incident_id, m.phase, m.rule_id, m.contact_id);
      if (!acked) {
        return acked.error();
      }
      if (*acked) {
        continue;
      }
      auto contact = repo.contact(m.client_id, m.contact_id);
      if (!contact) {
        return contact.error();
      }
      if (!contact->has_value()) {
        continue;
      }
      next.send_at = send_time(next.planned_at, **contact, m.quiet_hours);
    }
    auto inserted = repo.insert_message(next);
    if (!inserted) {
      return inserted.error();
    }
    if (*inserted) {
      if (auto s = repo.audit_planned("scheduler", "repeat", {next}, now); !s) {
        return s;
      }
    }
  }
  return {};
}

Result<std::vector<EscalationOutcome>> fire_due_escalations(store::Repo& repo, Timestamp now,
                                                            int limit) {
  auto due = repo.due_escalations(now, limit);
  if (!due) {
    return due.error();
  }
  std::vector<EscalationOutcome> out;
  for (const auto& e : *due) {
    EscalationOutcome outcome{e.id, store::EscalationStatus::fired, 0};
    std::vector<Message> added;
    auto acked = repo.rule_acknowledged(e.client_id, e.incident_id, e.phase, e.rule_id);
    auto incident = repo.incident(e.client_id, e.incident_id);
    if (!acked || !incident) {
      return !acked ? acked.error() : incident.error();
    }
    if (*acked) {
      outcome.status = store::EscalationStatus::acknowledged;
    } else if (!incident->has_value() || (*incident)->phase != e.phase) {
      outcome.status = store::EscalationStatus::cancelled;
    } else {
      auto contacts = repo.contacts(e.client_id);
      if (!contacts) {
        return contacts.error();
      }
      for (const auto& intent :
           plan::escalation_intents(e.rule_id, e.to_roles, e.channels, e.quiet_hours, *contacts)) {
        Event origin;
        origin.event_id = e.event_id;
        origin.client_id = e.client_id;
        origin.incident_id = e.incident_id;
        origin.phase = e.phase;
        Message m = first_message(intent, origin, "escalation", now, now, *contacts);
        auto inserted = repo.insert_message(m);
        if (!inserted) {
          return inserted.error();
        }
        if (*inserted) {
          ++outcome.messages;
          added.push_back(std::move(m));
        }
      }
    }
    if (auto s = repo.resolve_escalation(e.id, outcome.status, now, outcome.messages); !s) {
      return s.error();
    }
    nlohmann::json data{{"escalation", e.id},          {"incident", e.incident_id},
                        {"phase", to_string(e.phase)}, {"rule", e.rule_id},
                        {"to_roles", e.to_roles},      {"status", to_string(outcome.status)},
                        {"messages", outcome.messages}};
    if (auto s = repo.audit(fmt::format("escalation.{}", to_string(outcome.status)), "scheduler",
                            e.client_id, e.incident_id, data.dump(), now);
        !s) {
      return s.error();
    }
    if (auto s = repo.audit_planned("scheduler", "escalation", added, now); !s) {
      return s.error();
    }
    out.push_back(outcome);
  }
  return out;
}

Result<std::optional<Message>> plan_fallback(store::Repo& repo, const Message& failed,
                                             Timestamp now) {
  if (failed.contact_id.empty()) {
    return std::optional<Message>{};
  }
  auto contact = repo.contact(failed.client_id, failed.contact_id);
  auto tried = repo.channels_tried(failed);
  if (!contact || !tried) {
    return !contact ? contact.error() : tried.error();
  }
  if (!contact->has_value()) {
    return std::optional<Message>{};
  }
  const Contact& c = **contact;
  std::vector<std::string> order = c.channels;
  if (order.empty()) {
    order = {std::string(kChannelEmail), std::string(kChannelSms)};
  }
  for (const auto& channel : order) {
    if (std::find(tried->begin(), tried->end(), channel) != tried->end() ||
        !plan::has_address(c, channel)) {
      continue;
    }
    Message next = failed;
    next.channel = channel;
    next.id = plan::message_id(failed.client_id, failed.event_id, id_rule(failed) + "#fallback",
                               recipient_of(failed), channel, failed.update_number);
    next.status = MessageStatus::scheduled;
    next.attempts = 0;
    next.created_at = now;
    next.planned_at = now;
    next.send_at = now;  // the person is already owed this message: no new quiet-hours wait
    next.delivered_at.reset();
    next.acknowledged_at.reset();
    next.last_error.clear();
    next.repeat.reset();  // the original's successor carries the repeats
    next.fallback_of = failed.id;
    auto inserted = repo.insert_message(next);
    if (!inserted) {
      return inserted.error();
    }
    if (!*inserted) {
      return std::optional<Message>{};
    }
    nlohmann::json data{{"failed", failed.id},          {"failed_channel", failed.channel},
                        {"fallback", next.id},          {"channel", channel},
                        {"contact", failed.contact_id}, {"reason", failed.last_error}};
    if (auto s =
            repo.audit("delivery.fallback", "dispatcher", failed.client_id, failed.id,
                       data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), now);
        !s) {
      return s.error();
    }
    if (auto s = repo.audit_planned("dispatcher", "fallback", {next}, now); !s) {
      return s.error();
    }
    return std::optional<Message>(std::move(next));
  }
  return std::optional<Message>{};
}

Result<AckOutcome> acknowledge(store::Repo& repo, const std::string& message_id,
                               const std::string& remote, Timestamp now) {
  auto m = repo.message(message_id);
  if (!m) {
    return m.error();
  }
  if (!m->has_value() || (*m)->contact_id.empty()) {
    return make_error(ErrorKind::not_found, "not_found", "no such message to acknowledge");
  }
  AckOutcome out;
  out.message = **m;
  store::AckRecord ack{message_id,
                       out.message.client_id,
                       out.message.incident_id,
                       out.message.phase,
                       out.message.rule_id,
                       out.message.contact_id,
                       now,
                       remote};
  auto inserted = repo.insert_ack(ack);
  if (!inserted) {
    return inserted.error();
  }
  out.first = *inserted;
  if (!out.first) {
    return out;
  }
  out.message.acknowledged_at = now;
  auto cancelled = repo.cancel_contact_pending(
      out.message.client_id, out.message.incident_id, out.message.phase, out.message.rule_id,
      out.message.contact_id, "cancelled: the contact acknowledged");
  if (!cancelled) {
    return cancelled.error();
  }
  out.cancelled = static_cast<int64_t>(cancelled->size());
  auto stopped = repo.acknowledge_escalations(out.message.client_id, out.message.incident_id,
                                              out.message.phase, out.message.rule_id, now);
  if (!stopped) {
    return stopped.error();
  }
  out.escalations_stopped = *stopped;
  nlohmann::json data{{"message", message_id},
                      {"contact", out.message.contact_id},
                      {"incident", out.message.incident_id},
                      {"phase", to_string(out.message.phase)},
                      {"rule", out.message.rule_id},
                      {"cancelled_messages", out.cancelled},
                      {"escalations_stopped", out.escalations_stopped}};
  if (auto s = repo.audit("ack.received", out.message.contact_id, out.message.client_id,
                          out.message.incident_id, data.dump(), now);
      !s) {
    return s.error();
  }
  if (auto s = repo.audit_cancelled(out.message.contact_id, out.message.client_id,
                                    out.message.incident_id, "the contact acknowledged", *cancelled,
                                    now);
      !s) {
    return s.error();
  }
  return out;
}

}  // namespace herald::schedule
