-- Voxflow: GET /v1/workflows/{id} with a random id from the file named by BENCH_IDS (one id a
-- line), authenticated with the API key in BENCH_API_KEY.
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
end

local ids = {}
local headers = {}

function init(args)
  for line in io.lines(os.getenv("BENCH_IDS")) do
    ids[#ids + 1] = line
  end
  headers["Authorization"] = "Bearer " .. os.getenv("BENCH_API_KEY")
  math.randomseed(os.time() * 100 + (thread_id or 0))
end

request = function()
  return wrk.format("GET", "/v1/workflows/" .. ids[math.random(#ids)], headers)
end
