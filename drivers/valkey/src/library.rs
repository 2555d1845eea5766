//! The Valkey function library that makes every write a single atomic check-and-write
//! on one partition's keys (all in one hash slot).
//!
//! Each function takes the library version the client expects as its first argument
//! and refuses to run under another, so a server still holding an older library (after
//! an upgrade, or a failover to a replica that missed the new one) is reloaded by the
//! client instead of silently running old code. A server that lost its functions (a
//! restart without persistence) answers "Function not found" and is reloaded too.
//!
//! Each append is one list element (a batch frame, [`keel_log::batch_frame`]; a few
//! when it is larger than `ValkeyOptions::record_bytes`) and one member of a sorted set
//! of the offsets the elements start at, so an append of a thousand entries costs
//! Valkey one element instead of a thousand, and a read finds the element holding an
//! offset in O(log n). A log written by library 1 (one element
//! per entry) is read as it is and indexed on the first write of this library; a
//! coordinator running library 1 refuses a log written by this one as corrupt
//! ("unknown format version 3") instead of misreading it.
//!
//! Replies are arrays whose first element is a status:
//! 0 ok, 1 fenced (current epoch), 2 end mismatch (actual end), 3 snapshot out of
//! range (first, end), 4 trimmed (first), 5 lease held (holder).

/// Bumped whenever [`SOURCE`] changes.
pub const VERSION: &str = "2";

/// Error code a function answers with when its version differs from the caller's.
pub(crate) const VERSION_ERROR: &str = "KEELVERSION";

pub(crate) const OK: i64 = 0;
pub(crate) const FENCED: i64 = 1;
pub(crate) const END_MISMATCH: i64 = 2;
pub(crate) const SNAPSHOT_OUT_OF_RANGE: i64 = 3;
pub(crate) const TRIMMED: i64 = 4;
pub(crate) const LEASE_HELD: i64 = 5;

/// The `keel` Lua function library, loaded with `FUNCTION LOAD REPLACE` on connect.
pub const SOURCE: &str = r#"#!lua name=keel
local VERSION = '2'

