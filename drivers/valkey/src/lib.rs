//! keel-valkey
