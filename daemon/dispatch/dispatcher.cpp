#include "daemon/dispatch/dispatcher.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <unordered_map>

#include "channels/registry.hpp"
#include "daemon/core/ack_link.hpp"
#include "daemon/core/crypto.hpp"
#include "daemon/obligation/obligation.hpp"
#include "daemon/render/renderer.hpp"
#include "daemon/schedule/scheduler.hpp"
#include "daemon/store/store.hpp"
#include "daemon/transport/transport.hpp"

namespace herald::dispatch {

std::vector<Millis> default_retry_schedule() {
  using std::chrono::hours;
  using std::chrono::minutes;
  using std::chrono::seconds;
  return {seconds(5), minutes(5), minutes(30), hours(2), hours(5), hours(10)};
}

Millis retry_wait(int attempt, const DispatcherOptions& options, double random01) {
  Millis step{5'000};
  if (!options.retry_schedule.empty()) {
    size_t i = static_cast<size_t>(std::max(attempt, 1) - 1);
    step = options.retry_schedule[std::min(i, options.retry_schedule.size() - 1)];
  }
  if (options.max_backoff) {
    step = std::min(step, *options.max_backoff);
  }
  double jitter = std::clamp(options.retry_jitter, 0.0, 1.0) * std::clamp(random01, 0.0, 1.0);
  auto wait = Millis{static_cast<int64_t>(static_cast<double>(step.count()) * (1.0 - jitter))};
  return std::max(wait, options.min_backoff);
}

Decision decide(const Message& message, const channels::Outcome& outcome, Timestamp now,
                const DispatcherOptions& options, double random01) {
  Decision d;
  switch (outcome.verdict) {
    case channels::Verdict::delivered:
      d.status = MessageStatus::delivered;
      d.send_at = message.send_at;
      d.delivered_at = now;
      return d;
    case channels::Verdict::permanent:
      d.status = MessageStatus::failed;
      d.send_at = message.send_at;
      d.last_error = outcome.detail;
      return d;
    case channels::Verdict::retryable: {
      Millis wait = retry_wait(message.attempts, options, random01);
      // Retry-After wins: the receiver said when it can take the message.
      bool told = outcome.retry_after && *outcome.retry_after > wait;
      if (told) {
        wait = *outcome.retry_after;
      }
      Timestamp next = now + wait;
      Timestamp deadline =
          message.first_attempt_at.value_or(message.created_at) + options.retry_horizon;
      // A step that would overshoot the horizon is cut short: the last attempt is made at the
      // horizon itself (unless Retry-After asks for later, or it would come at once).
      if (next > deadline && !told && deadline - now >= options.min_backoff) {
        next = deadline;
      }
      if (next > deadline) {
        d.status = MessageStatus::failed;
        d.send_at = message.send_at;
        d.last_error = fmt::format(
            "gave up after {} attempts over {}: {}", message.attempts,
            format_duration(
                std::chrono::duration_cast<Millis>(std::chrono::floor<std::chrono::seconds>(
                    now - message.first_attempt_at.value_or(message.created_at)))),
            outcome.detail);
        return d;
      }
      d.status = MessageStatus::retrying;
      d.send_at = next;
      d.last_error = outcome.detail;
      return d;
    }
  }
  return d;
}

namespace {

// How soon a write that failed to commit (outcomes, put-backs) is tried again.
constexpr Millis kRewriteDelay{1'000};
// The longest a finished attempt waits for others to share its commit.
constexpr Millis kFlushAfter{10};
// Due messages read ahead of a claim: in chunks, up to a bound (beyond it, the old way: claim
// from the head and put back what must wait, so that nothing behind a long blocked run
// starves).
constexpr int kLookaheadChunk = 512;
constexpr size_t kMaxLookahead = 8'192;
constexpr int kUnlimited = std::numeric_limits<int>::max() / 2;
using SteadyTime = std::chrono::steady_clock::time_point;

// A message on its way: everything needed to record its outcome.
struct InFlight {
  Message message;
  const channels::Channel* channel = nullptr;
  store::MessageContent content;
  Timestamp started_at{};
  std::string destination;  // host:port: the breaker's key, shown in metrics
  std::string limit_key;    // the endpoint (SMS, email: the server): rate and concurrency
  std::string kind;         // the rate_limits key: slack, ..., webhook, sms, email
};

// Why a claimed message was put back without an attempt.
struct Hold {
  Timestamp until{};
  std::string_view reason;
};

std::string url_of(const channels::Request& request) {
  if (const auto* http = std::get_if<channels::HttpRequest>(&request)) {
    return http->url;
  }
  return std::get<channels::SmtpRequest>(request).url;
}

// Metric labels take only what a host:port can hold.
std::string label_safe(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == ':' || c == '-' ||
        c == '[' || c == ']' || c == '_') {
      out += c;
    }
  }
  return out;
}

struct Completion {
  InFlight flight;
  channels::Outcome outcome;
  Millis duration{0};
};

std::string thread_key(const Message& m) {
  return "incident-" + sha256_hex(m.client_id + "\n" + m.incident_id).substr(0, 24);
}

}  // namespace

struct Dispatcher::Impl {
  Impl(DispatcherOptions o, store::Store& st, const render::Renderer& r,
       const channels::ChannelRegistry& ch, transport::Transport& t, const Clock& c, Metrics& m,
       std::function<double()> rnd)
      : options(std::move(o)),
        store(st),
        renderer(r),
        channels(ch),
        transport(t),
        clock(c),
        metrics(m),
        random01(std::move(rnd)) {}

  DispatcherOptions options;
  store::Store& store;
  const render::Renderer& renderer;
  const channels::ChannelRegistry& channels;
  transport::Transport& transport;
  const Clock& clock;
  Metrics& metrics;
  std::function<double()> random01;

  std::mutex mutex;
  std::condition_variable cv;
  bool woken = false;
  bool stopping = false;
  std::deque<Completion> completions;
  int in_flight = 0;
  std::thread thread;

  // The hand-over from ingest (reserve, release, take), guarded by `mutex`.
  std::unordered_map<std::string, std::string> fresh_reserved;  // message id -> limit key
  std::unordered_map<std::string, int> fresh_by_key;
  std::vector<Message> fresh;  // handed over: committed as claimed, not yet dispatched
  bool caught_up = false;      // the last look left nothing due unclaimed
  bool claiming = false;       // a pass with a claim is being committed
  int to_send_count = 0;       // claimed by a committed pass, not yet dispatched

