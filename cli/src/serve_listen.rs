//! What `keel serve` checks before it touches its data directory: that the listen
//! address resolves and its port can be bound, and that the TLS files load. A wrong
//! port or a bad certificate then fails at once, leaving no directory behind and
//! printing no `listening on https://` line for a server that will not serve.

use keel_grpc::server::TlsFiles;
use std::future::Future;
use tokio::net::TcpListener;

/// Binds `addr` (`HOST:PORT`; a host name is resolved and each of its addresses tried
/// in turn).
pub async fn bind(addr: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("listening on {addr}: {e}"))
}

/// Loads the certificate chain and key the way the server will, so a file that is
/// missing, unreadable or not a matching PEM pair is reported before serving starts.
pub fn check_tls(tls: &TlsFiles) -> Result<(), String> {
    use tonic::transport::{Identity, Server, ServerTlsConfig};
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
    };
    let identity = Identity::from_pem(read(&tls.cert)?, read(&tls.key)?);
    Server::builder()
        .tls_config(ServerTlsConfig::new().identity(identity))
        .map(drop)
        .map_err(|e| {
            let cause = std::error::Error::source(&e).map_or(e.to_string(), |c| c.to_string());
            format!(
                "TLS certificate {} and key {}: {cause}",
                tls.cert.display(),
                tls.key.display()
            )
        })
}

/// Runs `starting` (which may wait for leadership) while closing every connection the
/// bound but not yet serving `listener` accepts, so a client is refused at once instead
/// of waiting on a server that cannot answer yet.
pub async fn refusing<T>(listener: &TcpListener, starting: impl Future<Output = T>) -> T {
    let mut starting = std::pin::pin!(starting);
    loop {
        tokio::select! {
            started = &mut starting => return started,
            accepted = listener.accept() => match accepted {
                Ok((connection, _)) => drop(connection),
                // Out of descriptors or similar: pause instead of spinning.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            },
        }
    }
}
