-- etcd_put.lua — wrk script: etcd v3 puts through its HTTP/JSON gateway
-- (POST /v3/kv/put {"key","value"}, both base64), every request a new key,
-- the value VALUE_BYTES long (the size of the linkraft command it stands
-- for). Arguments after `--`: VALUE_BYTES RUN.
local thread_id = 0
function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(s)  -- padding-free input is not assumed; three bytes at a time
  local out, floor = {}, math.floor
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1, c2 = floor(v / 262144) % 64, floor(v / 4096) % 64
    local c3, c4 = floor(v / 64) % 64, v % 64
    out[#out + 1] = b64chars:sub(c1 + 1, c1 + 1) .. b64chars:sub(c2 + 1, c2 + 1) ..
                    (b and b64chars:sub(c3 + 1, c3 + 1) or "=") .. (c and b64chars:sub(c4 + 1, c4 + 1) or "=")
  end
  return table.concat(out)
end

local value, run, n = "", "0", 0
function init(args)
  value = b64(string.rep("v", tonumber(args[1]) or 64))
  run = args[2] or "0"
end

function request()
  n = n + 1
  local key = b64(string.format("bench/r%s/t%d/%010d", run, tid or 0, n))
  return wrk.format("POST", "/v3/kv/put", { ["Content-Type"] = "application/json" },
                    '{"key":"' .. key .. '","value":"' .. value .. '"}')
end