  // Touched by the dispatching thread only.
  std::map<std::string, CircuitBreaker> breakers;
  std::map<std::string, TokenBucket> buckets;
  // Written by the dispatching thread under `mutex` (reserve() reads them from the writer).
  std::map<std::string, int> destination_flights;
  // An endpoint that answered 429 with Retry-After gets nothing else before then.
  std::map<std::string, Timestamp> paused_until;
  // Outcomes and put-backs whose commit failed (a full disk, a database locked by another
  // process): written again every kRewriteDelay, so their messages do not stay `sending`
  // until the next restart once the store takes writes again.
  struct Unrecorded {
    std::vector<Completion> done;
    std::vector<std::pair<Attempt, Decision>> rows;
  };
  std::vector<Unrecorded> unrecorded;
  std::vector<std::pair<Message, Hold>> undeferred;
  Timestamp rewrite_at{};
  // Claimed this pass but not sent: written with the next pass's commit.
  std::vector<Completion> unsent;              // their outcome (prepare failed)
  std::vector<std::pair<Message, Hold>> held;  // to be put back (a limit held them)
  SteadyTime pending_since{};  // when the oldest of completions, unsent and held appeared

  // Due messages read ahead of claiming, in due order. A claim takes the first ones whose
  // endpoint (SMS, email: server) has a free slot and a rate token now and leaves the others
  // where they are, rather than claiming them only to put them back: a fan-out to one SMTP
  // relay claimed, rendered and put back each email many times over.
  struct Lookahead {
    std::deque<store::DueCandidate> rows;  // read, not yet looked at by a claim
    // Looked at and left for want of slots, by limit key, in due order; older than any of
    // `rows`, so a claim serves them first. Few keys: the saturated ones.
    std::map<std::string, std::deque<store::DueCandidate>> parked;
    size_t parked_count = 0;
    std::optional<store::DuePosition> read_to;  // the last row read
    SteadyTime since{};                         // when it was read from the first due message
  };
  Lookahead lookahead;  // the dispatcher thread's; lent to the pass that claims
  std::unique_ptr<render::SharedContext> shared_context;  // the last event's, for the next
  bool claim_short = false;      // the last claim left due messages waiting for slots
  bool lookahead_stale = false;  // guarded by `mutex`: wake() says new messages may be due
  // email, sms → the host:port of their server, learned from the requests built: the part of
  // a person's message's limit key that the message row does not have. Written under `mutex`.
  std::map<std::string, std::string> channel_destination;

  void notify() {
    {
      std::lock_guard lock(mutex);
      woken = true;
      lookahead_stale = true;
    }
    cv.notify_all();
  }

  bool reserve(const Message& m) {
    std::lock_guard lock(mutex);
    if (fresh_reserved.count(m.id) > 0) {
      return true;  // the same transaction, run again
    }
    if (stopping || !caught_up || claiming || to_send_count > 0 ||
        in_flight + static_cast<int>(fresh_reserved.size()) >= options.concurrency) {
      return false;
    }
    auto key = limit_key_of(m.client_id, m.channel, m.endpoint_id, channel_destination);
    auto flights = destination_flights.find(key);
    auto reserved = fresh_by_key.find(key);
    int used = (flights == destination_flights.end() ? 0 : flights->second) +
               (reserved == fresh_by_key.end() ? 0 : reserved->second);
    if (used >= slots_of(key)) {
      return false;
    }
    ++fresh_by_key[key];
    fresh_reserved.emplace(m.id, std::move(key));
    return true;
  }

  void release_locked(const std::string& id) {
    auto it = fresh_reserved.find(id);
    if (it == fresh_reserved.end()) {
      return;
    }
    if (auto k = fresh_by_key.find(it->second); k != fresh_by_key.end() && --k->second <= 0) {
      fresh_by_key.erase(k);
    }
    fresh_reserved.erase(it);
  }

  // What the messages of one event share, read once per pass: a fan-out to thousands of
  // recipients reads its event, incident, client and templates once, not once per message.
  struct Shared {
    store::StoredEvent event;
    Incident incident;
    Client client;
    render::TemplateSet templates;  // the client's and everyone's stored templates
  };
  struct Loaded {
    std::shared_ptr<const Shared> shared;
    std::optional<Contact> contact;
    std::optional<Endpoint> endpoint;
    std::optional<obligation::Notice> notice;  // deadline reminders only
  };
  using SharedCache = std::map<std::string, Result<std::shared_ptr<const Shared>>>;

  static Result<std::shared_ptr<const Shared>> load_shared(store::Repo& r, const Message& m) {
    auto event = r.event(m.client_id, m.event_id);
    auto incident = r.incident(m.client_id, m.incident_id);
    auto client = r.client(m.client_id);
    if (!event || !incident || !client) {
      return make_error(ErrorKind::unavailable, "storage_unavailable",
                        "cannot read the message's event, incident or client");
    }
    if (!event->has_value() || !incident->has_value()) {
      return make_error(ErrorKind::internal, "missing_event",
                        "the message's event or incident is missing");
    }
    if (!client->has_value()) {
      return make_error(ErrorKind::not_found, "client_deleted", "the client was deleted");
    }
    auto s = std::make_shared<Shared>();
    s->event = std::move(**event);
    s->incident = std::move(**incident);
    s->client = std::move(**client);
    auto templates = r.current_templates(m.client_id);
    if (!templates) {
      return templates.error();
    }
    for (auto& t : *templates) {
      s->templates.push_back(
          render::StoredTemplate{t.client_id, t.name, t.body.value_or(""), t.version});
    }
    return std::shared_ptr<const Shared>(std::move(s));
  }

  static Result<Loaded> load_one(store::Repo& r, const Message& m, SharedCache& cache) {
    std::string key = m.client_id + '\n' + m.event_id + '\n' + m.incident_id;
    auto it = cache.find(key);
    if (it == cache.end()) {
      it = cache.emplace(std::move(key), load_shared(r, m)).first;
    }
    if (!it->second) {
      return it->second.error();
    }
    Loaded l;
    l.shared = *it->second;
    if (!m.contact_id.empty()) {
      auto c = r.contact(m.client_id, m.contact_id);
      if (!c) {
        return c.error();
      }
      l.contact = std::move(*c);
    }
    if (!m.endpoint_id.empty()) {
      auto e = r.endpoint(m.client_id, m.endpoint_id);
      if (!e) {
        return e.error();
      }
      l.endpoint = std::move(*e);
    }
    auto notice = obligation::notice_for(r, m);
    if (!notice) {
      return notice.error();
    }
    l.notice = std::move(*notice);
    return l;
  }

  // Reads what the claimed messages need, all in one snapshot.
  std::vector<Result<Loaded>> load(const std::vector<Message>& batch) {
    std::vector<Result<Loaded>> out;
    out.reserve(batch.size());
    auto read = store.read<bool>([&](store::Repo& r) -> Result<bool> {
      SharedCache cache;
      for (const Message& m : batch) {
        out.push_back(load_one(r, m, cache));
      }
      return true;
    });
    if (!read) {
      out.clear();
      for (size_t i = 0; i < batch.size(); ++i) {
        out.push_back(read.error());
      }
    }
    return out;
  }

