-- wrk script for bench/alertmanager.py's burst: each thread posts QUOTA events (herald) or
-- alerts (alertmanager), one per request, each carrying the key PREFIX-THREAD-N (N = 1..QUOTA)
-- to the webhook; after its quota a connection only asks the health endpoint once a second
-- (wrk cannot stop at a count) until the script stops wrk with SIGINT once every webhook
-- arrived.
--   wrk -t T -c C -d 600s -s bench/burst_wrk.lua URL -- KIND PREFIX QUOTA TOKEN

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local kind, prefix, quota, n = "herald", "", 0, 0
local answered, bad = 0, 0
local health
local idle = false
-- wrk 4.1 calls request() once on the first thread's state to check it parses, and never
-- sends that one: give it the health request so that no key is lost.
local verifying = false

function init(args)
  kind = args[1]
  prefix = args[2] .. "-" .. tid .. "-"
  quota = tonumber(args[3])
  verifying = tid == 1
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if kind == "herald" then
    wrk.path = "/v1/events"
    wrk.headers["Authorization"] = "Bearer " .. args[4]
    health = wrk.format("GET", "/healthz", {}, nil)
  else
    wrk.path = "/api/v2/alerts"
    health = wrk.format("GET", "/-/healthy", {}, nil)
  end
end

function request()
  if verifying then
    verifying = false
    return health
  end
  if n >= quota then
    idle = true
    return health
  end
  n = n + 1
  local key = prefix .. n
  local body
  if kind == "herald" then
    body = '{"event_id":"' .. key .. '","client":"acme","incident":{"id":"' .. key ..
        '","title":"Bench","severity":"critical"},"phase":"containment","summary":"bench",' ..
        '"details":{"bench_key":"' .. key .. '"}}'
  else
    body = '[{"labels":{"alertname":"Bench","bench_key":"' .. key ..
        '","severity":"critical"},"annotations":{"summary":"bench"},"startsAt":"' ..
        os.date("!%Y-%m-%dT%H:%M:%SZ") .. '"}]'
  end
  return wrk.format(nil, nil, nil, body)
end

function delay()
  return idle and 1000 or 0
end

function response(status, headers, body)
  answered = answered + 1
  if status >= 300 then
    bad = bad + 1
    if bad <= 3 then
      io.write("BAD ", status, " ", body, "\n")
    end
  end
end

function done(summary, latency, requests)
  io.write("RESULT non2xx ", summary.errors.status, " socket_errors ",
           summary.errors.connect + summary.errors.read + summary.errors.write +
           summary.errors.timeout, "\n")
end
