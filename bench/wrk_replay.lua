-- Replays pre-signed requests from per-thread files (one request per line:
-- signature \t timestamp \t body). Each request carries unique events; a thread that runs
-- out of lines wraps around (then its events are duplicates, and the script reports it).
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  path = args[1] .. "/requests-" .. id .. ".txt"
  file = assert(io.open(path, "r"))
  wrapped = 0
end

local function next_line()
  local line = file:read("*l")
  if line == nil then
    file:seek("set", 0)
    wrapped = wrapped + 1
    line = file:read("*l")
  end
  return line
end

function request()
  local line = next_line()
  local sig, ts, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["X-Twilio-Email-Event-Webhook-Signature"] = sig
  headers["X-Twilio-Email-Event-Webhook-Timestamp"] = ts
  return wrk.format("POST", wrk.path, headers, body .. "\r\n")
end

function done(summary, latency, requests)
  local wraps = 0
  for _, thread in ipairs(threads) do
    wraps = wraps + (thread:get("wrapped") or 0)
  end
  io.write(string.format(
    "BENCH_JSON {\"requests\": %d, \"duration_us\": %d, \"p50_us\": %d, \"p99_us\": %d, " ..
    "\"errors_status\": %d, \"errors_connect\": %d, \"errors_timeout\": %d, \"wraps\": %d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect, summary.errors.timeout, wraps))
end