  // Builds the request for one claimed message, or the outcome that ends it without sending.
  Result<std::pair<channels::Request, InFlight>> prepare(const Message& m,
                                                         const Result<Loaded>& loaded) {
    if (!loaded) {
      return loaded.error();
    }
    if (!m.contact_id.empty() && !loaded->contact) {
      return make_error(ErrorKind::not_found, "contact_deleted",
                        fmt::format("contact \"{}\" no longer exists", m.contact_id));
    }
    if (!m.endpoint_id.empty() && (!loaded->endpoint || !loaded->endpoint->enabled)) {
      return make_error(
          ErrorKind::not_found, "endpoint_unavailable",
          fmt::format("endpoint \"{}\" no longer exists or is disabled", m.endpoint_id));
    }
    const Shared& shared = *loaded->shared;
    std::string endpoint_type =
        loaded->endpoint ? std::string(to_string(loaded->endpoint->type)) : std::string();
    const channels::Channel* channel = channels.find(m.channel, endpoint_type);
    if (!channel) {
      // A configuration gap, not the recipient's fault: retried, so fixing the configuration
      // within the retry horizon still delivers it.
      return make_error(ErrorKind::unavailable, "channel_not_configured",
                        fmt::format("channel {} is not configured (see [{}] in the config file)",
                                    m.channel, m.channel == "email" ? "smtp" : m.channel));
    }

    const Event& e = shared.event.event;
    render::TemplateContext ctx;
    ctx.client_id = shared.client.id;
    ctx.client_name = shared.client.name;
    ctx.incident_id = shared.incident.id;
    ctx.incident_title = shared.incident.title;
    ctx.severity = e.severity;
    ctx.phase = m.phase;
    ctx.previous_phase = shared.event.previous_phase;
    ctx.event_id = e.event_id;
    ctx.summary = e.summary;
    ctx.occurred_at = e.occurred_at;
    ctx.details_json = e.details_json;
    ctx.update_number = m.update_number;
    ctx.drill = e.drill || shared.incident.drill;
    ctx.locale = shared.client.locale;
    if (const auto& n = loaded->notice) {
      ctx.obligation = render::TemplateContext::Obligation{n->id,     n->description, n->kind,
                                                           n->starts, n->started_at,  n->due_at,
                                                           n->within, clock.now()};
    }
    if (loaded->contact) {
      ctx.contact_name = loaded->contact->name;
      ctx.contact_role = m.role;
      if (!options.ack_key.empty() && !options.public_url.empty()) {
        ctx.ack_url = ack_url(options.public_url, options.ack_key, m.id);
      }
    }
    // The template data the messages of one event share, built once for all of them.
    if (!shared_context || !shared_context->matches(ctx)) {
      shared_context = std::make_unique<render::SharedContext>(ctx);
    }
    auto rendered =
        renderer.render(ctx, m.channel, endpoint_type, &shared.templates, shared_context.get());
    if (!rendered) {
      return rendered.error();
    }

    channels::Outgoing out;
    out.message_id = m.id;
    out.channel = m.channel;
    out.endpoint_type = endpoint_type;
    out.subject = std::move(rendered->subject);
    out.text = std::move(rendered->text);
    out.html = std::move(rendered->html);
    out.payload_json = std::move(rendered->payload_json);
    out.thread_key = thread_key(m);
    out.now = clock.now();
    if (loaded->contact) {
      out.recipient_name = loaded->contact->name;
      out.address = m.channel == kChannelEmail ? loaded->contact->email : loaded->contact->phone;
    }
    if (loaded->endpoint) {
      out.url = loaded->endpoint->url;
      out.secrets = loaded->endpoint->secrets;
    }
    auto request = channel->build(out);
    if (!request) {
      return request.error();
    }
    InFlight flight;
    flight.message = m;
    flight.channel = channel;
    flight.content.address = out.address;  // never the endpoint URL: it is a credential
    flight.content.subject = out.subject;
    flight.content.body = m.channel == kChannelWebhook ? out.payload_json : out.text;
    flight.content.content_hash =
        sha256_hex(out.subject + "\n" + out.text + "\n" + out.html + "\n" + out.payload_json);
    flight.content.templates = nlohmann::json(rendered->templates).dump();
    if (m.channel == kChannelSms) {
      flight.content.sms_segments = rendered->sms_segments;
    }
    flight.started_at = out.now;
    flight.destination = destination_of(url_of(*request));
    if (loaded->endpoint) {
      flight.kind = endpoint_type;
      flight.limit_key = "endpoint " + m.client_id + "/" + m.endpoint_id;
    } else {
      flight.kind = m.channel;
      flight.limit_key = m.channel + " " + flight.destination;
      if (auto it = channel_destination.find(m.channel);
          it == channel_destination.end() || it->second != flight.destination) {
        std::lock_guard lock(mutex);
        channel_destination[m.channel] = flight.destination;
      }
    }
    return std::make_pair(std::move(*request), std::move(flight));
  }

  // 410 Gone from a chat or webhook endpoint: the receiver asks never to be called again.
  static bool gone(const Message& m, const channels::Outcome& outcome) {
    return outcome.verdict == channels::Verdict::permanent && outcome.status_code == 410 &&
           !m.endpoint_id.empty() && (m.channel == kChannelChat || m.channel == kChannelWebhook);
  }

  // Turns the endpoint off (an admin turns it back on with a PUT) and says so in the audit log.
  static Status disable_endpoint(store::Repo& r, const Message& m, Timestamp now) {
    auto changed = r.set_endpoint_enabled(m.client_id, m.endpoint_id, false, now);
    if (!changed) {
      return changed.error();
    }
    if (!*changed) {
      return {};  // already off: another message got the same answer
    }
    spdlog::warn("endpoint {}/{} answered 410 Gone: disabled until an admin enables it again",
                 m.client_id, m.endpoint_id);
    nlohmann::json data{{"endpoint", m.endpoint_id},
                        {"message", m.id},
                        {"reason", "the receiver answered 410 Gone"}};
    return r.audit("endpoint.disabled", "dispatcher", m.client_id, m.endpoint_id, data.dump(), now);
  }

  void publish(const std::string& destination, const CircuitBreaker& breaker) {
    auto label = label_safe(destination);
    metrics.set("herald_breaker_open", fmt::format("destination=\"{}\"", label),
                breaker.state() == BreakerState::closed ? 0 : 1);
    for (auto state : {BreakerState::closed, BreakerState::open, BreakerState::half_open}) {
      metrics.set("herald_breaker_state",
                  fmt::format("destination=\"{}\",state=\"{}\"", label, to_string(state)),
                  breaker.state() == state ? 1 : 0);
    }
  }

  // Every destination gets its series from its first attempt on, closed at first.
  CircuitBreaker& breaker_for(const std::string& destination) {
    auto [it, inserted] = breakers.try_emplace(destination, options.breaker);
    if (inserted) {
      publish(destination, it->second);
    }
    return it->second;
  }

  // The attempts a limit key may have in flight: a chat or webhook endpoint's
  // destination_concurrency, an SMS or email server's server_concurrency.
  static int slots_of(const std::string& key, int endpoint_slots, int server_slots) {
    int slots = key.rfind("endpoint ", 0) == 0 ? endpoint_slots : server_slots;
    return slots > 0 ? slots : kUnlimited;
  }
  int slots_of(const std::string& key) const {
    return slots_of(key, options.destination_concurrency, options.server_concurrency);
  }

