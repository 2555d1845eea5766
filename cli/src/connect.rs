//! How the client commands reach a coordinator: URL, token file and TLS CA.

use clap::Args;
use keel_grpc::client::{read_token, ClientOptions};
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Coordinator URL: http://HOST:PORT, or https://HOST:PORT with TLS.
    #[arg(long, value_name = "URL")]
    pub coordinator: String,
    /// File holding the bearer token to present.
    #[arg(long, value_name = "F")]
    pub token_file: Option<PathBuf>,
    /// PEM CA certificate to check the coordinator's TLS certificate with.
    #[arg(long, value_name = "F")]
    pub tls_ca: Option<PathBuf>,
    /// Name to check the coordinator's certificate against, if not the URL's host.
    #[arg(long, value_name = "NAME")]
    pub tls_domain: Option<String>,
}

impl ConnectArgs {
    pub fn options(&self) -> Result<ClientOptions, String> {
        let token = match &self.token_file {
            Some(path) => Some(read_token(path).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(ClientOptions {
            url: self.coordinator.clone(),
            token,
            ca: self.tls_ca.clone(),
            domain: self.tls_domain.clone(),
            max_message_bytes: Some(64 << 20),
        })
    }

    /// A connected job client, with any failure as the message a command prints.
    pub async fn jobs(&self) -> Result<keel_grpc::client::Jobs, String> {
        self.options()?.jobs().await.map_err(|e| e.to_string())
    }
}

/// A multi-threaded runtime for one command.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings, and info for keel).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,keel=info,keel_grpc=info,keel_coordinator=info")
    });
    // A log line that cannot be written is dropped: by default the subscriber reports it
    // with `eprintln!`, which panics when stderr is a closed pipe.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .try_init();
}

/// Resolves on SIGINT or SIGTERM.
pub async fn terminated() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
