//! The coordinator's gRPC services over a running `keel_coordinator::Handle`.
//!
//! Everything a peer can make the server hold is bounded: worker sessions and job
//! watches per server (`max_sessions`, `max_watches`), commands in flight and events
//! queued per session (`max_in_flight`, `session_queue`), and the size of every message
//! (`max_message_bytes`). Each refusal is RESOURCE_EXHAUSTED naming the limit
//! (`limit_reached: max_sessions = 2048: ...`). [`budget`] sizes them from one memory
//! budget.

pub mod budget;
mod budget_list;
mod edge_tail;
mod jobs;
mod listing;
mod outbound;
mod progress;
mod rate;
mod results;
mod schedules;
mod session;
mod session_commands;
#[cfg(not(madsim))]
mod size_names;
mod slots;
mod streams;
mod tail;
mod watch_outputs;

use crate::auth::{Authenticator, Tokens};
use crate::metrics::GrpcMetrics;
use crate::proto::job_service_server::JobServiceServer;
use crate::proto::worker_service_server::WorkerServiceServer;
use keel_coordinator::Handle;
use keel_engine::Config;
use progress::ProgressBoard;
use slots::Slots;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;

/// Room kept in a frame for everything but the payloads and outputs it carries.
pub const FRAME_OVERHEAD_BYTES: usize = 64 << 10;

/// The bytes of frames or outputs one reply may carry on `shared`'s server.
fn room(shared: &Shared) -> u64 {
    let max = shared.options.max_message_bytes;
    max.saturating_sub(FRAME_OVERHEAD_BYTES).max(1) as u64
}

/// How the services are exposed.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Bearer tokens; `None` serves without auth.
    pub tokens: Option<Tokens>,
    /// Certificate and key to serve TLS with; `None` serves plain HTTP/2.
    pub tls: Option<TlsFiles>,
    /// Largest message accepted or sent, in bytes. A job spec is one message, so this
    /// bounds the size of a submission; a worker frame over it ends the session with
    /// RESOURCE_EXHAUSTED. It must leave room for the engine's largest payload.
    pub max_message_bytes: usize,
    /// Commands of one session in flight at once; more wait for earlier replies.
    pub max_in_flight: usize,
    /// How long a new session may take to send its registration.
    pub register_timeout: Duration,
    /// Worker sessions open at once on this server; more are refused.
    pub max_sessions: usize,
    /// `WatchJob` and `TailStream` streams open at once on this server; more are refused.
    pub max_watches: usize,
    /// Output bytes a `WatchJob` event asked for with `include_outputs` carries at most;
    /// a larger output is left out of the event (and read with `GetTaskOutput`), so a
    /// watch never carries more than this per event; 0 sends sizes only. It is further
    /// bounded by what fits one message.
    pub max_watch_output_bytes: usize,
    /// Events (replies, offers, revocations) waiting to be sent to one worker. A worker
    /// that does not read its session until this many wait has its session ended with
    /// RESOURCE_EXHAUSTED; the server never buffers more for it. It must exceed
    /// `max_in_flight` plus the engine's pending grants per worker. Replies never fill
    /// it: at most `max_in_flight` commands are running or have replies unread, and the
    /// next frame waits for room.
    pub session_queue: usize,
    /// How long a session's commands wait for the worker to read earlier replies before
    /// the session is ended with RESOURCE_EXHAUSTED naming `session_queue`.
    pub session_stall: Duration,
    /// Commands one worker session may send per second (a second's worth at once);
    /// its next frame is not read until it is within the limit. 0 for no limit.
    pub max_session_commands_per_sec: u32,
    /// How long a caught-up `TailStream` waits at most before reading again. A tail is
    /// woken as soon as an emit of its task is stored or its job moves; this floor only
    /// bounds how late a wake this server could not see is noticed.
    pub tail_poll: Duration,
}

impl Default for ServerOptions {
    /// The limits of the default memory budget ([`budget::DEFAULT_MEMORY_BYTES`]).
    fn default() -> Self {
        let mut options = ServerOptions {
            tokens: None,
            tls: None,
            max_message_bytes: 16 << 20,
            max_in_flight: 4096,
            register_timeout: Duration::from_secs(10),
            max_sessions: 2048,
            max_watches: 512,
            max_watch_output_bytes: 64 << 10,
            session_queue: 16_384,
            session_stall: Duration::from_secs(10),
            max_session_commands_per_sec: 100_000,
            tail_poll: Duration::from_secs(1),
        };
        if let Ok(sizing) = budget::Sizing::for_memory(budget::DEFAULT_MEMORY_BYTES) {
            sizing.apply(&mut keel_engine::Limits::default(), &mut options);
        }
        options
    }
}

impl ServerOptions {
    /// Refuses options the services cannot honour, naming the field.
    pub fn validate(&self, limits: &keel_engine::Limits) -> Result<(), ServeError> {
        let invalid = |field: &'static str, problem: String| {
            Err(ServeError::InvalidOptions { field, problem })
        };
        let payload = limits.max_payload_bytes as usize;
        if self.max_message_bytes < payload.saturating_add(FRAME_OVERHEAD_BYTES) {
            return invalid(
                "max_message_bytes",
                format!(
                    "{} leaves no room for a payload of the engine's max_payload_bytes ({payload}) plus {FRAME_OVERHEAD_BYTES} bytes",
                    self.max_message_bytes
                ),
            );
        }
        for (field, value) in [
            ("max_in_flight", self.max_in_flight),
            ("max_sessions", self.max_sessions),
            ("max_watches", self.max_watches),
        ] {
            if value == 0 {
                return invalid(field, "must be at least 1".into());
            }
        }
        if self.session_stall.is_zero() {
            return invalid("session_stall", "must be longer than zero".into());
        }
        let needed = self
            .max_in_flight
            .saturating_add(limits.max_pending_grants_per_worker as usize);
        if self.session_queue <= needed {
            return invalid(
                "session_queue",
                format!(
                    "{} must exceed max_in_flight ({}) plus the engine's max_pending_grants_per_worker ({})",
                    self.session_queue, self.max_in_flight, limits.max_pending_grants_per_worker
                ),
            );
        }
        Ok(())
    }
}

