//! A task's `stream_from` entries as written: a task id (a `fifo` edge), or a table
//! `{ task = "id", policy = "fifo" | "bounded" | "newest" | "broadcast", capacity = N,
//! on_full = "block" | "drop_oldest" | "error" }`, where `capacity` (and, optionally,
//! `on_full`, default `block`) belong to a `bounded` edge only.

use keel_engine::{EdgePolicy, OnFull, StreamEdge};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// One streaming edge into the task, read from either spelling.
#[derive(Debug)]
pub(crate) struct EdgeFile(pub StreamEdge);

impl<'de> Deserialize<'de> for EdgeFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EdgeVisitor)
    }
}

struct EdgeVisitor;

const EXPECTED: &str = "a task id, or a table { task = \"id\", policy = \"fifo\" | \"bounded\" | \"newest\" | \"broadcast\", capacity = N, on_full = \"block\" | \"drop_oldest\" | \"error\" }";
const FIELDS: &[&str] = &["task", "policy", "capacity", "on_full"];

fn on_full<E: de::Error>(name: &str) -> Result<OnFull, E> {
    match name {
        "block" => Ok(OnFull::Block),
        "drop_oldest" => Ok(OnFull::DropOldest),
        "error" => Ok(OnFull::Error),
        other => Err(E::custom(format!(
            "unknown on_full {other:?}: expected \"block\", \"drop_oldest\" or \"error\""
        ))),
    }
}

fn policy<E: de::Error>(
    name: &str,
    capacity: Option<u32>,
    full: Option<OnFull>,
) -> Result<EdgePolicy, E> {
    let simple = match name {
        "fifo" => EdgePolicy::Fifo,
        "newest" => EdgePolicy::Newest,
        "broadcast" => EdgePolicy::Broadcast,
        "bounded" => {
            let capacity = capacity.ok_or_else(|| {
                E::custom("a bounded edge needs capacity = N, the frames it holds")
            })?;
            if capacity == 0 {
                return Err(E::custom("capacity must be at least 1 frame"));
            }
            return Ok(EdgePolicy::Bounded {
                capacity,
                on_full: full.unwrap_or_default(),
            });
        }
        other => {
            return Err(E::custom(format!(
                "unknown edge policy {other:?}: expected \"fifo\", \"bounded\", \"newest\" or \"broadcast\""
            )))
        }
    };
    if capacity.is_some() || full.is_some() {
        return Err(E::custom(format!(
            "capacity and on_full belong to a bounded edge, not a {name} one"
        )));
    }
    Ok(simple)
}

impl<'de> Visitor<'de> for EdgeVisitor {
    type Value = EdgeFile;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_str<E: de::Error>(self, task: &str) -> Result<EdgeFile, E> {
        Ok(EdgeFile(StreamEdge {
            from: task.to_string(),
            policy: EdgePolicy::Fifo,
        }))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EdgeFile, A::Error> {
        let (mut task, mut name, mut capacity, mut full) = (None, None, None, None);
        while let Some(key) = map.next_key::<String>()? {
            let seen = match key.as_str() {
                "task" => task.replace(map.next_value::<String>()?).is_some(),
                "policy" => name.replace(map.next_value::<String>()?).is_some(),
                "capacity" => capacity.replace(map.next_value::<u32>()?).is_some(),
                "on_full" => full
                    .replace(on_full(&map.next_value::<String>()?)?)
                    .is_some(),
                other => return Err(de::Error::unknown_field(other, FIELDS)),
            };
            if seen {
                return Err(de::Error::custom(format!("{key} is given twice")));
            }
        }
        let from = task.ok_or_else(|| de::Error::missing_field("task"))?;
        let policy = policy(name.as_deref().unwrap_or("fifo"), capacity, full)?;
        Ok(EdgeFile(StreamEdge { from, policy }))
    }
}
