//! Log lines as JSON objects, one per line, for `keel worker --log-format json`: the
//! worker's own events and everything the worker SDK logs through `tracing` come out
//! in the same shape (`time`, `level`, `target`, `message`, then the event's fields),
//! so a log collector reads the whole stream.

use crate::clock::{now_ms, rfc3339};
use crate::json::document_line;
use serde_json::{json, Map, Value};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Collects an event's fields as JSON values.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), json!(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), json!(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), json!(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), json!(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), json!(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), json!(value));
    }
}

/// A `tracing` event as one JSON line.
pub struct JsonEvents;

impl<S, N> FormatEvent<S, N> for JsonEvents
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut object = Map::new();
        object.insert("time".into(), json!(rfc3339(now_ms())));
        object.insert("level".into(), json!(meta.level().as_str().to_lowercase()));
        object.insert("target".into(), json!(meta.target()));
        let mut fields = Map::new();
        event.record(&mut Fields(&mut fields));
        object.extend(fields);
        writeln!(writer, "{}", document_line(&Value::Object(object)))
    }
}

/// [`crate::connect::init_tracing`] writing JSON lines.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,keel=info,keel_grpc=info,keel_coordinator=info")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .event_format(JsonEvents)
        .try_init();
}