/// PEM files of the server's certificate chain and private key.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// Why the server could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A TLS file cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The coordinator could not be reached for what serving needs from it.
    #[error("the coordinator is unavailable: {0}")]
    Coordinator(#[from] keel_coordinator::CoordinatorError),
    /// The bound socket reports no address.
    #[error("the listener has no local address: {0}")]
    Listener(std::io::Error),
    /// A server option is out of range.
    #[error("invalid server option {field}: {problem}")]
    InvalidOptions {
        /// The option.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// tonic failed to serve (bind, TLS setup, accept).
    #[error(transparent)]
    Transport(#[from] tonic::transport::Error),
}

/// What every request handler shares.
pub(crate) struct Shared {
    pub handle: Handle,
    pub config: Config,
    pub metrics: Arc<GrpcMetrics>,
    pub progress: ProgressBoard,
    pub options: ServerOptions,
    /// Sessions and watches open now, against their limits.
    pub slots: Slots,
    /// Cancelled when the server stops: open sessions and watches end with UNAVAILABLE,
    /// so their peers move to another coordinator and the server can finish.
    pub stopping: CancellationToken,
    /// Rung when a task's emit is stored, waking its `TailStream` readers.
    pub bells: tail::Bells,
}

impl Shared {
    /// The state of one server, its session and watch slots sized from `options`.
    fn new(
        handle: Handle,
        config: Config,
        metrics: Arc<GrpcMetrics>,
        options: &ServerOptions,
        stopping: CancellationToken,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            handle,
            config,
            metrics,
            progress: ProgressBoard::default(),
            slots: Slots::new(options.max_sessions, options.max_watches),
            options: options.clone(),
            stopping,
            bells: tail::Bells::default(),
        })
    }
}

/// A tonic server with keepalives that notice a dead peer within half a minute, and TLS
/// when the options name certificate files.
fn server_builder(options: &ServerOptions) -> Result<Server, ServeError> {
    let builder = Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)));
    match &options.tls {
        Some(tls) => with_tls(builder, tls),
        None => Ok(builder),
    }
}

/// Serves the worker and job services on `listener` until `shutdown` resolves.
pub async fn serve(
    handle: Handle,
    listener: TcpListener,
    options: ServerOptions,
    metrics: Arc<GrpcMetrics>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let config = handle.read(|e| e.config().clone()).await?;
    options.validate(&config.limits)?;
    let stopping = CancellationToken::new();
    let shared = Shared::new(handle, config, metrics, &options, stopping.clone());
    let shutdown = async move {
        shutdown.await;
        stopping.cancel();
    };
    let auth = Authenticator::new(options.tokens.clone());
    let check = move |req| auth.check(req);
    let mut builder = server_builder(&options)?;
    let size = options.max_message_bytes;
    #[cfg(not(madsim))]
    {
        use size_names::NameSizeLimit;
        use tonic::service::interceptor::InterceptedService;
        let workers = WorkerServiceServer::new(session::WorkerSvc(shared.clone()))
            .max_decoding_message_size(size)
            .max_encoding_message_size(size);
        let jobs = JobServiceServer::new(jobs::JobSvc(shared))
            .max_decoding_message_size(size)
            .max_encoding_message_size(size);
        builder
            .add_service(NameSizeLimit(InterceptedService::new(
                workers,
                check.clone(),
            )))
            .add_service(NameSizeLimit(InterceptedService::new(jobs, check)))
            // Accepted connections do not inherit `tcp_nodelay`; without it small
            // frames to workers wait for delayed acknowledgements (40 ms on Linux).
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                shutdown,
            )
            .await?;
    }
    // The simulated server binds its own endpoint and takes the interceptor inside the
    // service; it ignores size limits.
    #[cfg(madsim)]
    {
        let addr = listener.local_addr().map_err(ServeError::Listener)?;
        drop(listener);
        let workers = WorkerServiceServer::with_interceptor(
            session::WorkerSvc(shared.clone()),
            check.clone(),
        );
        let jobs = JobServiceServer::with_interceptor(jobs::JobSvc(shared), check);
        builder
            .add_service(workers.max_decoding_message_size(size))
            .add_service(jobs.max_decoding_message_size(size))
            .serve_with_shutdown(addr, shutdown)
            .await?;
    }
    Ok(())
}

#[cfg(not(madsim))]
fn with_tls(builder: Server, tls: &TlsFiles) -> Result<Server, ServeError> {
    use tonic::transport::{Identity, ServerTlsConfig};
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| ServeError::Read {
            path: path.clone(),
            source,
        })
    };
    let identity = Identity::from_pem(read(&tls.cert)?, read(&tls.key)?);
    Ok(builder.tls_config(ServerTlsConfig::new().identity(identity))?)
}

/// The simulated transport has no TLS: the services are served in the clear.
#[cfg(madsim)]
fn with_tls(builder: Server, _tls: &TlsFiles) -> Result<Server, ServeError> {
    Ok(builder)
}

/// The status a coordinator failure gives a caller: retry elsewhere or later.
pub(crate) fn unavailable(e: &keel_coordinator::CoordinatorError) -> tonic::Status {
    tonic::Status::unavailable(format!("{}: {e}", e.code()))
}
