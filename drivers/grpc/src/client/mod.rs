//! Connecting to a coordinator: one address or several, optional TLS with a CA file,
//! and the bearer token sent with every call.
//!
//! Given several addresses (`http://a:7070,http://b:7070`, or a host name resolving to
//! several), [`ClientOptions::connect`] asks each at once whether it leads
//! (`JobService.Hello`) and talks to the one that does, so clients and workers follow a
//! takeover by a standby on another address. [`Client`] retries a call on the next
//! leader when the coordinator it used stops answering (see its documentation for why
//! each call is safe to repeat). A failed connection names the address and the cause:
//! connection refused, timed out, not a gRPC server, TLS mismatch.

mod diagnose;
mod failover;
mod schedules;
mod streams;
mod target;

use diagnose::Finding;
pub use diagnose::{AddressError, Cause};
pub use failover::{CallError, Client, Submitted};
pub use schedules::ScheduleChange;

use crate::proto::job_service_client::JobServiceClient;
use crate::proto::worker_service_client::WorkerServiceClient;
use crate::proto::{HelloRequest, HelloResponse};
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use target::Target;
use tonic::metadata::{Ascii, MetadataValue};
#[cfg(not(madsim))]
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// How long connecting to one address, and its first answer, may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a [`Client`] keeps looking for a leader among several addresses by default.
pub const DEFAULT_FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest message a client accepts when `max_message_bytes` is unset: above any
/// coordinator's default, so a coordinator's full frames always decode.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Where and how to reach a coordinator.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// `http://host:port`, or `https://host:port` for TLS; several separated by commas
    /// (`http://a:7070,http://b:7070`). A host name resolving to several addresses
    /// stands for all of them.
    pub url: String,
    /// Bearer token sent with every call, when the coordinator requires one.
    pub token: Option<String>,
    /// PEM CA certificate that signed the coordinator's certificate; without it the
    /// system's roots are not consulted, so TLS needs it.
    pub ca: Option<PathBuf>,
    /// The name the certificate is checked against, when it differs from the URL host.
    pub domain: Option<String>,
    /// Largest message accepted or sent; unset means [`DEFAULT_MAX_MESSAGE_BYTES`].
    pub max_message_bytes: Option<usize>,
    /// How long connecting to one address may take, and then its first answer.
    pub connect_timeout: Duration,
    /// How long a [`Client`] given several addresses keeps trying them (with backoff)
    /// before a call fails. With one address, calls are not retried.
    pub failover_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            url: String::new(),
            token: None,
            ca: None,
            domain: None,
            max_message_bytes: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            failover_timeout: DEFAULT_FAILOVER_TIMEOUT,
        }
    }
}

/// Why no connection was made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL list does not parse.
    #[error("invalid coordinator URL {url:?}: {why}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// A file the options name (the CA certificate) cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The token has characters an HTTP header cannot carry.
    #[error("the token is not a valid header value")]
    Token,
    /// No address answered as the leader; each one's reason.
    #[error("{0}")]
    Unreachable(Unreachable),
}

impl ClientError {
    /// Whether trying again later may succeed (a coordinator starting, restarting or
    /// taking over); a refused TLS setup or a wrong kind of server will not.
    pub fn retryable(&self) -> bool {
        match self {
            ClientError::Unreachable(u) => u.tried.iter().any(|a| a.cause.retryable()),
            _ => false,
        }
    }
}

/// Why no coordinator could be used, address by address.
#[derive(Debug)]
pub struct Unreachable {
    /// Each address tried and why it failed, in the order tried.
    pub tried: Vec<AddressError>,
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.tried.as_slice() {
            [one] => write!(f, "cannot reach the coordinator at {one}"),
            several => {
                write!(
                    f,
                    "no coordinator leads among {} addresses: ",
                    several.len()
                )?;
                for (i, a) in several.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{a}")?;
                }
                Ok(())
            }
        }
    }
}

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Clone, Debug)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The job service's client, sending the bearer token.
#[cfg(not(madsim))]
pub type Jobs = JobServiceClient<InterceptedService<Channel, BearerToken>>;
/// The worker service's client, sending the bearer token.
#[cfg(not(madsim))]
pub type Workers = WorkerServiceClient<InterceptedService<Channel, BearerToken>>;
// The simulated clients carry their interceptor as a type parameter instead.
/// The job service's client, sending the bearer token.
#[cfg(madsim)]
pub type Jobs = JobServiceClient<Channel, BearerToken>;
/// The worker service's client, sending the bearer token.
#[cfg(madsim)]
pub type Workers = WorkerServiceClient<Channel, BearerToken>;

/// A connection to the coordinator that leads.
#[derive(Clone, Debug)]
pub struct Connection {
    /// The address connected to, as the errors name it.
    pub address: String,
    /// The open channel, to build service clients on.
    pub channel: Channel,
    /// The coordinator's answer to `Hello`; `None` from one that does not know the call
    /// (or refused it for want of a token), taken to lead.
    pub hello: Option<HelloResponse>,
    /// How many addresses were tried: more than one makes failover possible.
    pub addresses: usize,
}

