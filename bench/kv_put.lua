-- kv_put.lua — wrk script: PUT /api/v1/kv/<thread>-<n> with a 100-byte value,
-- every request a new key (so every request is a new committed entry).
local counter = 0
local thread_id = 0
local value = string.rep("v", 100)

function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

function request()
  counter = counter + 1
  return wrk.format("PUT", "/api/v1/kv/w" .. tid .. "-" .. counter, nil, value)
end
