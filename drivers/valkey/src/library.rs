//! The Valkey function library that makes every write a single atomic check-and-write
//! on one partition's keys (all in one hash slot).
//!
//! Each function takes the library version the client expects as its first argument
//! and refuses to run under another, so a server still holding an older library (after
//! an upgrade, or a failover to a replica that missed the new one) is reloaded by the
//! client instead of silently running old code. A server that lost its functions (a
//! restart without persistence) answers "Function not found" and is reloaded too.
//!
//! Replies are arrays whose first element is a status:
//! 0 ok, 1 fenced (current epoch), 2 end mismatch (actual end), 3 snapshot out of
//! range (first, end), 4 trimmed (first), 5 lease held (holder).

/// Bumped whenever [`SOURCE`] changes.
pub const VERSION: &str = "1";

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
local VERSION = '1'

-- Keys, in this order for every function that writes:
-- 1 epoch, 2 lease, 3 log (list of framed entries), 4 first offset, 5 snapshot.

local function wrong_version(args)
  if args[1] ~= VERSION then
    return redis.error_reply('KEELVERSION library ' .. VERSION .. ', caller wants ' .. tostring(args[1]))
  end
  return nil
end

-- The current epoch if `epoch` is not it. Epoch 0 is never granted.
local function fenced(keys, epoch)
  local current = tonumber(redis.call('GET', keys[1]) or '0')
  if current == 0 or current ~= tonumber(epoch) then return current end
  return nil
end

local function bounds(keys)
  local first = tonumber(redis.call('GET', keys[4]) or '0')
  return first, first + redis.call('LLEN', keys[3])
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

-- args: version, epoch, start, frame...
redis.register_function('keel_append', function(keys, args)
  local bad = wrong_version(args) if bad then return bad end
  local current = fenced(keys, args[2])
  if current then return {1, current} end
  local _, last = bounds(keys)
  if last ~= tonumber(args[3]) then return {2, last} end
  local n = #args
  local i = 4
  while i <= n do
    local j = math.min(i + 999, n)
    redis.call('RPUSH', keys[3], unpack(args, i, j))
    i = j + 1
  end
  return {0, last + n - 3}
end)

-- args: version, epoch, offset, frame
redis.register_function('keel_snapshot', function(keys, args)
  local bad = wrong_version(args) if bad then return bad end
  local current = fenced(keys, args[2])
  if current then return {1, current} end
  local first, last = bounds(keys)
  local offset = tonumber(args[3])
  if offset < first or offset > last then return {3, first, last} end
  if offset > first then
    redis.call('LTRIM', keys[3], offset - first, -1)
    redis.call('SET', keys[4], args[3])
  end
  redis.call('SET', keys[5], args[4])
  return {0}
end)

-- args: version, from, max
redis.register_function{function_name='keel_read', flags={'no-writes'}, callback=function(keys, args)
  local bad = wrong_version(args) if bad then return bad end
  local first = bounds(keys)
  local from = tonumber(args[2])
  if from < first then return {4, first} end
  local index = from - first
  return {0, redis.call('LRANGE', keys[3], index, index + tonumber(args[3]) - 1)}
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
