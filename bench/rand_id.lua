-- The naive baseline: GET /w/{id} with a random id of the 1,000 seeded rows
-- (shared/baselines/control_plane/rand_id.lua, with a seed per wrk thread).
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
end

function init(args)
  math.randomseed(os.time() * 100 + (thread_id or 0))
end

request = function()
  return wrk.format("GET", "/w/" .. math.random(1, 1000))
end
