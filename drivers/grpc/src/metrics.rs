//! What the gRPC layer measures itself, in Prometheus text format, and a minimal HTTP
//! endpoint that serves it together with the coordinator's own metrics.

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 13] = [
    0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A Prometheus histogram with fixed buckets, updated without locks.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Counts one duration in its bucket.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            d.as_micros().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The upper bound of the bucket holding quantile `q` (0..=1); `None` when empty or
    /// beyond the largest bucket.
    pub fn quantile_bound(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = (q * total as f64).ceil() as u64;
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            if cumulative >= rank {
                return Some(Duration::from_secs_f64(*bound));
            }
        }
        None
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let total = self.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {total}");
    }
}

/// Counters of the gRPC layer.
#[derive(Default)]
pub struct GrpcMetrics {
    /// From a grant offer leaving the coordinator to its lease starting.
    pub claim_to_start: Histogram,
    /// Worker sessions ever opened.
    pub sessions_opened: AtomicU64,
    /// Worker sessions open now.
    pub sessions_active: AtomicU64,
    /// Worker commands received.
    pub commands: AtomicU64,
    /// Worker commands refused (the reply carried a refusal).
    pub refusals: AtomicU64,
    /// Requests and frames that did not validate (INVALID_ARGUMENT).
    pub invalid_requests: AtomicU64,
    /// Sessions, watches and messages refused by a server limit (RESOURCE_EXHAUSTED).
    pub limit_refusals: AtomicU64,
}

impl GrpcMetrics {
    /// The counters in Prometheus text format.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        self.claim_to_start.render(
            &mut out,
            "keel_claim_to_start_seconds",
            "Time from a grant offer being sent to its lease starting.",
        );
        let counters = [
            (
                "keel_grpc_sessions_opened_total",
                "counter",
                "Worker sessions opened.",
                &self.sessions_opened,
            ),
            (
                "keel_grpc_sessions_active",
                "gauge",
                "Worker sessions open now.",
                &self.sessions_active,
            ),
            (
                "keel_grpc_worker_commands_total",
                "counter",
                "Worker commands received.",
                &self.commands,
            ),
            (
                "keel_grpc_refusals_total",
                "counter",
                "Commands the engine refused.",
                &self.refusals,
            ),
            (
                "keel_grpc_invalid_requests_total",
                "counter",
                "Malformed requests refused.",
                &self.invalid_requests,
            ),
            (
                "keel_grpc_limit_refusals_total",
                "counter",
                "Sessions, watches and messages refused by a server limit.",
                &self.limit_refusals,
            ),
        ];
        for (name, kind, help, value) in counters {
            let v = value.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        out
    }
}

/// Serves `render()` as `text/plain` to every HTTP request on `listener` until the
/// returned task is aborted.
pub fn serve_metrics<F>(listener: TcpListener, render: F) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> String + Send + Sync + 'static,
{
    let render = std::sync::Arc::new(render);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let render = render.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                // One request per connection: read its head, answer, close.
                let read =
                    tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
                if !matches!(read, Ok(Ok(n)) if n > 0) {
                    return;
                }
                let body = render();
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    })
}

/// Binds the metrics endpoint.
pub async fn bind_metrics(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = GrpcMetrics::default();
        m.claim_to_start.observe(Duration::from_micros(300));
        m.claim_to_start.observe(Duration::from_millis(3));
        m.claim_to_start.observe(Duration::from_secs(60));
        let text = m.render_prometheus();
        assert!(
            text.contains("keel_claim_to_start_seconds_bucket{le=\"0.0005\"} 1"),
            "{text}"
        );
        assert!(text.contains("keel_claim_to_start_seconds_bucket{le=\"0.005\"} 2"));
        assert!(text.contains("keel_claim_to_start_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("keel_claim_to_start_seconds_count 3"));
        let p50 = m.claim_to_start.quantile_bound(0.5);
        assert_eq!(p50, Some(Duration::from_secs_f64(0.005)));
        assert_eq!(m.claim_to_start.quantile_bound(0.99), None);
    }

    #[tokio::test]
    async fn the_endpoint_answers_with_the_rendered_text() {
        let listener = bind_metrics("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = serve_metrics(listener, || "keel_up 1\n".to_string());
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).await.unwrap();
        task.abort();
        assert!(resp.starts_with("HTTP/1.1 200 OK"));
        assert!(resp.ends_with("keel_up 1\n"));
    }
}
