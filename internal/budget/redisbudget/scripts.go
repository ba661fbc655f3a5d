package redisbudget

import "github.com/redis/go-redis/v9"

// Arithmetic in the scripts. Counters are only ever changed with HINCRBY,
// whose int64 arithmetic is exact over the whole Micros range; increments
// are passed as the decimal strings Go produced, never through a Lua number.
// Lua numbers are doubles, used only to compare settled + reserved + amount
// with the effective limit. That verdict is exact as long as the effective
// limit is below 2^53 micro-dollars (about $9.007 billion), which the Go
// side and the scripts enforce: every operand is a non-negative integer,
// conversion and addition round monotonically, and each partial sum is
// exact while it is ≤ 2^53, so a sum that exceeds a limit < 2^53 can never
// round down to it.
//
// Key layout (the braces make {prefix} a Redis Cluster hash tag, so one
// script can touch every budget of a request):
//
//	{prefix}:b:{name}:{window}      hash: s settled, r reserved, t top-ups,
//	                                h:{id} amount held by reservation id
//	{prefix}:b:{name}:{window}:exp  sorted set: reservation id by expiry (ms)
//	{prefix}:r:{id}                 hash: a amount, e expiry ms, w windows,
//	                                so soft budgets over, st held|settled|released

// sweepLua returns expired holds of one window to its budget.
const sweepLua = `
local function sweep(win, exp, now)
  local ids = redis.call('ZRANGEBYSCORE', exp, '-inf', now)
  for _, id in ipairs(ids) do
    local f = 'h:' .. id
    local a = redis.call('HGET', win, f)
    if a then
      if a ~= '0' then redis.call('HINCRBY', win, 'r', '-' .. a) end
      redis.call('HDEL', win, f)
    end
  end
  if #ids > 0 then redis.call('ZREMRANGEBYSCORE', exp, '-inf', now) end
end
`

// dropLua removes reservation id's hold from one window, if still there.
const dropLua = `
local function drop(win, exp, id)
  local f = 'h:' .. id
  local a = redis.call('HGET', win, f)
  if a then
    if a ~= '0' then redis.call('HINCRBY', win, 'r', '-' .. a) end
    redis.call('HDEL', win, f)
    redis.call('ZREM', exp, id)
  end
end
`

// reserveScript: KEYS[1] reservation record, then per budget i window hash
// KEYS[2i] and expiry set KEYS[2i+1]. ARGV: id, amount, now ms, expires ms,
// record TTL ms, window ids, then per budget: limit, hard (1|0), window key
// TTL ms (0 = never), name.
var reserveScript = redis.NewScript(sweepLua + `
local id, amount, now, expires = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local rec = KEYS[1]
if redis.call('EXISTS', rec) == 1 then
  local v = redis.call('HMGET', rec, 'a', 'e', 'w', 'so')
  return {'dup', v[1] or '0', v[2] or '0', v[3] or '', v[4] or ''}
end
local n = (#KEYS - 1) / 2
local amt = tonumber(amount)
local over = {}
for i = 1, n do
  local win, exp = KEYS[2*i], KEYS[2*i+1]
  local base = 6 + (i-1)*4
  sweep(win, exp, now)
  local v = redis.call('HMGET', win, 's', 'r', 't')
  local s, r, t = v[1] or '0', v[2] or '0', v[3] or '0'
  local limit = tonumber(ARGV[base+1]) + tonumber(t)
  if limit >= 9007199254740992 then
    return redis.error_reply('budget ' .. ARGV[base+4] .. ': effective limit beyond 2^53 micro-dollars')
  end
  local used = tonumber(s) + tonumber(r) + amt
  if used > limit then
    if ARGV[base+2] == '1' then return {'exceeded', tostring(i), s, r, t} end
    over[i] = true
  end
end
local soft = {}
for i = 1, n do
  local win, exp = KEYS[2*i], KEYS[2*i+1]
  local base = 6 + (i-1)*4
  if amount ~= '0' then redis.call('HINCRBY', win, 'r', amount) end
  redis.call('HSET', win, 'h:' .. id, amount)
  redis.call('ZADD', exp, expires, id)
  if ARGV[base+3] ~= '0' then
    redis.call('PEXPIRE', win, ARGV[base+3])
    redis.call('PEXPIRE', exp, ARGV[base+3])
  end
  if over[i] then soft[#soft+1] = ARGV[base+4] end
end
local so = table.concat(soft, '\n')
redis.call('HSET', rec, 'a', amount, 'e', expires, 'w', ARGV[6], 'so', so, 'st', 'held')
redis.call('PEXPIRE', rec, ARGV[5])
return {'ok', so}
`)

// settleScript: KEYS as reserveScript. ARGV: id, actual, record TTL ms, then
// per budget the window key TTL ms (0 = never).
var settleScript = redis.NewScript(dropLua + `
local id, actual = ARGV[1], ARGV[2]
local rec = KEYS[1]
if redis.call('HGET', rec, 'st') == 'settled' then return 0 end
local n = (#KEYS - 1) / 2
for i = 1, n do
  local win, exp = KEYS[2*i], KEYS[2*i+1]
  drop(win, exp, id)
  if actual ~= '0' then redis.call('HINCRBY', win, 's', actual) end
  if ARGV[3+i] ~= '0' then redis.call('PEXPIRE', win, ARGV[3+i]) end
end
redis.call('HSET', rec, 'st', 'settled')
redis.call('PEXPIRE', rec, ARGV[3])
return 1
`)

// releaseScript: KEYS as reserveScript. ARGV: id, record TTL ms.
var releaseScript = redis.NewScript(dropLua + `
local id = ARGV[1]
local rec = KEYS[1]
local st = redis.call('HGET', rec, 'st')
if st == 'settled' or st == 'released' then return 0 end
local n = (#KEYS - 1) / 2
for i = 1, n do drop(KEYS[2*i], KEYS[2*i+1], id) end
redis.call('HSET', rec, 'st', 'released')
redis.call('PEXPIRE', rec, ARGV[2])
return 1
`)

// spentScript: KEYS window hash, expiry set. ARGV: now ms.
var spentScript = redis.NewScript(sweepLua + `
sweep(KEYS[1], KEYS[2], ARGV[1])
local v = redis.call('HMGET', KEYS[1], 's', 'r')
return {v[1] or '0', v[2] or '0'}
`)

// topUpScript: KEYS window hash of a Total budget. ARGV: amount, limit.
var topUpScript = redis.NewScript(`
local t = redis.call('HGET', KEYS[1], 't') or '0'
if tonumber(ARGV[2]) + tonumber(t) + tonumber(ARGV[1]) >= 9007199254740992 then
  return redis.error_reply('top-up would put the limit beyond 2^53 micro-dollars')
end
return redis.call('HINCRBY', KEYS[1], 't', ARGV[1])
`)