-- Keys, in this order for every function:
-- 1 epoch, 2 lease, 3 log (list of records: one batch frame per append; a log written
-- by library 1 holds one entry frame per record), 4 first (the first live offset),
-- 5 snapshot, 6 starts (sorted set: each record's first offset, scored by it),
-- 7 end (the offset after the last entry).

local function wrong_version(args)
  if args[1] ~= VERSION then
    return redis.error_reply('KEELVERSION library ' .. VERSION .. ', caller wants ' .. tostring(args[1]))
  end
  return nil
end

local function int(n) return string.format('%d', n) end

-- The current epoch if `epoch` is not it. Epoch 0 is never granted.
local function fenced(keys, epoch)
  local current = tonumber(redis.call('GET', keys[1]) or '0')
  if current == 0 or current ~= tonumber(epoch) then return current end
  return nil
end

-- Library 1 kept no end: its records were single entries from `first` on.
local function bounds(keys)
  local first = tonumber(redis.call('GET', keys[4]) or '0')
  local stored_end = redis.call('GET', keys[7])
  if stored_end then return first, tonumber(stored_end) end
  return first, first + redis.call('LLEN', keys[3])
end

-- Indexes a log written by library 1 (one entry per record, the first at `first`)
-- the way this library keeps records, once, before its first write here.
local function upgrade(keys)
  if redis.call('EXISTS', keys[7]) == 1 then return end
  local first, last = bounds(keys)
  local offset = first
  while offset < last do
    local stop = math.min(offset + 500, last)
    local scored = {}
    for o = offset, stop - 1 do
      scored[#scored + 1] = int(o)
      scored[#scored + 1] = int(o)
    end
    redis.call('ZADD', keys[6], unpack(scored))
    offset = stop
  end
  redis.call('SET', keys[7], int(last))
end

-- The index of the record holding `offset`, which must be live.
local function record_of(keys, first, offset)
  if redis.call('EXISTS', keys[7]) == 0 then return offset - first end
  return redis.call('ZCOUNT', keys[6], '-inf', int(offset)) - 1
end

-- args: version, holder, ttl_ms
redis.register_function('keel_acquire', function(keys, args)
  local bad = wrong_version(args) if bad then return bad end
  local holder = redis.call('GET', keys[2])
  if holder and holder ~= args[2] then return {5, holder} end
  local epoch = redis.call('INCR', keys[1])
  redis.call('SET', keys[2], args[2], 'PX', args[3])
  return {0, epoch}
end)

-- args: version, holder, epoch, ttl_ms
redis.register_function('keel_renew', function(keys, args)
  local bad = wrong_version(args) if bad then return bad end
  local current = fenced(keys, args[3])
  if current then return {1, current} end
  redis.call('SET', keys[2], args[2], 'PX', args[4])
  return {0}
end)

-- args: version, epoch
redis.register_function('keel_step_down', function(keys, args)
  local bad = wrong_version(args) if bad then return bad end
  local current = fenced(keys, args[2])
  if current then return {1, current} end
  redis.call('INCR', keys[1])
  redis.call('DEL', keys[2])
  return {0}
end)

-- args: version, epoch, start, then for each record of the append: its entry count
-- and its batch frame
redis.register_function('keel_append', function(keys, args)
  local bad = wrong_version(args) if bad then return bad end
  local current = fenced(keys, args[2])
  if current then return {1, current} end
  upgrade(keys)
  local _, last = bounds(keys)
  if last ~= tonumber(args[3]) then return {2, last} end
  local offset = last
  for i = 4, #args - 1, 2 do
    local count = tonumber(args[i])
    if count > 0 then
      redis.call('RPUSH', keys[3], args[i + 1])
      redis.call('ZADD', keys[6], int(offset), int(offset))
      offset = offset + count
    end
  end
  if offset ~= last then redis.call('SET', keys[7], int(offset)) end
  return {0, offset}
end)

-- args: version, epoch, offset, frame. Drops the records whose every entry is before
-- `offset`; the record holding it stays whole, and `first` hides its older entries.
redis.register_function('keel_snapshot', function(keys, args)
  local bad = wrong_version(args) if bad then return bad end
  local current = fenced(keys, args[2])
  if current then return {1, current} end
  upgrade(keys)
  local first, last = bounds(keys)
  local offset = tonumber(args[3])
  if offset < first or offset > last then return {3, first, last} end
  if offset > first then
    local drop = redis.call('LLEN', keys[3])
    if offset < last then drop = record_of(keys, first, offset) end
    if drop > 0 then
      redis.call('LTRIM', keys[3], drop, -1)
      redis.call('ZREMRANGEBYRANK', keys[6], 0, drop - 1)
    end
    redis.call('SET', keys[4], args[3])
  end
  redis.call('SET', keys[5], args[4])
  return {0}
end)

-- args: version, from, max. Answers the records holding entries from..from+max-1: the
-- first may begin before `from`, the last may run past what was asked.
redis.register_function{function_name='keel_read', flags={'no-writes'}, callback=function(keys, args)
  local bad = wrong_version(args) if bad then return bad end
  local first, last = bounds(keys)
  local from = tonumber(args[2])
  if from < first then return {4, first} end
  local max = tonumber(args[3])
  if from >= last or max < 1 then return {0, {}} end
  local to = math.min(from + max, last) - 1
  local i = record_of(keys, first, from)
  local j = record_of(keys, first, to)
  return {0, redis.call('LRANGE', keys[3], i, j)}
end}

-- args: version
redis.register_function{function_name='keel_bounds', flags={'no-writes'}, callback=function(keys, args)
  local bad = wrong_version(args) if bad then return bad end
  local first, last = bounds(keys)
  return {0, first, last}
end}
"#;

#[cfg(test)]
mod tests {
    #[test]
    fn source_declares_the_version_constant() {
        assert!(super::SOURCE.contains(&format!("local VERSION = '{}'", super::VERSION)));
        assert!(super::SOURCE.contains(super::VERSION_ERROR));
    }
}