impl ClientOptions {
    /// Options for `url` with every other setting at its default.
    pub fn new(url: impl Into<String>) -> ClientOptions {
        ClientOptions {
            url: url.into(),
            ..ClientOptions::default()
        }
    }

    fn bearer(&self) -> Result<BearerToken, ClientError> {
        match &self.token {
            None => Ok(BearerToken(None)),
            Some(t) => format!("Bearer {t}")
                .parse()
                .map(|v| BearerToken(Some(v)))
                .map_err(|_| ClientError::Token),
        }
    }

    fn message_bytes(&self) -> usize {
        self.max_message_bytes.unwrap_or(DEFAULT_MAX_MESSAGE_BYTES)
    }

    /// Connects to every address at once and returns the first that leads. Each
    /// address gets `connect_timeout` to connect and again to answer.
    pub async fn connect(&self) -> Result<Connection, ClientError> {
        let bearer = self.bearer()?;
        let (targets, mut tried) = target::resolve(self).await?;
        let addresses = targets.len() + tried.len();
        let mut reaching: FuturesUnordered<_> = targets
            .iter()
            .map(|t| self.reach(t, bearer.clone()))
            .collect();
        while let Some(reached) = reaching.next().await {
            match reached {
                Ok(mut connection) => {
                    connection.addresses = addresses;
                    return Ok(connection);
                }
                Err(e) => tried.push(e),
            }
        }
        Err(ClientError::Unreachable(Unreachable { tried }))
    }

    /// Connects to one address and asks whether it leads.
    async fn reach(
        &self,
        target: &Target,
        bearer: BearerToken,
    ) -> Result<Connection, AddressError> {
        let fail = |cause| AddressError {
            address: target.name.clone(),
            cause,
        };
        let endpoint = target
            .endpoint(self)
            .map_err(|why| fail(Cause::Other(why)))?;
        let slack = Duration::from_millis(100);
        let channel =
            match tokio::time::timeout(self.connect_timeout + slack, endpoint.connect()).await {
                Err(_) => return Err(fail(Cause::TimedOut(self.connect_timeout))),
                Ok(Err(e)) => {
                    let finding = Finding::of_error(&e, self);
                    return Err(fail(finding.cause(target, self).await));
                }
                Ok(Ok(channel)) => channel,
            };
        let mut jobs = JobServiceClient::with_interceptor(channel.clone(), bearer);
        let hello =
            match tokio::time::timeout(self.connect_timeout, jobs.hello(HelloRequest {})).await {
                Err(_) => return Err(fail(Cause::NoAnswer(self.connect_timeout))),
                Ok(Ok(hello)) => Some(hello.into_inner()),
                Ok(Err(status)) => match status.code() {
                    Code::Unimplemented | Code::Unauthenticated | Code::PermissionDenied => None,
                    _ => {
                        let finding = Finding::of_status(&status, self);
                        return Err(fail(finding.cause(target, self).await));
                    }
                },
            };
        if let Some(h) = hello.as_ref().filter(|h| !h.leading) {
            return Err(fail(Cause::NotLeader { epoch: h.epoch }));
        }
        Ok(Connection {
            address: target.name.clone(),
            channel,
            hello,
            addresses: 1,
        })
    }

    /// A job client on `connection`, with this client's token and size limits.
    pub fn jobs_on(&self, connection: &Connection) -> Result<Jobs, ClientError> {
        let n = self.message_bytes();
        Ok(
            JobServiceClient::with_interceptor(connection.channel.clone(), self.bearer()?)
                .max_decoding_message_size(n)
                .max_encoding_message_size(n),
        )
    }

    /// A worker client on `connection`, with this client's token and size limits.
    pub fn workers_on(&self, connection: &Connection) -> Result<Workers, ClientError> {
        let n = self.message_bytes();
        Ok(
            WorkerServiceClient::with_interceptor(connection.channel.clone(), self.bearer()?)
                .max_decoding_message_size(n)
                .max_encoding_message_size(n),
        )
    }

    /// A job client connected to the coordinator that leads.
    pub async fn jobs(&self) -> Result<Jobs, ClientError> {
        let connection = self.connect().await?;
        self.jobs_on(&connection)
    }

    /// A worker client connected to the coordinator that leads.
    pub async fn workers(&self) -> Result<Workers, ClientError> {
        let connection = self.connect().await?;
        self.workers_on(&connection)
    }
}

/// Reads a client token file: its first non-empty line, trimmed.
pub fn read_token(path: &std::path::Path) -> Result<String, ClientError> {
    let text = std::fs::read_to_string(path).map_err(|source| ClientError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
        .ok_or(ClientError::Token)
}
