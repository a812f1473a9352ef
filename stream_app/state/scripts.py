"""The Lua script that applies a shopper's events, each with its id, atomically."""

from __future__ import annotations

import hashlib

#: Applies the events of one shopper (all keys under one hash tag, see
#: ``state.keys``) in order; one call per shopper and batch, so a burst of one
#: invoice's lines costs one script call, not one per line.
#: KEYS: per event, its seen, basket, basket order, closed, history and history
#: token keys.
#: ARGV: seen ttl (ms), basket ttl (ms), then per event: type, timestamp (unix
#: seconds, text), has customer (0/1), return history (0/1), the history token
#: the caller holds (empty if none), return basket (0/1), number of lines, then
#: that many code, units pairs.
#: Returns one {status, basket, history, token} per event, where basket is the
#: basket as flat code/units pairs in first-added order when asked for, else its
#: number of distinct codes (the caller derives it from an earlier reply), and,
#: when the history is asked for, token names its current content and history
#: is the flat HGETALL, or the integer 0 when the caller's token is that token
#: already (an integer, not nil: a Lua false arrives as nil in RESP2 but as a
#: boolean in RESP3).
#: A checkout gives the history a new token, and so does the first request for
#: a history without one: the event's seen key and the server's clock, so that
#: an event applied twice (replayed after Redis lost its write) never names two
#: contents with one token.
APPLY_EVENTS = """
local seen_ttl, basket_ttl = ARGV[1], ARGV[2]
-- Redis 5+ replicates a script's effects, not the script, so TIME is allowed
local clock = redis.call('TIME')
local stamp = ':' .. clock[1] .. '.' .. clock[2]
-- HMGET takes at most this many fields at once (Lua's unpack limit is higher)
local CHUNK = 1000
local replies = {}
local arg = 3

for e = 0, #KEYS / 6 - 1 do
  local seen, basket, order = KEYS[6 * e + 1], KEYS[6 * e + 2], KEYS[6 * e + 3]
  local closed, history, token = KEYS[6 * e + 4], KEYS[6 * e + 5], KEYS[6 * e + 6]
  local kind, ts, has_customer = ARGV[arg], ARGV[arg + 1], ARGV[arg + 2]
  local want_history, held_token = ARGV[arg + 3], ARGV[arg + 4]
  local want_basket = ARGV[arg + 5]
  local first_line = arg + 7
  local last_line = arg + 6 + 2 * tonumber(ARGV[arg + 6])
  arg = last_line + 1
  local status = 'applied'

  if not redis.call('SET', seen, '1', 'NX', 'PX', seen_ttl) then
    status = 'duplicate'
  elseif redis.call('EXISTS', closed) == 1 then
    -- the basket was checked out already: the checkout is final
    status = 'late'
  elseif kind == 'item_added' then
    -- order lists the codes as first added, so the basket keeps its add order
    for i = first_line, last_line, 2 do
      local units = tonumber(ARGV[i + 1])
      if redis.call('HINCRBY', basket, ARGV[i], units) == units then
        redis.call('RPUSH', order, ARGV[i])
      end
    end
    redis.call('PEXPIRE', basket, basket_ttl)
    redis.call('PEXPIRE', order, basket_ttl)
  elseif kind == 'item_removed' then
    for i = first_line, last_line, 2 do
      if redis.call('HINCRBY', basket, ARGV[i], -tonumber(ARGV[i + 1])) <= 0 then
        redis.call('HDEL', basket, ARGV[i])
        redis.call('LREM', order, 1, ARGV[i])
      end
    end
    redis.call('PEXPIRE', basket, basket_ttl)
    redis.call('PEXPIRE', order, basket_ttl)
  else
    -- checkout: the event's lines if it lists any, else the stored basket;
    -- every item is bought at the checkout time, so all items of one order
    -- share one time (the order-recency factors count orders by distinct
    -- times), as offline history stamps every line of an invoice
    local lines = {}
    if last_line >= first_line then
      for i = first_line, last_line, 2 do
        lines[ARGV[i]] = (lines[ARGV[i]] or 0) + tonumber(ARGV[i + 1])
      end
    else
      local stored = redis.call('HGETALL', basket)
      for i = 1, #stored, 2 do
        lines[stored[i]] = tonumber(stored[i + 1])
      end
    end
    if has_customer == '1' then
      for code, units in pairs(lines) do
        local orders, quantity, last = 1, units, ts
        local old = redis.call('HGET', history, code)
        if old then
          local o, q, l = string.match(old, '^(%S+) (%S+) (%S+)$')
          orders = tonumber(o) + 1
          quantity = tonumber(q) + units
          if tonumber(l) > tonumber(last) then last = l end
        end
        redis.call('HSET', history, code,
          string.format('%d %d %s', orders, quantity, last))
      end
      redis.call('SET', token, seen .. stamp)
    end
    redis.call('DEL', basket, order)
    redis.call('SET', closed, ts, 'PX', seen_ttl)
  end

  local reply = {status, redis.call('HLEN', basket)}
  if want_basket == '1' then
    -- the basket in the order its items were first added: O(items), no sort
    local codes = redis.call('LRANGE', order, 0, -1)
    local ordered = {}
    for start = 1, #codes, CHUNK do
      local stop = math.min(start + CHUNK - 1, #codes)
      local units = redis.call('HMGET', basket, unpack(codes, start, stop))
      for j = 1, stop - start + 1 do
        if units[j] then
          ordered[#ordered + 1] = codes[start + j - 1]
          ordered[#ordered + 1] = units[j]
        end
      end
    end
    reply[2] = ordered
  end
  if want_history == '1' then
    local current = redis.call('GET', token)
    if not current then
      current = seen .. stamp
      redis.call('SET', token, current)
    end
    reply[3] = 0
    if current ~= held_token then
      reply[3] = redis.call('HGETALL', history)
    end
    reply[4] = current
  end
  replies[e + 1] = reply
end
return replies
"""

#: SHA1 the server knows the script by after SCRIPT LOAD (EVALSHA needs it).
APPLY_EVENTS_SHA = hashlib.sha1(APPLY_EVENTS.encode()).hexdigest()
