-- search.lua — wrk script: GET PATH?q=QUERY, the queries of a file (one a
-- line, as bench/search_db.c writes them) in turn, each wrk thread from its
-- own place in the list. Arguments after `--`: QUERIES_FILE [PATH]
-- (PATH: /api/v1/search, the default, or /search, the page).
local thread_id = 0
function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

local function encode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local paths, n = {}, 0
function init(args)
  local path = args[2] or "/api/v1/search"
  for line in io.lines(args[1]) do paths[#paths + 1] = path .. "?q=" .. encode(line) end
  n = ((tid or 0) * 997) % #paths
end

function request()
  n = n % #paths + 1
  return wrk.format("GET", paths[n])
end
