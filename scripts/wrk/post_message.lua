-- POST a message with the bearer token in PARLEY_TOKEN; every request has its own client_id
-- (PARLEY_RUN keeps runs apart, the thread number keeps wrk threads apart).
local token = os.getenv("PARLEY_TOKEN")
local run = os.getenv("PARLEY_RUN") or tostring(os.time())
local threads = {}
local counter = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"

function request()
  counter = counter + 1
  local body = string.format(
    '{"body":"bench message %d","client_id":"%s-%d-%d"}', counter, run, tid, counter)
  return wrk.format(nil, nil, nil, body)
end
