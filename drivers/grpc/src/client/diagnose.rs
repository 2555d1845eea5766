//! Why an address could not be used, in words a user can act on. tonic reports most
//! failures as `transport error` or `h2 protocol error`; the cause is found in the
//! error's source chain, and when that only says the connection broke, by a probe: a
//! fresh connection that sends the HTTP/2 preface and looks at the first bytes back
//! (an HTTP/1 status line, a TLS alert, an HTTP/2 SETTINGS frame, or nothing).

use super::target::Target;
use super::ClientOptions;
use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;
use tonic::{Code, Status};

/// Why one address was not used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Nothing listens there.
    Refused,
    /// No connection within the connect timeout.
    TimedOut(Duration),
    /// The connection was accepted but nothing answered within the timeout.
    NoAnswer(Duration),
    /// Something answered that is not a gRPC server.
    NotGrpc(String),
    /// One side speaks TLS and the other does not.
    TlsMismatch(String),
    /// The TLS handshake failed (certificate, name, protocol).
    Tls(String),
    /// The host name did not resolve.
    Resolve(String),
    /// The coordinator answers but does not lead its partition (a standby or a deposed
    /// leader).
    NotLeader {
        /// The epoch it reported.
        epoch: u64,
    },
    /// The coordinator answered with this status.
    Status {
        /// The status code.
        code: Code,
        /// The status message.
        message: String,
    },
    /// The connection failed otherwise.
    Other(String),
}

impl Cause {
    /// Whether this address may work later without a change of configuration.
    pub fn retryable(&self) -> bool {
        match self {
            Cause::Refused
            | Cause::TimedOut(_)
            | Cause::NoAnswer(_)
            | Cause::NotLeader { .. }
            | Cause::Other(_) => true,
            Cause::Status { code, .. } => *code == Code::Unavailable,
            Cause::NotGrpc(_) | Cause::TlsMismatch(_) | Cause::Tls(_) | Cause::Resolve(_) => false,
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Refused => f.write_str("connection refused (nothing listens there)"),
            Cause::TimedOut(t) => write!(f, "timed out: no connection within {} ms", t.as_millis()),
            Cause::NoAnswer(t) => write!(
                f,
                "timed out: the connection was accepted but nothing answered within {} ms",
                t.as_millis()
            ),
            Cause::NotGrpc(why) => write!(f, "not a gRPC server: {why}"),
            Cause::TlsMismatch(why) => write!(f, "TLS mismatch: {why}"),
            Cause::Tls(why) => write!(f, "TLS handshake failed: {why}"),
            Cause::Resolve(why) => write!(f, "cannot resolve the host: {why}"),
            Cause::NotLeader { epoch } => write!(
                f,
                "not the leader (it held epoch {epoch}); another coordinator leads or none does yet"
            ),
            Cause::Status { code, message } => write!(f, "{code:?}: {message}"),
            Cause::Other(why) => write!(f, "the connection failed: {why}"),
        }
    }
}

/// One address and why it was not used.
#[derive(Clone, Debug)]
pub struct AddressError {
    /// The address tried.
    pub address: String,
    /// Why it was not used.
    pub cause: Cause,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.address, self.cause)
    }
}

/// What an error says about its address: a cause, or only that the connection broke,
/// which a probe of the address explains.
pub(crate) enum Finding {
    Cause(Cause),
    Probe(String),
}

impl Finding {
    /// From a failed connection attempt.
    pub(super) fn of_error(error: &(dyn StdError + 'static), options: &ClientOptions) -> Finding {
        match from_chain(error, options) {
            Some(cause) => Finding::Cause(cause),
            None => Finding::Probe(innermost(error)),
        }
    }

    /// From the status of a first call: one the coordinator sent, or one standing for a
    /// broken connection.
    pub(super) fn of_status(status: &Status, options: &ClientOptions) -> Finding {
        match status.source() {
            None => Finding::Cause(Cause::Status {
                code: status.code(),
                message: status.message().to_string(),
            }),
            Some(source) => Finding::of_error(source, options),
        }
    }

    pub(super) async fn cause(self, target: &Target, options: &ClientOptions) -> Cause {
        match self {
            Finding::Cause(cause) => cause,
            Finding::Probe(detail) => probe_or(target, options, detail).await,
        }
    }
}

/// What the source chain says plainly: refused, timed out.
fn from_chain(error: &(dyn StdError + 'static), options: &ClientOptions) -> Option<Cause> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return Some(Cause::Refused),
                std::io::ErrorKind::TimedOut => {
                    return Some(Cause::TimedOut(options.connect_timeout))
                }
                _ => {}
            }
        }
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("timed out") || text.contains("timeout expired") {
            return Some(Cause::TimedOut(options.connect_timeout));
        }
        current = e.source();
    }
    None
}

