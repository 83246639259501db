-- Two token buckets (tenant, then key) checked and charged atomically: ``cost`` tokens from
-- both, or nothing from either (a batch of decisions is all or none).
-- KEYS[1], KEYS[2]: bucket hashes. ARGV: rate1, burst1, rate2, burst2 (tokens/s, tokens), cost.
-- Time comes from the Redis server so every API process shares one clock.
-- Returns {allowed, limiting_bucket, remaining, reset_ms, retry_after_ms}:
--   allowed 1/0; limiting_bucket 1 (tenant) or 2 (key): the bucket with fewer tokens left,
--   or the one that refused; remaining whole tokens in it; reset_ms until it is full again;
--   retry_after_ms until ``cost`` tokens are available (0 when allowed; -1 never).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function load(key, rate, burst)
  local v = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens, ts = tonumber(v[1]), tonumber(v[2])
  if tokens == nil then
    return burst
  end
  local elapsed = math.max(0, now - ts)
  return math.min(burst, tokens + elapsed * rate / 1000)
end

local function reset_ms(tokens, rate, burst)
  if rate <= 0 then return -1 end
  return math.ceil((burst - tokens) * 1000 / rate)
end

local function retry_ms(tokens, rate, burst, cost)
  if rate <= 0 or cost > burst then return -1 end
  return math.ceil((cost - tokens) * 1000 / rate)
end

local rates = {tonumber(ARGV[1]), tonumber(ARGV[3])}
local bursts = {tonumber(ARGV[2]), tonumber(ARGV[4])}
local cost = tonumber(ARGV[5])
local tokens = {load(KEYS[1], rates[1], bursts[1]), load(KEYS[2], rates[2], bursts[2])}

for i = 1, 2 do
  if tokens[i] < cost then
    return {0, i, math.floor(tokens[i]), reset_ms(tokens[i], rates[i], bursts[i]),
            retry_ms(tokens[i], rates[i], bursts[i], cost)}
  end
end

local tightest = 1
for i = 1, 2 do
  tokens[i] = tokens[i] - cost
  local ttl = 3600000
  if rates[i] > 0 then
    ttl = math.max(1000, math.ceil(bursts[i] * 1000 / rates[i]) + 1000)
  end
  redis.call('HSET', KEYS[i], 'tokens', tostring(tokens[i]), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[i], ttl)
  if tokens[i] < tokens[tightest] then tightest = i end
end
return {1, tightest, math.floor(tokens[tightest]), reset_ms(tokens[tightest], rates[tightest], bursts[tightest]), 0}
