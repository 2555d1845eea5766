//! `keel serve --ui ADDR`: the web console next to the gRPC services. It takes the
//! client tokens of `--token-file` for cancel and retry, and is read-only without one.

use keel_console::{Authorize, Console, ConsoleOptions};
use keel_coordinator::{Handle, SystemClock};
use keel_grpc::auth::{Role, Tokens};
use std::net::SocketAddr;
use std::sync::Arc;

/// Binds `addr`, prints where the console is, and serves it until the result drops.
pub async fn start(
    addr: SocketAddr,
    handle: &Handle,
    tokens: Option<Tokens>,
) -> Result<Console, String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("console on {addr}: {e}"))?;
    let mut options = ConsoleOptions::new(Arc::new(SystemClock));
    options.authorize = tokens.map(|tokens| {
        let authorize: Authorize =
            Arc::new(move |presented: &[u8]| tokens.role_of(presented) == Some(Role::Client));
        authorize
    });
    let console = keel_console::serve(handle.clone(), listener, options)
        .map_err(|e| format!("console on {addr}: {e}"))?;
    crate::output::stdout_best_effort(&format!("console on http://{}\n", console.local_addr()));
    Ok(console)
}