/// The most specific message of an error chain.
fn innermost(error: &(dyn StdError + 'static)) -> String {
    let mut last = error;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// What the server at `target` says to a bare HTTP/2 preface, read as a cause; `detail`
/// when the probe finds nothing more specific.
#[cfg(not(madsim))]
async fn probe_or(target: &Target, options: &ClientOptions, detail: String) -> Cause {
    match probe(target.addr, options.connect_timeout).await {
        Probe::Refused => Cause::Refused,
        Probe::Silent => Cause::NoAnswer(options.connect_timeout),
        Probe::Http1(line) => Cause::NotGrpc(format!("it answered HTTP/1: {line:?}")),
        Probe::TlsAlert if !target.tls => {
            Cause::TlsMismatch("the server expects TLS; use an https:// URL (with --tls-ca)".into())
        }
        Probe::TlsAlert => Cause::Tls(detail),
        Probe::Http2 if target.tls => {
            Cause::TlsMismatch("the server does not use TLS; use an http:// URL".into())
        }
        Probe::Closed if !target.tls => Cause::NotGrpc(
            "it closed the connection without speaking HTTP/2 (a TLS server? try https://)".into(),
        ),
        Probe::Other(bytes) => Cause::NotGrpc(format!("it answered {bytes:?}")),
        Probe::Http2 | Probe::Closed => Cause::Other(detail),
    }
}

/// The simulated network has no stray servers to tell apart.
#[cfg(madsim)]
async fn probe_or(_target: &Target, _options: &ClientOptions, detail: String) -> Cause {
    Cause::Other(detail)
}

#[cfg(not(madsim))]
#[derive(Debug, PartialEq, Eq)]
enum Probe {
    Refused,
    Silent,
    Closed,
    Http1(String),
    TlsAlert,
    Http2,
    Other(String),
}

#[cfg(not(madsim))]
async fn probe(addr: std::net::SocketAddr, within: Duration) -> Probe {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";
    let talk = async {
        let mut stream = match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Probe::Refused,
            Err(e) => return Probe::Other(e.to_string()),
        };
        if stream.write_all(PREFACE).await.is_err() {
            return Probe::Closed;
        }
        let mut buf = [0u8; 64];
        let mut n = 0;
        while n < 9 {
            match stream.read(&mut buf[n..]).await {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
        }
        classify(&buf[..n])
    };
    tokio::time::timeout(within, talk)
        .await
        .unwrap_or(Probe::Silent)
}

#[cfg(not(madsim))]
fn classify(bytes: &[u8]) -> Probe {
    if bytes.is_empty() {
        Probe::Closed
    } else if bytes.starts_with(b"HTTP/") {
        let text = String::from_utf8_lossy(bytes);
        Probe::Http1(text.lines().next().unwrap_or_default().to_string())
    } else if bytes.len() >= 2 && bytes[0] == 0x15 && bytes[1] == 0x03 {
        Probe::TlsAlert
    } else if bytes.len() >= 9 && bytes[3] == 0x04 {
        Probe::Http2
    } else {
        Probe::Other(String::from_utf8_lossy(bytes).into_owned())
    }
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_tell_the_kind_of_server() {
        assert_eq!(classify(b""), Probe::Closed);
        assert_eq!(
            classify(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
            Probe::Http1("HTTP/1.1 400 Bad Request".into())
        );
        assert_eq!(classify(&[21, 3, 3, 0, 2, 2, 50]), Probe::TlsAlert);
        assert_eq!(classify(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3]), Probe::Http2);
        assert!(matches!(classify(b"SSH-2.0-OpenSSH"), Probe::Other(_)));
    }

    #[test]
    fn causes_say_whether_waiting_can_help() {
        assert!(Cause::Refused.retryable());
        assert!(Cause::NotLeader { epoch: 3 }.retryable());
        assert!(!Cause::TlsMismatch("x".into()).retryable());
        assert!(!Cause::NotGrpc("x".into()).retryable());
        let unavailable = Cause::Status {
            code: Code::Unavailable,
            message: "m".into(),
        };
        assert!(unavailable.retryable());
    }
}
