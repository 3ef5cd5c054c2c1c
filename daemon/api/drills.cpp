// Drills, drill schedules, a plan's gaps, and notification obligations (docs/drills.md).
#include <fmt/format.h>

#include <set>

#include "daemon/api/context.hpp"
#include "daemon/drill/drill.hpp"
#include "daemon/obligation/obligation.hpp"

namespace herald::api {
namespace {

Result<Client> need_client(store::Repo& repo, const std::string& id) {
  auto client = repo.client(id);
  if (!client) {
    return client.error();
  }
  if (!client->has_value()) {
    return make_error(ErrorKind::not_found, "not_found", fmt::format("unknown client \"{}\"", id));
  }
  return **client;
}

void answer(const http::Responder& respond, const Result<json>& r, int status = 200) {
  respond(r ? json_response(status, *r) : error_response(r.error()));
}

// ?client= is required where an incident id alone is ambiguous.
Result<std::string> client_param(const Call& c) {
  auto client = c.request.query_param("client");
  if (!client || client->empty()) {
    return make_error(ErrorKind::invalid, "missing_parameter",
                      "?client= is required: incident ids are per client", "client");
  }
  return *client;
}

}  // namespace

void post_drill(Services& s, const Call& c, const http::Responder& respond) {
  const auto client_id = c.param("client");
  auto body = parse_body(c.request);
  if (!body) {
    respond(error_response(body.error()));
    return;
  }
  if (!body->is_object()) {
    respond(error_response(make_error(ErrorKind::unprocessable, "invalid_drill",
                                      "the body must be {\"phase\": ..., \"severity\": ...}")));
    return;
  }
  for (const auto& [key, _] : body->items()) {
    if (key != "phase" && key != "severity") {
      respond(error_response(make_error(ErrorKind::unprocessable, "unknown_field",
                                        fmt::format("unknown field \"{}\"", key), key)));
      return;
    }
  }
  auto text = [&](const char* key) {
    return body->contains(key) && (*body)[key].is_string() ? (*body)[key].get<std::string>()
                                                           : std::string();
  };
  auto phase = parse_phase(text("phase"));
  if (!phase) {
    respond(error_response(
        make_error(ErrorKind::unprocessable, "invalid_phase",
                   "phase must be one of preparation, identification, containment, eradication, "
                   "recovery, lessons_learned, closed",
                   "phase")));
    return;
  }
  auto severity = parse_severity(text("severity"));
  if (!severity) {
    respond(error_response(make_error(ErrorKind::unprocessable, "invalid_severity",
                                      "severity must be one of low, medium, high, critical",
                                      "severity")));
    return;
  }
  auto started = std::make_shared<std::pair<drill::DrillRecord, int>>();
  s.store.write(
      [&s, client_id, phase = *phase, severity = *severity, actor = c.actor,
       started](store::Repo& repo) -> Status {
        auto client = need_client(repo, client_id);
        if (!client) {
          return client.error();
        }
        auto d = drill::start_drill(repo, client_id, phase, severity, actor, false, s.clock.now(),
                                    &started->second);
        if (!d) {
          return d.error();
        }
        started->first = *d;
        return {};
      },
      [&s, respond, started](Status st) {
        if (!st) {
          respond(error_response(st.error()));
          return;
        }
        s.metrics.add("herald_drills_started_total", "trigger=\"api\"");
        if (s.wake_dispatcher) {
          s.wake_dispatcher();
        }
        respond(json_response(202, json{{"drill", started->first.id},
                                        {"incident", started->first.incident_id},
                                        {"messages", started->second}}));
      });
}

void list_client_drills(Services& s, const Call& c, const http::Responder& respond) {
  const auto client_id = c.param("client");
  answer(respond, s.store.read<json>([&](store::Repo& repo) -> Result<json> {
    if (auto client = need_client(repo, client_id); !client) {
      return client.error();
    }
    auto drills = drill::list_drills(repo, client_id, std::nullopt, std::nullopt);
    if (!drills) {
      return drills.error();
    }
    json items = json::array();
    for (auto it = drills->rbegin(); it != drills->rend(); ++it) {
      auto summary = drill::drill_summary(repo, *it);
      if (!summary) {
        return summary.error();
      }
      items.push_back(*summary);
    }
    return json{{"items", items}};
  }));
}

void get_drill(Services& s, const Call& c, const http::Responder& respond) {
  const auto id = c.param("drill");
  answer(respond, s.store.read<json>([&](store::Repo& repo) -> Result<json> {
    auto d = drill::find_drill(repo, id);
    if (!d) {
      return d.error();
    }
    if (!d->has_value()) {
      return make_error(ErrorKind::not_found, "not_found", fmt::format("no drill \"{}\"", id));
    }
    return drill::drill_report(repo, **d, s.clock.now());
  }));
}

void get_gaps(Services& s, const Call& c, const http::Responder& respond) {
  const auto client_id = c.param("client");
  answer(respond, s.store.read<json>([&](store::Repo& repo) -> Result<json> {
    if (auto client = need_client(repo, client_id); !client) {
      return client.error();
    }
    return drill::plan_gaps(repo, client_id);
  }));
}

void put_drill_schedule(Services& s, const Call& c, const http::Responder& respond) {
  const auto client_id = c.param("client");
  auto body = parse_body(c.request);
  if (!body) {
    respond(error_response(body.error()));
    return;
  }
  auto out = std::make_shared<json>();
  s.store.write(
      [&s, client_id, body = *body, actor = c.actor, out](store::Repo& repo) -> Status {
        auto client = need_client(repo, client_id);
        if (!client) {
          return client.error();
        }
        auto now = s.clock.now();
        auto schedule = drill::parse_schedule(body, *client, now);
        if (!schedule) {
          return schedule.error();
        }
        auto before = drill::get_schedule(repo, client_id);
        if (!before) {
          return before.error();
        }
        if (auto st = drill::put_schedule(repo, *schedule, now); !st) {
          return st;
        }
        *out = drill::schedule_json(*schedule);
        json data{{"before", *before ? drill::schedule_json(**before) : json(nullptr)},
                  {"after", *out}};
        return repo.audit("drill_schedule.put", actor, client_id, client_id, data.dump(), now);
      },
      [respond, out](Status st) {
        respond(st ? json_response(200, *out) : error_response(st.error()));
      });
}

void get_drill_schedule(Services& s, const Call& c, const http::Responder& respond) {
  const auto client_id = c.param("client");
  answer(respond, s.store.read<json>([&](store::Repo& repo) -> Result<json> {
    if (auto client = need_client(repo, client_id); !client) {
      return client.error();
    }
    auto schedule = drill::get_schedule(repo, client_id);
    if (!schedule) {
      return schedule.error();
    }
    if (!schedule->has_value()) {
      return make_error(ErrorKind::not_found, "not_found",
                        fmt::format("client \"{}\" has no drill schedule", client_id));
    }
    return drill::schedule_json(**schedule);
  }));
}

void delete_drill_schedule(Services& s, const Call& c, const http::Responder& respond) {
  const auto client_id = c.param("client");
  s.store.write(
      [&s, client_id, actor = c.actor](store::Repo& repo) -> Status {
        auto before = drill::get_schedule(repo, client_id);
        if (!before) {
          return before.error();
        }
        if (!before->has_value()) {
          return make_error(ErrorKind::not_found, "not_found",
                            fmt::format("client \"{}\" has no drill schedule", client_id));
        }
        auto gone = drill::delete_schedule(repo, client_id);
        if (!gone) {
          return gone.error();
        }
        json data{{"before", drill::schedule_json(**before)}, {"after", nullptr}};
        return repo.audit("drill_schedule.delete", actor, client_id, client_id, data.dump(),
                          s.clock.now());
      },
      [respond](Status st) {
        if (!st) {
          respond(error_response(st.error()));
          return;
        }
        http::Response r;
        r.status = 204;
        r.content_type.clear();
        respond(std::move(r));
      });
}

void put_obligations(Services& s, const Call& c, const http::Responder& respond) {
  const auto client_id = c.param("client");
  auto body = parse_body(c.request);
  if (!body) {
    respond(error_response(body.error()));
    return;
  }
  auto parsed = obligation::parse_obligations(*body);
  if (!parsed) {
    respond(error_response(parsed.error()));
    return;
  }
  auto out = std::make_shared<json>();
  s.store.write(
      [&s, client_id, obligations = *parsed, actor = c.actor, out](store::Repo& repo) -> Status {
        if (auto client = need_client(repo, client_id); !client) {
          return client.error();
        }
        auto before = obligation::load(repo, client_id);
        if (!before) {
          return before.error();
        }
        auto now = s.clock.now();
        auto version = obligation::save(repo, client_id, obligations, now);
        if (!version) {
          return version.error();
        }
        *out = obligation::obligations_json(obligations);
        (*out)["version"] = *version;
        // Roles nobody holds would remind nobody: stored, but said.
        auto contacts = repo.contacts(client_id);
        if (!contacts) {
          return contacts.error();
        }
        json warnings = json::array();
        for (const auto& o : obligations) {
          std::vector<std::string> roles = o.roles;
          roles.insert(roles.end(), o.escalate_to.begin(), o.escalate_to.end());
          for (const auto& role : roles) {
            bool held = std::any_of(contacts->begin(), contacts->end(), [&](const Contact& ct) {
              return std::find(ct.roles.begin(), ct.roles.end(), role) != ct.roles.end();
            });
            if (!held) {
              warnings.push_back(
                  fmt::format("obligation \"{}\": no contact holds the role \"{}\"", o.id, role));
            }
          }
        }
        (*out)["warnings"] = warnings;
        json data{{"before", obligation::obligations_json(*before)},
                  {"after", obligation::obligations_json(obligations)}};
        return repo.audit("obligations.put", actor, client_id, client_id, data.dump(), now);
      },
      [respond, out](Status st) {
        respond(st ? json_response(200, *out) : error_response(st.error()));
      });
}

void get_obligations(Services& s, const Call& c, const http::Responder& respond) {
  const auto client_id = c.param("client");
  answer(respond, s.store.read<json>([&](store::Repo& repo) -> Result<json> {
    if (auto client = need_client(repo, client_id); !client) {
      return client.error();
    }
    auto list = obligation::load(repo, client_id);
    auto version = obligation::version(repo, client_id);
    if (!list || !version) {
      return !list ? list.error() : version.error();
    }
    json out = obligation::obligations_json(*list);
    out["version"] = *version;
    return out;
  }));
}

void post_obligation_met(Services& s, const Call& c, const http::Responder& respond) {
  auto client_id = client_param(c);
  if (!client_id) {
    respond(error_response(client_id.error()));
    return;
  }
  std::string note;
  if (!c.request.body.empty()) {
    auto body = parse_body(c.request);
    if (!body) {
      respond(error_response(body.error()));
      return;
    }
    if (!body->is_object() || (body->contains("note") && !(*body)["note"].is_string()) ||
        body->size() > (body->contains("note") ? 1u : 0u)) {
      respond(error_response(make_error(ErrorKind::unprocessable, "invalid_field",
                                        "the body may only be {\"note\": \"...\"}", "note")));
      return;
    }
    note = body->value("note", "");
    if (note.size() > 2000) {
      respond(error_response(make_error(ErrorKind::unprocessable, "invalid_field",
                                        "note must be at most 2000 characters", "note")));
      return;
    }
  }
  auto out = std::make_shared<obligation::MetOutcome>();
  s.store.write(
      [&s, client_id = *client_id, incident = c.param("incident"), id = c.param("obligation"),
       actor = c.actor, note, out](store::Repo& repo) -> Status {
        auto r = obligation::mark_met(repo, client_id, incident, id, actor, note, s.clock.now());
        if (!r) {
          return r.error();
        }
        *out = std::move(*r);
        return {};
      },
      [respond, out](Status st) {
        if (!st) {
          respond(error_response(st.error()));
          return;
        }
        json j = out->obligation;
        j["already_met"] = !out->first;
        j["cancelled_messages"] = out->cancelled;
        respond(json_response(200, j));
      });
}

}  // namespace herald::api
