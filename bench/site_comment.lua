-- site_comment.lua — wrk script: POST /api/v1/links/ID/comments {"text"} as
-- 64 different users (Bearer tokens), each request a new top-level comment
-- on one of COUNT links starting at FIRST (spread, as comments are over the
-- discussions of a site). Arguments after `--`: TOKENS_FILE RUN FIRST COUNT.
local thread_id = 0
function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

local tokens, run, first, count, n = nil, "0", 1, 1, 0
function init(args)
  local all = {}
  for line in io.lines(args[1]) do all[#all + 1] = line end
  run = args[2] or "0"
  first = tonumber(args[3] or "1")
  count = tonumber(args[4] or "1")
  tokens = {}
  local t = tid or 0
  for i = t + 1, #all, 2 do tokens[#tokens + 1] = "Bearer " .. all[i] end
end

function request()
  local u = n % #tokens
  n = n + 1
  local link = first + (n * 7 + (tid or 0)) % count
  local body = '{"text":"A benchmark comment, number ' .. n .. ' of wrk thread ' .. (tid or 0) .. ' in run ' .. run ..
               ', about as long as a short reply on a discussion site usually is."}'
  return wrk.format("POST", "/api/v1/links/" .. link .. "/comments",
                    { ["Authorization"] = tokens[u + 1], ["Content-Type"] = "application/json" }, body)
end
