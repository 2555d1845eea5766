//! A task's `stream` setting as written: `"durable"` (the default: every frame kept),
//! `"newest"` (only the latest frame kept), or `{ keep = N }` (the last N frames).

use keel_engine::StreamMode;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// The engine's stream mode, read from either spelling.
#[derive(Debug)]
pub(crate) struct StreamFile(pub StreamMode);

impl<'de> Deserialize<'de> for StreamFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StreamVisitor)
    }
}

struct StreamVisitor;

const EXPECTED: &str = "\"durable\", \"newest\", or a table { keep = N } for the last N frames";

impl<'de> Visitor<'de> for StreamVisitor {
    type Value = StreamFile;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_str<E: de::Error>(self, mode: &str) -> Result<StreamFile, E> {
        match mode {
            "durable" => Ok(StreamFile(StreamMode::Durable)),
            "newest" => Ok(StreamFile(StreamMode::Newest)),
            other => Err(E::custom(format!(
                "unknown stream mode {other:?}: expected {EXPECTED}"
            ))),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StreamFile, A::Error> {
        let mut keep = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "keep" if keep.is_none() => keep = Some(map.next_value::<u32>()?),
                "keep" => return Err(de::Error::duplicate_field("keep")),
                other => return Err(de::Error::unknown_field(other, &["keep"])),
            }
        }
        match keep.ok_or_else(|| de::Error::missing_field("keep"))? {
            0 => Err(de::Error::custom("keep must be at least 1 frame")),
            frames => Ok(StreamFile(StreamMode::Bounded { frames })),
        }
    }
}
