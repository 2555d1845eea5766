//! What a Valkey failure means for the log's caller ([`keel_log::ErrorKind`]): the store
//! is unreachable or busy for a while, it has no room, or something else went wrong;
//! and whether the refused call can have been applied ([`keel_log::Outcome`]).
//!
//! | what Valkey or the connection reports | kind | outcome |
//! | --- | --- | --- |
//! | connection refused (the server is down) | unavailable | not written |
//! | `LOADING`, `READONLY`, `MASTERDOWN`, `CLUSTERDOWN`, `TRYAGAIN`, `BUSY` | unavailable | not written |
//! | a timeout, a dropped or broken connection, other I/O errors | unavailable | unknown |
//! | `OOM` (at `maxmemory`), `MISCONF` (cannot persist) | no space | not written |
//! | any other reply mentioning "no space left" | no space | unknown |
//! | anything else | storage | unknown |
//!
//! Valkey checks `OOM`, `MISCONF`, `READONLY` and the others in the second group before
//! it runs a command, so a call refused with one of them changed nothing.

use keel_log::{LogError, Outcome, Partition};
use redis::{ErrorKind, RedisError, ServerErrorKind};

/// The typed error for `e`, met calling `store` (e.g. `valkey at redis://host:port`) on
/// `partition`.
pub(crate) fn classify(partition: Partition, store: &str, e: &RedisError) -> LogError {
    let store = store.to_owned();
    let reason = e.to_string();
    let unavailable = |outcome| LogError::Unavailable {
        partition,
        store: store.clone(),
        reason: reason.clone(),
        outcome,
    };
    let no_space = |outcome| LogError::NoSpace {
        partition,
        store: store.clone(),
        outcome,
    };
    if let Some(code) = e.code() {
        match code {
            "OOM" | "MISCONF" => return no_space(Outcome::NotWritten),
            "LOADING" | "READONLY" | "MASTERDOWN" | "CLUSTERDOWN" | "TRYAGAIN" | "BUSY" => {
                return unavailable(Outcome::NotWritten)
            }
            _ => {}
        }
    }
    match e.kind() {
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::TryAgain,
        ) => unavailable(Outcome::NotWritten),
        _ if e.is_connection_refusal() => unavailable(Outcome::NotWritten),
        ErrorKind::Io | ErrorKind::ClusterConnectionNotFound => unavailable(Outcome::Unknown),
        _ if e.is_timeout() || e.is_connection_dropped() => unavailable(Outcome::Unknown),
        _ if reason.to_ascii_lowercase().contains("no space left") => no_space(Outcome::Unknown),
        _ => LogError::storage(partition, format!("{store}: {reason}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_log::ErrorKind as Kind;

    fn check(e: RedisError, kind: Kind, outcome: Outcome) {
        let err = classify(3, "valkey at redis://127.0.0.1:6379", &e);
        assert_eq!(
            (err.kind(), err.outcome()),
            (kind, outcome),
            "{e} became {err}"
        );
        assert!(
            err.to_string().contains("valkey at redis://127.0.0.1:6379"),
            "{err}"
        );
    }

    fn server(code: &str, detail: &str) -> RedisError {
        redis::make_extension_error(code.into(), Some(detail.into()))
    }

    #[test]
    fn refusals_before_running_wrote_nothing() {
        check(
            server("OOM", "command not allowed when used memory > 'maxmemory'."),
            Kind::NoSpace,
            Outcome::NotWritten,
        );
        check(
            server(
                "MISCONF",
                "Errors writing to the AOF file: No space left on device",
            ),
            Kind::NoSpace,
            Outcome::NotWritten,
        );
        check(
            server("BUSY", "Valkey is busy running a script."),
            Kind::Unavailable,
            Outcome::NotWritten,
        );
        for kind in [
            ServerErrorKind::BusyLoading,
            ServerErrorKind::ReadOnly,
            ServerErrorKind::MasterDown,
            ServerErrorKind::ClusterDown,
            ServerErrorKind::TryAgain,
        ] {
            check(
                (ErrorKind::Server(kind), "refused").into(),
                Kind::Unavailable,
                Outcome::NotWritten,
            );
        }
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        check(refused.into(), Kind::Unavailable, Outcome::NotWritten);
    }

    #[test]
    fn broken_connections_leave_the_outcome_unknown() {
        for kind in [
            std::io::ErrorKind::TimedOut,
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::UnexpectedEof,
        ] {
            let e = std::io::Error::from(kind);
            check(e.into(), Kind::Unavailable, Outcome::Unknown);
        }
        check(
            server("ERR", "write failed: No space left on device"),
            Kind::NoSpace,
            Outcome::Unknown,
        );
        check(
            server("ERR", "Function not found"),
            Kind::Storage,
            Outcome::Unknown,
        );
    }
}
