-- wrk script for bench/run.sh: every request asks for the MTA-STS policy
-- (RFC 8461 §3.2) of a random hosted domain, Host mta-sts.dK.test with K
-- uniform in 1..N. The TLS server name (SNI) stays the URL's host: wrk sets
-- it once per run.
--
-- Arguments (after --): N, then "close" to send Connection: close so that
-- wrk opens a new TCP connection and does a new TLS handshake per request.

-- The URL's host (mta-sts.d1.test, the SNI) is not in DNS: connect to
-- 127.0.0.1 instead, on the URL's port.
function wrk.resolve(host, service)
  wrk.addrs = wrk.lookup("127.0.0.1", service)
end

local n = 100000
local close = false
local path = "/.well-known/mta-sts.txt"

function setup(thread)
  thread:set("seed", math.random(1, 2147483647))
end

function init(args)
  n = tonumber(args[1]) or n
  close = args[2] == "close"
  math.randomseed(seed or os.time())
end

function request()
  local h = { Host = "mta-sts.d" .. math.random(1, n) .. ".test" }
  if close then
    h["Connection"] = "close"
  end
  return wrk.format("GET", path, h)
end
