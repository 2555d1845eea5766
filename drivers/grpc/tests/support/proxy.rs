//! A TCP proxy in front of a coordinator that can hang (cut its connections and
//! accept new ones without answering) and heal.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy to the coordinator that can turn into a black hole: its forwarded
/// connections are cut, and new ones are accepted and never answered.
pub(crate) struct Proxy {
    pub url: String,
    hung: Arc<AtomicBool>,
    forwarding: Arc<Mutex<Vec<JoinHandle<()>>>>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub(crate) async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hung = Arc::new(AtomicBool::new(false));
        let forwarding = Arc::new(Mutex::new(Vec::new()));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (h, f, kept) = (hung.clone(), forwarding.clone(), held.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if h.load(Ordering::SeqCst) {
                    kept.lock().unwrap().push(inbound);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                f.lock().unwrap().push(task);
            }
        });
        Proxy {
            url,
            hung,
            forwarding,
            held,
        }
    }

    pub(crate) fn hang(&self) {
        self.hung.store(true, Ordering::SeqCst);
        for task in self.forwarding.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Forwards again: connections held unanswered are closed, new ones reach the
    /// coordinator.
    pub(crate) fn heal(&self) {
        self.hung.store(false, Ordering::SeqCst);
        self.held.lock().unwrap().clear();
    }
}