  // Whether a prepared message must wait: its endpoint has its share of attempts in flight,
  // is out of tokens, or its destination's breaker is open. Otherwise it counts as in flight.
  std::optional<Hold> hold_back(const InFlight& f, Timestamp now) {
    if (destination_flights[f.limit_key] >= slots_of(f.limit_key)) {
      return Hold{now + options.busy_wait, "concurrency"};
    }
    if (auto it = paused_until.find(f.limit_key); it != paused_until.end()) {
      if (now < it->second) {
        return Hold{it->second, "retry_after"};
      }
      paused_until.erase(it);
    }
    TokenBucket* bucket = nullptr;
    if (auto it = options.rate_limits.find(f.kind);
        it != options.rate_limits.end() && it->second.per_second > 0) {
      bucket = &buckets.try_emplace(f.limit_key, it->second, now).first->second;
      if (auto at = bucket->available_at(now)) {
        return Hold{*at, "rate"};
      }
    }
    // Last: once open, admitting an attempt makes it the probe, and a probe must go out.
    auto& breaker = breaker_for(f.destination);
    auto before = breaker.state();
    auto at = breaker.admit(now);
    if (breaker.state() != before) {
      publish(f.destination, breaker);
    }
    if (at) {
      return Hold{*at, "breaker"};
    }
    if (bucket) {
      // Twilio counts segments: a long SMS uses up as many seconds as it has segments.
      bucket->take(now, static_cast<double>(f.content.sms_segments.value_or(1)));
    }
    std::lock_guard lock(mutex);
    ++destination_flights[f.limit_key];
    return std::nullopt;
  }

  // An attempt came back: free its slot and tell its breaker.
  void settle(const InFlight& f, const channels::Outcome& outcome, Timestamp now) {
    if (f.destination.empty()) {
      return;  // never sent
    }
    if (auto it = destination_flights.find(f.limit_key); it != destination_flights.end()) {
      std::lock_guard lock(mutex);
      if (--it->second <= 0) {
        destination_flights.erase(it);
      }
    }
    if (outcome.status_code == 429 && outcome.retry_after) {
      auto until = now + std::min(*outcome.retry_after, options.retry_horizon);
      auto& paused = paused_until[f.limit_key];
      paused = std::max(paused, until);
    }
    auto& breaker = breaker_for(f.destination);
    auto before = breaker.state();
    breaker.record(outcome.verdict == channels::Verdict::retryable, now);
    if (breaker.state() != before) {
      if (breaker.state() == BreakerState::open) {
        spdlog::warn("{} keeps failing: holding its messages back until {}", f.destination,
                     format_rfc3339(breaker.reopen_at()));
      } else if (breaker.state() == BreakerState::closed) {
        spdlog::info("{} answers again: sending to it resumes", f.destination);
      }
      publish(f.destination, breaker);
    }
  }

  // Puts held-back messages back as they were, attempt not counted, due when they may go.
  static store::Store::WriteFn defer_job(const std::vector<std::pair<Message, Hold>>& held) {
    return [&held](store::Repo& r) -> Status {
      for (const auto& [m, hold] : held) {
        if (auto s = r.defer_claimed(m.id, hold.until); !s) {
          return s;
        }
      }
      return {};
    };
  }

  void after_defer(const Status& st, std::vector<std::pair<Message, Hold>>& held) {
    if (!st) {
      // They stay `sending` (and are sent after a restart: late, never lost) until the put-back
      // is written again and commits.
      spdlog::error("cannot put back {} held message(s), trying again: {}", held.size(),
                    st.error().message);
      undeferred.insert(undeferred.end(), std::make_move_iterator(held.begin()),
                        std::make_move_iterator(held.end()));
      rewrite_at = clock.now() + kRewriteDelay;
      return;
    }
    for (const auto& [m, hold] : held) {
      metrics.add("herald_deferred_total", fmt::format("reason=\"{}\"", hold.reason));
      spdlog::debug("holding {} back until {} ({})", m.id, format_rfc3339(hold.until), hold.reason);
    }
  }

  // The first time an attempt sends a message (or when a retry rendered something else than
  // `before`, the content hash stored until now), says so in the audit trail: the templates
  // and versions, and hashes of the content. The chain holds hashes only, so the stored body
  // can be pruned later and the chain still holds. (The content itself is stored with the
  // outcome, by finish_attempt.)
  static Status audit_content(store::Repo& r, const InFlight& flight,
                              const std::optional<std::string>& before, Timestamp now) {
    if (before && *before == flight.content.content_hash) {
      return {};
    }
    const auto& c = flight.content;
    nlohmann::json data{{"message", flight.message.id},
                        {"channel", flight.message.channel},
                        {"templates", nlohmann::json::parse(c.templates, nullptr, false)},
                        {"content_sha256", c.content_hash},
                        {"body_sha256", sha256_hex(c.body)}};
    if (!c.subject.empty()) {
      data["subject_sha256"] = sha256_hex(c.subject);
    }
    if (!c.address.empty()) {
      data["address"] = c.address;
    }
    if (c.sms_segments) {
      data["sms_segments"] = *c.sms_segments;
    }
    return r.audit("message.rendered", "dispatcher", flight.message.client_id, flight.message.id,
                   data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), now);
  }

  // Settles finished attempts (their slots, their breakers) and decides what happens to each
  // message: the rows one commit will write.
  Unrecorded outcomes_of(std::vector<Completion> done) {
    auto now = clock.now();
    for (const auto& c : done) {
      settle(c.flight, c.outcome, now);
    }
    std::vector<std::pair<Attempt, Decision>> rows;
    rows.reserve(done.size());
    for (auto& c : done) {
      Attempt a;
      a.message_id = c.flight.message.id;
      a.number = c.flight.message.attempts;
      a.started_at = c.flight.started_at;
      a.duration = c.duration;
      a.outcome = c.outcome.verdict == channels::Verdict::delivered   ? AttemptOutcome::delivered
                  : c.outcome.verdict == channels::Verdict::permanent ? AttemptOutcome::permanent
                                                                      : AttemptOutcome::retryable;
      a.status_code = static_cast<int>(c.outcome.status_code);
      a.error = c.outcome.verdict == channels::Verdict::delivered ? "" : c.outcome.detail;
      Decision d = decide(c.flight.message, c.outcome, now, options, random01());
      rows.emplace_back(std::move(a), std::move(d));

      const auto& channel = c.flight.message.channel;
      metrics.add("herald_attempts_total", fmt::format("channel=\"{}\",outcome=\"{}\"", channel,
                                                       to_string(rows.back().first.outcome)));
      metrics.observe("herald_attempt_duration_seconds", fmt::format("channel=\"{}\"", channel),
                      static_cast<double>(c.duration.count()) / 1000.0);
    }
    return Unrecorded{std::move(done), std::move(rows)};
  }

