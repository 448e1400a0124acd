-- site_like.lua — wrk script: PUT /api/v1/links/ID/like as 64 different
-- users (Bearer tokens). Arguments after `--`: TOKENS_FILE FIRST_LINK NLINKS.
-- wrk thread t takes every other token (t, t+2, ...); its n-th request is
-- user n mod U liking link FIRST_LINK + (n div U) mod NLINKS, so a run of
-- fewer than U*NLINKS requests per thread never repeats a (user, link) pair:
-- every request is a new like, a new committed entry.
local thread_id = 0
function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

local tokens, first, nlinks, n = nil, 1, 1, 0
function init(args)
  local all = {}
  for line in io.lines(args[1]) do all[#all + 1] = line end
  first, nlinks = tonumber(args[2]), tonumber(args[3])
  tokens = {}
  -- tid is set by setup() before init() runs in the thread.
  local t = tid or 0
  for i = t + 1, #all, 2 do tokens[#tokens + 1] = "Bearer " .. all[i] end
end

function request()
  local u = n % #tokens
  local link = first + (math.floor(n / #tokens) % nlinks)
  n = n + 1
  return wrk.format("PUT", "/api/v1/links/" .. link .. "/like",
                    { ["Authorization"] = tokens[u + 1], ["Content-Length"] = "0" }, "")
end
