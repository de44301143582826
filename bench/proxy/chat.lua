-- chat.lua - wrk script shared by bench/proxy/run.sh and bench/drift/proxy_ab.sh:
-- a small non-stream chat completion, and one RESULT line at the end.
--
-- BODIES=unique (the default, read from the environment) puts a counter in
-- every request's content, as real traffic would, so that nothing on any path
-- profits from seeing the same bytes twice (llmpin's drift writer remembers
-- the hash of a body it has just seen). BODIES=same sends one fixed body.
local hdrs = {["Content-Type"] = "application/json"}
local head = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello benchmark'
local tail = '"}],"max_tokens":16}'

if os.getenv("BODIES") == "same" then
    wrk.method = "POST"
    wrk.body = head .. tail
    wrk.headers["Content-Type"] = "application/json"
else
    local n = 0
    request = function()
        n = n + 1
        return wrk.format("POST", nil, hdrs, head .. " " .. n .. tail)
    end
end

done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("RESULT requests=%d non2xx=%d sockerr=%d rps=%.1f p50_us=%d p99_us=%d\n",
        summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
        summary.requests / (summary.duration / 1e6),
        latency:percentile(50), latency:percentile(99)))
end
