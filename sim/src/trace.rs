//! The run's trace. Every released coordinator record and every fault feeds a running
//! xxh3 digest (through postcard, so the digest covers every field without formatting
//! anything); when recording, each also becomes a line: JSONL for tools, and a compact
//! one-line-per-event form for golden snapshots.

use crate::coordinator::Record;
use crate::render;
use keel_engine::{Input, Time};
use postcard::ser_flavors::Flavor;
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

/// One line of the trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceLine {
    /// Simulated time.
    pub t: Time,
    /// `cmd`, `effect` or `fault`.
    pub kind: &'static str,
    /// Who sent the command or whom the effect or fault concerns.
    pub who: String,
    /// The command or effect, in words.
    pub what: String,
    /// Heartbeats and work requests: in the JSONL trace, left out of goldens.
    #[serde(skip)]
    pub routine: bool,
}

pub(crate) struct Trace {
    hasher: Xxh3,
    pub lines: Option<Vec<TraceLine>>,
}

/// Feeds postcard's output straight into the hasher.
struct HashFlavor<'a>(&'a mut Xxh3);

impl Flavor for HashFlavor<'_> {
    type Output = ();
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.update(&[data]);
        Ok(())
    }
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.update(data);
        Ok(())
    }
    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

impl Trace {
    pub(crate) fn new(record: bool) -> Trace {
        Trace {
            hasher: Xxh3::new(),
            lines: record.then(Vec::new),
        }
    }

    fn feed<T: Serialize + ?Sized>(&mut self, value: &T) {
        // Serializing engine types into a hasher cannot fail.
        let _ = postcard::serialize_with_flavor(value, HashFlavor(&mut self.hasher));
    }

    pub(crate) fn record(&mut self, rec: &Record, who: &str) {
        self.hasher.update(&rec.at.to_le_bytes());
        self.hasher.update(who.as_bytes());
        self.feed(&rec.input);
        self.feed(&rec.outputs);
        if let Some(lines) = &mut self.lines {
            record_lines(lines, rec, who);
        }
    }

    pub(crate) fn fault(&mut self, at: Time, who: &str, what: String) {
        self.hasher.update(&at.to_le_bytes());
        self.hasher.update(who.as_bytes());
        self.hasher.update(what.as_bytes());
        if let Some(lines) = &mut self.lines {
            lines.push(TraceLine {
                t: at,
                kind: "fault",
                who: who.to_string(),
                what,
                routine: false,
            });
        }
    }

    pub(crate) fn digest(&self) -> u64 {
        self.hasher.digest()
    }
}

/// The trace lines of one released record: its command and reply (unless it is a
/// tick), then one line per effect.
fn record_lines(lines: &mut Vec<TraceLine>, rec: &Record, who: &str) {
    if !matches!(rec.input, Input::Tick) {
        let (command, routine) = render::command(&rec.input);
        let reply = rec.outputs.reply.as_ref().map(render::reply);
        let routine = routine && matches!(rec.outputs.reply, Some(Ok(_)));
        lines.push(TraceLine {
            t: rec.at,
            kind: "cmd",
            who: who.to_string(),
            what: format!("{command} -> {}", reply.unwrap_or_default()),
            routine,
        });
    }
    for e in &rec.outputs.effects {
        let (who, what) = render::effect(e);
        lines.push(TraceLine {
            t: rec.at,
            kind: "effect",
            who,
            what,
            routine: false,
        });
    }
}

/// The JSONL form: one JSON object per line, in virtual-time order.
pub fn jsonl(lines: &[TraceLine]) -> String {
    let mut out = String::new();
    for l in lines {
        out.push_str(&serde_json::to_string(l).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// The compact form used by goldens: routine traffic left out, one event per line.
pub fn compact(lines: &[TraceLine]) -> String {
    let mut out = String::new();
    for l in lines.iter().filter(|l| !l.routine) {
        let mark = match l.kind {
            "cmd" => ' ',
            "effect" => '+',
            _ => '!',
        };
        out.push_str(&format!("{:>7} {mark} {:<8} {}\n", l.t, l.who, l.what));
    }
    out
}
