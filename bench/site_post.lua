-- site_post.lua — wrk script: POST /api/v1/links {"title","url"} as 64
-- different users (Bearer tokens), every request a new URL (so every request
-- is a new link, a new committed entry). Arguments after `--`: TOKENS_FILE RUN
-- (RUN keeps URLs of different runs apart).
local thread_id = 0
function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

local tokens, run, n = nil, "0", 0
function init(args)
  local all = {}
  for line in io.lines(args[1]) do all[#all + 1] = line end
  run = args[2] or "0"
  tokens = {}
  local t = tid or 0
  for i = t + 1, #all, 2 do tokens[#tokens + 1] = "Bearer " .. all[i] end
end

function request()
  local u = n % #tokens
  n = n + 1
  local body = '{"title":"Benchmark link ' .. n .. ' of a wrk thread","url":"https://bench.example.com/r' ..
               run .. "/t" .. tid .. "/" .. n .. '"}'
  return wrk.format("POST", "/api/v1/links",
                    { ["Authorization"] = tokens[u + 1], ["Content-Type"] = "application/json" }, body)
end
