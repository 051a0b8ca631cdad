-- PUT objects obj-0000000 .. obj-(N-1) once each (then cheap GETs of /), for populating a bucket.
-- Usage: wrk -t1 -c16 -d60s -s put_seq.lua http://HOST:PORT -- BUCKET N SIZE
local i = 0
function init(args)
  bucket = args[1] or "bench"
  n = tonumber(args[2] or "1000")
  body = string.rep("x", tonumber(args[3] or "0"))
end
function request()
  if i < n then
    local path = string.format("/%s/obj-%07d", bucket, i)
    i = i + 1
    return wrk.format("PUT", path, {["Content-Type"] = "application/octet-stream"}, body)
  end
  return wrk.format("HEAD", "/" .. bucket)
end