  // Writes the outcomes with their audit records; FALLBACKS gets the fallback messages planned.
  static store::Store::WriteFn outcomes_job(const Unrecorded& pending, Timestamp now,
                                            std::vector<std::string>& fallbacks) {
    return [&pending, now, &fallbacks](store::Repo& r) -> Status {
      const auto& done = pending.done;
      const auto& rows = pending.rows;
      fallbacks.clear();
      for (size_t i = 0; i < done.size(); ++i) {
        const auto& flight = done[i].flight;
        const auto& [attempt, decision] = rows[i];
        if (!flight.content.content_hash.empty()) {
          // What was sent is stored with the outcome, and audited when it is new.
          auto before = r.content_hash(flight.message.id);
          if (!before) {
            return before.error();
          }
          if (auto s = audit_content(r, flight, *before, now); !s) {
            return s;
          }
        }
        if (auto s = r.record_attempt(attempt); !s) {
          return s;
        }
        Status finished =
            flight.content.content_hash.empty()
                ? r.finish_attempt(flight.message.id, decision.status, decision.send_at,
                                   decision.delivered_at, decision.last_error)
                : r.finish_attempt(flight.message.id, decision.status, decision.send_at,
                                   decision.delivered_at, decision.last_error, flight.content);
        if (!finished) {
          return finished;
        }
        nlohmann::json data{{"message", flight.message.id},
                            {"channel", flight.message.channel},
                            {"attempt", attempt.number},
                            {"outcome", to_string(attempt.outcome)},
                            {"status", to_string(decision.status)}};
        if (attempt.status_code != 0) {
          data["status_code"] = attempt.status_code;
        }
        if (!attempt.error.empty()) {
          data["error"] = attempt.error;
        }
        if (decision.status == MessageStatus::retrying) {
          data["next_attempt_at"] = format_rfc3339(decision.send_at);
        }
        if (!flight.content.content_hash.empty()) {
          data["content_sha256"] = flight.content.content_hash;
        }
        if (decision.status == MessageStatus::failed && gone(flight.message, done[i].outcome)) {
          if (auto s = disable_endpoint(r, flight.message, now); !s) {
            return s;
          }
        }
        if (decision.status == MessageStatus::failed) {
          Message failed = flight.message;
          failed.last_error = decision.last_error;
          auto fallback = schedule::plan_fallback(r, failed, now);
          if (!fallback) {
            return fallback.error();
          }
          if (*fallback) {
            data["fallback"] = (*fallback)->id;
            fallbacks.push_back((*fallback)->id + " on " + (*fallback)->channel);
          }
        }
        if (auto s = r.audit(
                "delivery.attempt", "dispatcher", flight.message.client_id, flight.message.id,
                data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), now);
            !s) {
          return s;
        }
      }
      return {};
    };
  }

  // After the outcomes' commit: logs them, or keeps them to be written again.
  void after_outcomes(const Status& st, Unrecorded& pending,
                      const std::vector<std::string>& fallbacks) {
    const auto& done = pending.done;
    const auto& rows = pending.rows;
    if (!st) {
      // The messages stay `sending` in the store (and are resent after a restart: nothing is
      // lost, at worst delivered twice with the same id) until this is written again and
      // commits.
      spdlog::error("cannot record {} delivery outcomes, trying again: {}", done.size(),
                    st.error().message);
      unrecorded.push_back(std::move(pending));
      rewrite_at = clock.now() + kRewriteDelay;
      return;
    }
    for (const auto& f : fallbacks) {
      spdlog::info("falling back: {}", f);
    }
    for (size_t i = 0; i < done.size(); ++i) {
      const auto& m = done[i].flight.message;
      const auto& d = rows[i].second;
      if (d.status == MessageStatus::delivered) {
        spdlog::info("delivered {} ({} to {}{}) after {} attempt(s)", m.id, m.channel,
                     m.contact_id.empty() ? "endpoint " : "contact ",
                     m.contact_id.empty() ? m.endpoint_id : m.contact_id, m.attempts);
      } else if (d.status == MessageStatus::failed) {
        spdlog::warn("failed {} ({}): {}", m.id, m.channel, d.last_error);
      } else {
        spdlog::info("retrying {} ({}) at {}: {}", m.id, m.channel, format_rfc3339(d.send_at),
                     d.last_error);
      }
    }
  }

  // Commits outcomes on their own (a rewrite after a failed commit).
  void commit_outcomes(Unrecorded pending) {
    std::vector<std::string> fallbacks;
    Status st = store.write_sync(outcomes_job(pending, clock.now(), fallbacks));
    after_outcomes(st, pending, fallbacks);
  }

  // Renders the claimed messages and hands them to the transport. Those that cannot be sent
  // (unsent: their outcome) or must wait (held: to be put back) are written with the next
  // pass's commit.
  void dispatch_claimed(std::vector<Message>& claimed) {
    auto loaded = load(claimed);
    std::vector<std::pair<channels::Request, InFlight>> ready;
    ready.reserve(claimed.size());
    for (size_t i = 0; i < claimed.size(); ++i) {
      const Message& m = claimed[i];
      auto prepared = prepare(m, loaded[i]);
      if (!prepared) {
        const Error& e = prepared.error();
        channels::Outcome o;
        o.verdict = e.kind == ErrorKind::unavailable ? channels::Verdict::retryable
                                                     : channels::Verdict::permanent;
        o.detail = e.message;
        Completion c;
        c.flight.message = m;
        c.flight.started_at = clock.now();
        c.outcome = std::move(o);
        unsent.push_back(std::move(c));
        continue;
      }
      auto& [request, flight] = *prepared;
      if (auto hold = hold_back(flight, clock.now())) {
        held.emplace_back(m, *hold);
        continue;
      }
      Millis timeout = options.attempt_timeout;
      if (auto it = options.timeouts.find(flight.kind); it != options.timeouts.end()) {
        timeout = it->second;
      }
      std::visit([timeout](auto& r) { r.timeout = timeout; }, request);
      ready.push_back(std::move(*prepared));
    }
    if (ready.empty()) {
      return;
    }
    {
      std::lock_guard lock(mutex);
      in_flight += static_cast<int>(ready.size());
    }
    std::vector<std::pair<channels::Request, transport::Transport::Done>> requests;
    requests.reserve(ready.size());
    for (auto& [request, flight] : ready) {
      requests.emplace_back(std::move(request), [this, flight = std::move(flight)](
                                                    channels::Response response) mutable {
        Completion c;
        c.outcome = flight.channel->interpret(response);
        c.duration = response.duration;
        c.flight = std::move(flight);
        {
          std::lock_guard lock(mutex);
          if (completions.empty() && pending_since == SteadyTime{}) {
            pending_since = std::chrono::steady_clock::now();
          }
          completions.push_back(std::move(c));
          --in_flight;
          woken = true;
        }
        cv.notify_all();
      });
    }
    transport.submit(std::move(requests));
  }

  // Writes again what a failed commit left unrecorded, once its delay has passed.
  void rewrite_failed() {
    if ((unrecorded.empty() && undeferred.empty()) || clock.now() < rewrite_at) {
      return;
    }
    auto outcomes = std::move(unrecorded);
    unrecorded.clear();
    auto put_back = std::move(undeferred);
    undeferred.clear();
    for (auto& pending : outcomes) {
      commit_outcomes(std::move(pending));
    }
    if (!put_back.empty()) {
      Status st = store.write_sync(defer_job(put_back));
      after_defer(st, put_back);
    }
  }

  // Escalations that fell due add messages; they are claimed in the same pass.
  static store::Store::WriteFn escalations_job(Timestamp now,
                                               std::vector<schedule::EscalationOutcome>& fired) {
    return [now, &fired](store::Repo& r) -> Status {
      auto f = schedule::fire_due_escalations(r, now, 100);
      if (!f) {
        return f.error();
      }
      fired = std::move(*f);
      return {};
    };
  }

  void after_escalations(const Status& st, const std::vector<schedule::EscalationOutcome>& fired) {
    if (!st) {
      spdlog::error("cannot resolve due escalations: {}", st.error().message);
      return;
    }
    for (const auto& e : fired) {
      spdlog::info("escalation {} {}: {} message(s)", e.id, store::to_string(e.status), e.messages);
      metrics.add("herald_escalations_total",
                  fmt::format("status=\"{}\"", store::to_string(e.status)));
    }
  }

  // One pass's write: what came back, what was held back or could not be sent, due escalations
  // and the next claim, committed together (one fsync), each in its own savepoint so that one
  // failing leaves the others intact.
  struct Pass {
    Unrecorded outcomes;
    std::vector<std::string> fallbacks;
    std::vector<std::pair<Message, Hold>> put_back;
    bool escalations = false;
    std::vector<schedule::EscalationOutcome> fired;
    int claim = 0;  // how many to claim; 0: no claim
    // The claim's inputs: the lookahead (lent), how many more attempts each limit key may
    // start (keys not listed: `default_budget`), and the contact channels' destinations.
    Lookahead lookahead;
    std::unordered_map<std::string, int> budget;
    int endpoint_slots = 0;
    int server_slots = 0;
    std::map<std::string, std::string> channel_destination;
    bool blocked = false;    // the claim left due messages for want of their endpoint's slots
    bool exhausted = false;  // the claim took every message it found due
    std::vector<Message> claimed;
    std::vector<Status> results;  // in the order of the writes; set once committed
    bool committed = false;       // guarded by `mutex`
  };
  std::shared_ptr<Pass> writing;  // the pass being committed, if any

  // The limit key of a due message, as hold_back() will see it. A person's channel whose
  // server no request has named yet gets a stand-in ("email ?"), so that even the first claim
  // takes no more than a server's slots.
  static std::string limit_key_of(const std::string& client_id, const std::string& channel,
                                  const std::string& endpoint_id,
                                  const std::map<std::string, std::string>& channel_destination) {
    if (!endpoint_id.empty()) {
      return "endpoint " + client_id + "/" + endpoint_id;
    }
    auto it = channel_destination.find(channel);
    return channel + " " + (it == channel_destination.end() ? std::string("?") : it->second);
  }

  // How many more attempts each limit key may start now: its free slots. Keys not listed may
  // start all their slots. `to_send`: claimed, not yet counted in destination_flights.
  // (Rate limits, pauses and breakers are left to hold_back(): what they hold is put back to
  // when it may go, so the queue says when to look again.)
  std::unordered_map<std::string, int> budgets(const std::vector<Message>& to_send) {
    std::unordered_map<std::string, int> out;
    auto entry = [&](const std::string& key) -> int& {
      return out.try_emplace(key, slots_of(key)).first->second;
    };
    for (const auto& [key, n] : destination_flights) {
      entry(key) -= n;
    }
    {
      std::lock_guard lock(mutex);
      for (const auto& [key, n] : fresh_by_key) {
        entry(key) -= n;  // handed over by ingest, not yet dispatched
      }
    }
    for (const auto& m : to_send) {
      entry(limit_key_of(m.client_id, m.channel, m.endpoint_id, channel_destination)) -= 1;
    }
    return out;
  }

  // The claim, on the writer thread: the first due messages whose limit key has budget left,
  // up to pass.claim, from the lookahead (reading more as needed); each row is looked at once
  // more at most, when its key gets slots again.
  static Status claim_ahead(store::Repo& r, Pass& pass, Timestamp now) {
    auto& la = pass.lookahead;
    std::vector<std::string> picked;
    auto budget_of = [&pass](const std::string& key) -> int& {
      return pass.budget.try_emplace(key, slots_of(key, pass.endpoint_slots, pass.server_slots))
          .first->second;
    };
    // Rows parked under a stand-in key ("email ?") join their server's own once it is known:
    // they count against its slots.
    for (auto it = la.parked.begin(); it != la.parked.end();) {
      const std::string& key = it->first;
      auto channel = key.size() > 2 && key.ends_with(" ?") ? key.substr(0, key.size() - 2) : "";
      auto known = pass.channel_destination.find(channel);
      if (channel.empty() || known == pass.channel_destination.end()) {
        ++it;
        continue;
      }
      auto& own = la.parked[channel + " " + known->second];
      own.insert(own.begin(), std::make_move_iterator(it->second.begin()),
                 std::make_move_iterator(it->second.end()));
      it = la.parked.erase(it);
    }
    for (auto it = la.parked.begin();
         it != la.parked.end() && static_cast<int>(picked.size()) < pass.claim;) {
      int& left = budget_of(it->first);
      auto& rows = it->second;
      while (left > 0 && !rows.empty() && static_cast<int>(picked.size()) < pass.claim) {
        picked.push_back(std::move(rows.front().id));
        rows.pop_front();
        --la.parked_count;
        --left;
      }
      if (rows.empty()) {
        it = la.parked.erase(it);
      } else {
        pass.blocked = pass.blocked || left <= 0;
        ++it;
      }
    }
    bool full = false;
    while (static_cast<int>(picked.size()) < pass.claim) {
      if (la.rows.empty()) {
        if (la.parked_count >= kMaxLookahead) {
          full = true;
          break;
        }
        auto more = r.due_after(now, la.read_to, kLookaheadChunk);
        if (!more) {
          return more.error();
        }
        if (more->empty()) {
          break;
        }
        la.read_to = store::DuePosition{more->back().send_at, more->back().seq};
        la.rows.insert(la.rows.end(), std::make_move_iterator(more->begin()),
                       std::make_move_iterator(more->end()));
      }
      store::DueCandidate row = std::move(la.rows.front());
      la.rows.pop_front();
      auto key =
          limit_key_of(row.client_id, row.channel, row.endpoint_id, pass.channel_destination);
      int& left = budget_of(key);
      if (left <= 0) {
        pass.blocked = true;
        la.parked[key].push_back(std::move(row));
        ++la.parked_count;
        continue;  // stays due, unclaimed, for a later pass
      }
      --left;
      picked.push_back(std::move(row.id));
    }
    // Claimed now, or gone (cancelled, moved) since it was read: either way out of the
    // lookahead.
    pass.exhausted = !full && !pass.blocked && la.rows.empty() && la.parked_count == 0 &&
                     static_cast<int>(picked.size()) < pass.claim;
    auto claimed = r.claim_ids(picked, now);
    if (!claimed) {
      return claimed.error();
    }
    pass.claimed = std::move(*claimed);
    if (full && static_cast<int>(picked.size()) < pass.claim) {
      // Everything read ahead must wait: claim from the head as before the lookahead existed;
      // hold_back() puts those back a little later, so the queue moves and nothing starves.
      auto c = r.claim_due(now, pass.claim - static_cast<int>(picked.size()));
      if (!c) {
        return c.error();
      }
      pass.claimed.insert(pass.claimed.end(), std::make_move_iterator(c->begin()),
                          std::make_move_iterator(c->end()));
      la = Lookahead{};  // what it held may be claimed now
    }
    return {};
  }

  // A pass is worth its commit once a quarter of the attempts out (in flight or finished)
  // have finished, or as many slots are free: a commit has a fixed cost (the fsync, the pages
  // it rewrites), so under load each should carry many messages, while the transport keeps
  // at least 3/4 of what it can carry busy.
  int batch_threshold(int in_flight_now, size_t finished) const {
    int out = std::min(options.concurrency, in_flight_now + static_cast<int>(finished));
    return std::max(1, out / 4);
  }

  // Starts the next pass when it is worth a commit: returns false, and when to look again,
  // when not. `to_send` is what the last pass claimed and is not yet handed to the transport:
  // it counts against the concurrency.
  bool start_pass(const std::vector<Message>& to_send, bool stopping_now, SteadyTime& look_again) {
    rewrite_failed();
    auto steady = std::chrono::steady_clock::now();
    size_t pending = 0;
    int in_flight_now = 0;
    int reserved = 0;
    {
      std::lock_guard lock(mutex);
      pending = completions.size() + unsent.size() + held.size();
      in_flight_now = in_flight;
      reserved = static_cast<int>(fresh_reserved.size());
      if (pending > 0 && pending_since == SteadyTime{}) {
        pending_since = steady;
      }
    }
    int capacity = stopping_now ? 0
                                : options.concurrency - in_flight_now - reserved -
                                      static_cast<int>(to_send.size());
    int threshold = batch_threshold(in_flight_now, pending);
    // A read first: claiming takes the writer, and most wake-ups find nothing due yet.
    auto next = store.read<std::optional<Timestamp>>([](store::Repo& r) { return r.next_due(); });
    auto now = clock.now();
    bool due = next && next->has_value() && **next <= now;
    bool idle = in_flight_now == 0 && to_send.empty();
    bool stale = false;
    {
      std::lock_guard lock(mutex);
      stale = lookahead_stale;
    }
    // After a claim that left due messages waiting for their endpoint's slots, the next one
    // waits for finished attempts (they free the slots and are recorded in the same pass) or
    // for new messages: not a commit per freed slot.
    bool may_claim = idle || (capacity >= threshold && (!claim_short || stale));
    bool claim_now = capacity > 0 && due && may_claim;
    if (next) {
      // Ingest may hand new messages over only while nothing older is due and unclaimed.
      std::lock_guard lock(mutex);
      caught_up = !due;
    }
    bool write_now =
        pending > 0 && (stopping_now || idle || static_cast<int>(pending) >= threshold ||
                        steady - pending_since >= kFlushAfter || claim_now);
    if (!claim_now && !write_now) {
      look_again = steady + options.poll_interval;
      if (pending > 0) {
        look_again = std::min(look_again, pending_since + kFlushAfter);
      }
      if (may_claim && capacity >= threshold && next && next->has_value()) {
        look_again = std::min(
            look_again,
            steady + std::max(Millis{0}, std::chrono::duration_cast<Millis>(**next - now)));
      }
      if (!unrecorded.empty() || !undeferred.empty()) {
        look_again = std::min(look_again, steady + kRewriteDelay);
      }
      return false;
    }

    auto pass = std::make_shared<Pass>();
    std::vector<Completion> done;
    {
      std::lock_guard lock(mutex);
      while (!completions.empty()) {
        done.push_back(std::move(completions.front()));
        completions.pop_front();
      }
      pending_since = SteadyTime{};
    }
    std::vector<store::Store::WriteFn> jobs;
    done.insert(done.end(), std::make_move_iterator(unsent.begin()),
                std::make_move_iterator(unsent.end()));
    unsent.clear();
    if (!done.empty()) {
      pass->outcomes = outcomes_of(std::move(done));
      jobs.push_back(outcomes_job(pass->outcomes, now, pass->fallbacks));
    }
    pass->put_back = std::move(held);
    held.clear();
    if (!pass->put_back.empty()) {
      jobs.push_back(defer_job(pass->put_back));
    }
    if (due && !stopping_now) {
      pass->escalations = true;
      jobs.push_back(escalations_job(now, pass->fired));
    }
    if (capacity > 0 && due) {
      pass->claim = capacity;
      bool stale = false;
      {
        std::lock_guard lock(mutex);
        std::swap(stale, lookahead_stale);
        claiming = true;
      }
      if (stale || steady - lookahead.since >= options.poll_interval) {
        lookahead = Lookahead{};
        lookahead.since = steady;
      }
      pass->lookahead = std::move(lookahead);
      pass->budget = budgets(to_send);
      pass->endpoint_slots = options.destination_concurrency;
      pass->server_slots = options.server_concurrency;
      pass->channel_destination = channel_destination;
      jobs.push_back([p = pass.get(), now](store::Repo& r) -> Status {
        if (auto st = claim_ahead(r, *p, now); !st) {
          return st;
        }
        // The next update of a repeating message is stored with the claim, atomically.
        return schedule::schedule_repeats(r, p->claimed, now);
      });
    }
    if (jobs.empty()) {
      look_again = steady;
      return false;
    }
    writing = pass;
    store.write(std::move(jobs), [this, pass](std::vector<Status> results) {
      {
        std::lock_guard lock(mutex);
        pass->results = std::move(results);
        pass->committed = true;
      }
      cv.notify_all();
    });
    return true;
  }

  // After a pass's commit: logs, keeps what failed to be written again, and returns what it
  // claimed.
  std::vector<Message> finish_pass(Pass& pass) {
    size_t i = 0;
    if (!pass.outcomes.done.empty()) {
      after_outcomes(pass.results[i++], pass.outcomes, pass.fallbacks);
    }
    if (!pass.put_back.empty()) {
      after_defer(pass.results[i++], pass.put_back);
    }
    if (pass.escalations) {
      after_escalations(pass.results[i++], pass.fired);
    }
    if (pass.claim > 0) {
      claim_short = pass.blocked && static_cast<int>(pass.claimed.size()) < pass.claim;
      lookahead = std::move(pass.lookahead);
      bool ok = true;
      if (const Status& st = pass.results[i++]; !st) {
        // Not committed: nothing was claimed, whatever the write had read.
        spdlog::error("cannot claim due messages: {}", st.error().message);
        pass.claimed.clear();
        lookahead = Lookahead{};
        ok = false;
      }
      std::lock_guard lock(mutex);
      claiming = false;
      caught_up = ok && pass.exhausted;
    }
    return std::move(pass.claimed);
  }

  // The loop, pipelined: while one pass commits (the fsync), the messages the previous pass
  // claimed are rendered and handed to the transport, and the attempts that come back
  // meanwhile are recorded by a later pass. So the writer, the renderer and the transport
  // work at once.
  void run() {
    std::vector<Message> to_send;  // claimed by a committed pass, not yet sent
    std::vector<Message> handed;   // handed over by ingest, claimed in its commit
    while (true) {
      std::shared_ptr<Pass> committed;
      bool stopping_now = false;
      {
        std::lock_guard lock(mutex);
        if (writing && writing->committed) {
          committed = std::move(writing);
          writing.reset();
        }
        handed.swap(fresh);
        stopping_now = stopping;
        if (stopping && !writing && !committed && in_flight == 0 && completions.empty() &&
            unsent.empty() && held.empty() && to_send.empty() && handed.empty()) {
          return;
        }
      }
      // First what ingest handed over: its event's POST may be waiting for its webhook.
      if (!handed.empty()) {
        dispatch_claimed(handed);
        metrics.add("herald_handed_over_total", "", static_cast<double>(handed.size()));
        std::lock_guard lock(mutex);
        for (const auto& m : handed) {
          release_locked(m.id);
        }
        handed.clear();
      }
      if (committed) {
        auto claimed = finish_pass(*committed);
        to_send.insert(to_send.end(), std::make_move_iterator(claimed.begin()),
                       std::make_move_iterator(claimed.end()));
        std::lock_guard lock(mutex);
        to_send_count = static_cast<int>(to_send.size());
      }
      SteadyTime look_again{};
      bool started = !writing && start_pass(to_send, stopping_now, look_again);
      bool sent = !to_send.empty();
      if (sent) {
        dispatch_claimed(to_send);
        to_send.clear();
        std::lock_guard lock(mutex);
        to_send_count = 0;
      }

      std::unique_lock lock(mutex);
      if (writing) {
        // Nothing to do until the pass commits (the writer always reports back) or ingest
        // hands messages over.
        cv.wait(lock, [&] { return writing->committed || !fresh.empty(); });
        continue;
      }
      if (!fresh.empty()) {
        continue;
      }
      if (started || sent) {
        continue;
      }
      // Until new work, enough finished attempts for a pass, the last attempt back, or the
      // oldest finished attempt has waited kFlushAfter.
      while (!woken && !stopping &&
             static_cast<int>(completions.size()) <
                 batch_threshold(in_flight, completions.size()) &&
             !(in_flight == 0 && !completions.empty())) {
        auto deadline = look_again;
        if (!completions.empty()) {
          deadline = std::min(deadline, pending_since + kFlushAfter);
        }
        if (std::chrono::steady_clock::now() >= deadline) {
          break;
        }
        cv.wait_until(lock, deadline);
      }
      woken = false;
    }
  }
};

