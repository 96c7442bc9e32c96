-- Replays pre-built raw HTTP requests (bench/traffic.py), one file per wrk thread, each
-- record "<length>\n<raw request>". Every request carries unique events; a thread that runs
-- out of records wraps around (its events are then duplicates, and the script reports it).
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  path = args[1] .. "/requests-" .. id .. ".txt"
  file = assert(io.open(path, "rb"))
  wrapped = 0
end

function request()
  local size = file:read("*n")
  if size == nil then
    file:seek("set", 0)
    wrapped = wrapped + 1
    size = file:read("*n")
  end
  file:read(1) -- the newline after the length
  return file:read(size)
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
