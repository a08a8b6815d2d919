-- wrk script of scripts/bench.sh: one script for every HTTP phase, so that the
-- ceiling (/healthz) and the reservation phases pay the same client-side costs
-- (a prebuilt request per call, a response() callback that reads the body).
--
--   wrk -t T -c C -d D -s seckill.lua URL -- MODE T [TOKENS ACTIVITY ITEM]
--
-- MODE get:      GET the URL's path (the /healthz ceiling).
-- MODE reserve:  POST /api/v1/seckill for ITEM of ACTIVITY, one buyer per request,
-- MODE soldout:  the same requests, against an item that is sold out.
-- TOKENS is a file of buyer JWTs, one per line (core/seckill-mint-token). Thread k
-- of T takes lines k, k+T, k+2T… so no two threads share a buyer, and each thread
-- rotates over its buyers request by request.
--
-- done() prints one line "BENCH key=value …" that bench.sh parses: throughput,
-- latency percentiles (µs), wrk's transport errors, and the answers by class; a
-- 409 is split by its error code, which only the body tells.

local counters = { "s200", "s409_limit", "s409_sold", "s409_other", "s4xx", "s5xx", "sother" }
local threads = {}

-- Main state: number the threads so that each takes its own share of buyers.
function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

local reqs = {}
local nreq = 0
local next_req = 0

local function fail(msg)
   io.stderr:write("seckill.lua: " .. msg .. "\n")
   os.exit(2)
end

function init(args)
   local mode, nthreads = args[1], tonumber(args[2])
   if nthreads == nil or nthreads < 1 then
      fail("usage: -- MODE NTHREADS [TOKENS ACTIVITY ITEM]")
   end
   for _, name in ipairs(counters) do
      _G[name] = 0
   end
   if mode == "get" then
      reqs[1] = wrk.format("GET", wrk.path)
   elseif mode == "reserve" or mode == "soldout" then
      local path, activity, item = args[3], tonumber(args[4]), tonumber(args[5])
      if path == nil or activity == nil or item == nil then
         fail(mode .. " needs TOKENS ACTIVITY ITEM")
      end
      local body = string.format('{"activity_id":%d,"item_id":%d}', activity, item)
      local f = io.open(path, "r")
      if f == nil then
         fail("cannot open " .. path)
      end
      local line_no = 0
      for token in f:lines() do
         if (line_no % nthreads) + 1 == tid then
            reqs[#reqs + 1] = wrk.format("POST", "/api/v1/seckill", {
               ["Authorization"] = "Bearer " .. token,
               ["Content-Type"] = "application/json",
            }, body)
         end
         line_no = line_no + 1
      end
      f:close()
   else
      fail("MODE must be get, reserve or soldout, not " .. tostring(mode))
   end
   nreq = #reqs
   if nreq == 0 then
      fail("thread " .. tostring(tid) .. " has no buyer: fewer tokens than threads?")
   end
   -- Threads start at different places so that the first requests differ too.
   next_req = (tid * 7919) % nreq
end

function request()
   next_req = next_req + 1
   if next_req > nreq then
      next_req = 1
   end
   return reqs[next_req]
end

function response(status, headers, body)
   if status == 200 then
      s200 = s200 + 1
   elseif status == 409 then
      if body and body:find('"limit_reached"', 1, true) then
         s409_limit = s409_limit + 1
      elseif body and body:find('"sold_out"', 1, true) then
         s409_sold = s409_sold + 1
      else
         s409_other = s409_other + 1
      end
   elseif status >= 500 then
      s5xx = s5xx + 1
   elseif status >= 400 then
      s4xx = s4xx + 1
   else
      sother = sother + 1
   end
end

function done(summary, latency, requests)
   local total = {}
   for _, name in ipairs(counters) do
      total[name] = 0
      for _, thread in ipairs(threads) do
         total[name] = total[name] + (thread:get(name) or 0)
      end
   end
   local e = summary.errors
   local secs = summary.duration / 1e6
   local out = {
      string.format("requests=%d", summary.requests),
      string.format("duration_s=%.3f", secs),
      string.format("rps=%.1f", summary.requests / secs),
      string.format("p50_us=%d", latency:percentile(50)),
      string.format("p90_us=%d", latency:percentile(90)),
      string.format("p99_us=%d", latency:percentile(99)),
      string.format("max_us=%d", latency.max),
      string.format("connect=%d", e.connect),
      string.format("read=%d", e.read),
      string.format("write=%d", e.write),
      string.format("timeout=%d", e.timeout),
   }
   for _, name in ipairs(counters) do
      out[#out + 1] = string.format("%s=%d", name, total[name])
   end
   io.write("BENCH " .. table.concat(out, " ") .. "\n")
end