Dispatcher::Dispatcher(DispatcherOptions options, store::Store& store,
                       const render::Renderer& renderer, const channels::ChannelRegistry& channels,
                       transport::Transport& transport, const Clock& clock, Metrics& metrics,
                       std::function<double()> random01)
    : impl_(std::make_unique<Impl>(std::move(options), store, renderer, channels, transport, clock,
                                   metrics, std::move(random01))) {
  if (!impl_->random01) {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    auto mutex = std::make_shared<std::mutex>();
    impl_->random01 = [engine, mutex] {
      std::lock_guard lock(*mutex);
      return std::uniform_real_distribution<double>(0.0, 1.0)(*engine);
    };
  }
  metrics.describe("herald_attempts_total", "counter", "Delivery attempts by channel and outcome.");
  metrics.describe("herald_escalations_total", "counter",
                   "Escalations resolved: fired, acknowledged (in time) or cancelled.");
  metrics.describe("herald_breaker_open", "gauge",
                   "1 while a destination's circuit breaker holds its messages back.");
  metrics.describe("herald_breaker_state", "gauge",
                   "1 for the state each destination's circuit breaker is in (closed, open, "
                   "half_open), 0 for the others.");
  metrics.describe("herald_handed_over_total", "counter",
                   "Messages due at once that ingest claimed in its own commit and handed "
                   "straight to the dispatcher (no claim commit of their own).");
  metrics.describe("herald_deferred_total", "counter",
                   "Claimed messages put back unsent: concurrency, rate or breaker.");
  metrics.describe("herald_attempt_duration_seconds", "histogram",
                   "Time from handing a message to the transport to its answer.");
}

