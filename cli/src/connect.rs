//! How the client commands reach a coordinator: URLs, token file, TLS CA, timeouts.

use crate::exit::Failure;
use clap::Args;
use keel_grpc::client::{read_token, Client, ClientOptions};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Coordinator URL: http://HOST:PORT, or https://HOST:PORT with TLS. Give several
    /// (comma-separated, or the flag repeated) to follow whichever coordinator leads; a
    /// host name with several addresses stands for all of them.
    #[arg(long, value_name = "URL", required = true, value_delimiter = ',')]
    pub coordinator: Vec<String>,
    /// File holding the bearer token to present.
    #[arg(long, value_name = "F")]
    pub token_file: Option<PathBuf>,
    /// PEM CA certificate to check the coordinator's TLS certificate with.
    #[arg(long, value_name = "F")]
    pub tls_ca: Option<PathBuf>,
    /// Name to check the coordinator's certificate against, if not the URL's host.
    #[arg(long, value_name = "NAME")]
    pub tls_domain: Option<String>,
    /// How long connecting to a coordinator may take, and then its first answer.
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    pub connect_timeout_ms: u64,
}

impl ConnectArgs {
    pub fn options(&self) -> Result<ClientOptions, String> {
        let token = match &self.token_file {
            Some(path) => Some(read_token(path).map_err(|e| e.to_string())?),
            None => None,
        };
        if self.connect_timeout_ms == 0 {
            return Err("--connect-timeout-ms must be at least 1".into());
        }
        Ok(ClientOptions {
            url: self.coordinator.join(","),
            token,
            ca: self.tls_ca.clone(),
            domain: self.tls_domain.clone(),
            max_message_bytes: Some(64 << 20),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            ..ClientOptions::default()
        })
    }

    /// A client connected to the coordinator that leads, with any failure as the
    /// message a command prints.
    pub async fn client(&self) -> Result<Client, String> {
        Client::connect(self.options()?)
            .await
            .map_err(|e| e.to_string())
    }

    /// [`ConnectArgs::client`] with the exit status the failure calls for
    /// (unreachable, or another error).
    pub async fn connect(&self) -> Result<Client, Failure> {
        Ok(Client::connect(self.options()?).await?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        connect: ConnectArgs,
    }

    #[test]
    fn coordinators_are_comma_separated_or_repeated() {
        let cli = Cli::parse_from([
            "keel",
            "--coordinator",
            "http://a:1,http://b:2",
            "--coordinator",
            "http://c:3",
        ]);
        let options = cli.connect.options().unwrap();
        assert_eq!(options.url, "http://a:1,http://b:2,http://c:3");
        assert_eq!(options.connect_timeout, Duration::from_secs(5));
        let quick = Cli::parse_from([
            "keel",
            "--coordinator",
            "http://a:1",
            "--connect-timeout-ms",
            "250",
        ]);
        assert_eq!(
            quick.connect.options().unwrap().connect_timeout,
            Duration::from_millis(250)
        );
        let zero = Cli::parse_from([
            "keel",
            "--coordinator",
            "http://a:1",
            "--connect-timeout-ms",
            "0",
        ]);
        assert_eq!(
            zero.connect.options().unwrap_err(),
            "--connect-timeout-ms must be at least 1"
        );
        assert!(
            Cli::try_parse_from(["keel"]).is_err(),
            "a coordinator is required"
        );
    }
}
