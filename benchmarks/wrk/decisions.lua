-- wrk script of service_bench.py: POSTs a rotation of pre-rendered JSON bodies and prints
-- one JSON line (prefixed "JSON ") with the request count, latency percentiles, the count
-- of answers that were not 2xx and the first of them (status and start of the body).
--
--   wrk -t T -c C -d 10s -s decisions.lua https://host:port -- BODIES.lua PATH [BEARER_KEY]
--
-- BODIES.lua returns a Lua table of strings; PATH is the URL path; each thread starts at its
-- own offset in the rotation.

local threads = {}
local bodies, path, headers
local counter = 0
non2xx = 0
sample = ""

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  bodies = dofile(args[1])
  path = args[2]
  headers = { ["Content-Type"] = "application/json" }
  if args[3] ~= nil and args[3] ~= "" then
    headers["Authorization"] = "Bearer " .. args[3]
  end
  counter = (thread_index or 0) * 499
end

function request()
  counter = counter + 1
  return wrk.format("POST", path, headers, bodies[(counter % #bodies) + 1])
end

function response(status, response_headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if sample == "" then
      sample = status .. " " .. string.sub(body, 1, 200)
    end
  end
end

function done(summary, latency, requests)
  local bad, first = 0, ""
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("non2xx") or 0)
    if first == "" then
      first = thread:get("sample") or ""
    end
  end
  local errors = summary.errors
  io.write(string.format(
    'JSON {"requests": %d, "duration_us": %d, "non2xx": %d, "socket_errors": %d, '
      .. '"p50_us": %d, "p99_us": %d, "mean_us": %.1f, "sample": "%s"}\n',
    summary.requests, summary.duration, bad,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, (first:gsub('[%c"\\]', " "))))
end