Dispatcher::~Dispatcher() {
  stop();
}

Status Dispatcher::start() {
  auto now = impl_->clock.now();
  Status st = impl_->store.write_sync([now](store::Repo& r) -> Status {
    auto n = r.requeue_interrupted(now);
    if (!n) {
      return n.error();
    }
    if (*n > 0) {
      spdlog::warn(
          "{} message(s) were in flight when herald last stopped: sending them again "
          "with the same ids",
          *n);
    }
    return {};
  });
  if (!st) {
    return st;
  }
  const auto& o = impl_->options;
  spdlog::info(
      "dispatcher: {} in flight, {} per endpoint, {} per SMS or email server; a destination "
      "failing {} times in a row pauses {} (up to {}); {} rate limit(s)",
      o.concurrency, o.destination_concurrency, o.server_concurrency, o.breaker.failure_threshold,
      format_duration(o.breaker.cool_down), format_duration(o.breaker.max_cool_down),
      o.rate_limits.size());
  impl_->thread = std::thread([this] { impl_->run(); });
  return {};
}

void Dispatcher::wake() {
  impl_->notify();
}

bool Dispatcher::reserve(const Message& message) {
  return impl_->reserve(message);
}

void Dispatcher::release(const std::string& message_id) {
  std::lock_guard lock(impl_->mutex);
  impl_->release_locked(message_id);
}

void Dispatcher::take(std::vector<Message> claimed) {
  if (claimed.empty()) {
    return;
  }
  {
    std::lock_guard lock(impl_->mutex);
    impl_->fresh.insert(impl_->fresh.end(), std::make_move_iterator(claimed.begin()),
                        std::make_move_iterator(claimed.end()));
    impl_->woken = true;
  }
  impl_->cv.notify_all();
}

void Dispatcher::stop(Millis drain) {
  if (!impl_->thread.joinable()) {
    return;
  }
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  // The loop exits once nothing is in flight; the transport's own stop completes stragglers.
  auto deadline = std::chrono::steady_clock::now() + drain;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(impl_->mutex);
      if (impl_->in_flight == 0) {
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  impl_->transport.stop();
  impl_->thread.join();
}

}  // namespace herald::dispatch
