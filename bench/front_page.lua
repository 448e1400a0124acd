-- front_page.lua — wrk script: GET / with optional X-Consistency
-- (argument after `--`: stale|session|linearizable; none = no header).
function init(args)
  if args[1] and args[1] ~= "" then wrk.headers["X-Consistency"] = args[1] end
end
