-- wrk script for bench/ingest_wrk.py: POST /v1/events with a unique event id per request.
--   wrk -t T -c C -d 20s --latency -s bench/ingest_wrk.lua http://127.0.0.1:PORT -- RUN TOKEN
-- RUN makes the ids unique across runs against one database; TOKEN is an ingest token.
-- Each event is its own incident of client "acme" entering containment.

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local run, n, prefix = "run", 0, ""

function init(args)
  run = args[1] or "run"
  local token = args[2] or "bench-token"
  prefix = run .. "-" .. tid .. "-"
  wrk.method = "POST"
  wrk.path = "/v1/events"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
  n = n + 1
  local id = prefix .. n
  local body = '{"event_id":"' .. id .. '","client":"acme","incident":{"id":"INC-' .. id ..
      '","title":"wrk","severity":"high"},"phase":"containment","summary":"wrk"}'
  return wrk.format(nil, nil, nil, body)
end

-- Machine-readable figures after wrk's own report: latency percentiles in microseconds.
function done(summary, latency, requests)
  io.write("\nRESULT requests ", summary.requests, " duration_us ", summary.duration,
           " non2xx ", summary.errors.status, " socket_errors ",
           summary.errors.connect + summary.errors.read + summary.errors.write +
           summary.errors.timeout, "\n")
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write("RESULT p", p, " ", latency:percentile(p), "\n")
  end
  io.write("RESULT max ", latency.max, "\n")
end
