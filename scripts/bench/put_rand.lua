-- PUT SIZE-byte objects under fresh keys for as long as wrk runs.
-- Usage: wrk -t1 -c32 -d10s -s put_rand.lua http://HOST:PORT -- BUCKET SIZE
local i = 0
function init(args)
  bucket = args[1] or "bench"
  body = string.rep("x", tonumber(args[2] or "4096"))
  prefix = tostring(math.random(1, 1000000000))
end
function request()
  i = i + 1
  return wrk.format("PUT", string.format("/%s/p-%s-%d", bucket, prefix, i), {["Content-Type"] = "application/octet-stream"}, body)
end
