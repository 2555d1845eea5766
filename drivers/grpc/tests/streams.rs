//! Output streams over real loopback gRPC: an SDK handler emits frames (each emit
//! waits until they are stored), a client pages through them with `ReadStream` from
//! its cursor, a newest-wins stream keeps only the last frame, and refusals carry
//! their codes.

mod support;

use keel_engine::{JobSpec, StreamMode, TaskSpec};
use keel_grpc::proto::*;
use keel_grpc::server::ServerOptions;
use keel_grpc::worker::{EmitError, Emitted, Outcome, Task, WorkerConfig};
use support::{finished, run_worker, submit, within, Cluster};
use tokio::sync::mpsc;

fn lines(texts: &[&str]) -> Vec<Vec<u8>> {
    texts.iter().map(|t| t.as_bytes().to_vec()).collect()
}

fn read(job: u64, key: &str, from: u64, limit: u32) -> ReadStreamRequest {
    ReadStreamRequest {
        job,
        key: key.into(),
        from,
        limit,
        ..Default::default()
    }
}

fn data(page: &ReadStreamResponse) -> Vec<String> {
    let text = |f: &StreamFrame| String::from_utf8_lossy(&f.data).into_owned();
    page.frames.iter().map(text).collect()
}

type Emits = (String, Vec<Result<Emitted, EmitError>>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitted_frames_are_read_back_in_pages_by_cursor() {
    let cluster = Cluster::start(ServerOptions::default()).await;
    let (emits_tx, mut emits) = mpsc::unbounded_channel::<Emits>();
    let handler = move |task: Task| {
        let emits_tx = emits_tx.clone();
        async move {
            let mut got = Vec::new();
            if task.key == "log" {
                got.push(task.emit(lines(&["one\n", "two\n"])).await);
                got.push(task.emit(lines(&["three\n"])).await);
                got.push(task.emit(vec![vec![b'x'; 2 << 20]]).await);
            } else {
                for pct in ["10%", "50%", "90%"] {
                    got.push(task.emit(lines(&[pct])).await);
                }
            }
            let _ = emits_tx.send((task.key.clone(), got));
            Outcome::Complete(Vec::new())
        }
    };
    let config = WorkerConfig::new(cluster.client(), "w1", 2);
    let worker = run_worker(config, handler);
    let mut status = TaskSpec::new("status");
    status.stream = StreamMode::Newest;
    let spec = JobSpec::new("streaming", vec![TaskSpec::new("log"), status]);
    let mut jobs = cluster.client().jobs().await.unwrap();
    let job = submit(&mut jobs, &spec).await.job;
    for _ in 0..2 {
        let (key, got) = within("the emits", emits.recv()).await.unwrap();
        let next: Vec<_> = got.iter().map(|r| r.as_ref().map(|e| e.next)).collect();
        if key == "log" {
            assert_eq!(next[..2], [Ok(2), Ok(3)]);
            let Err(EmitError::Refused { reason, .. }) = &got[2] else {
                panic!("a frame over the payload limit must be refused: {got:?}");
            };
            assert_eq!(reason, "stream_over_limit");
        } else {
            assert_eq!(next, [Ok(1), Ok(2), Ok(3)]);
            assert_eq!(got[2].as_ref().unwrap().dropped, 1);
        }
    }
    assert_eq!(
        within("the job", finished(&mut jobs, job)).await,
        "succeeded"
    );

    let first = jobs
        .read_stream(read(job, "log", 0, 2))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(data(&first), ["one\n", "two\n"]);
    assert_eq!(first.next, 2);
    let rest = jobs
        .read_stream(read(job, "log", first.next, 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(data(&rest), ["three\n"]);
    assert_eq!((rest.next, rest.finished), (3, true));
    assert_eq!(rest.frames[0].attempt, 1);

    let summary = jobs
        .read_stream(read(job, "status", 0, 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(data(&summary), ["90%"]);
    assert_eq!((summary.first_kept, summary.dropped), (2, 2));

    let missing = jobs.read_stream(read(job, "nope", 0, 0)).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_pushes_frames_as_they_are_stored_and_ends_with_the_task() {
    let options = ServerOptions {
        max_watches: 1,
        // Pages must come from the emits themselves, never from the slow poll.
        tail_poll: std::time::Duration::from_secs(3600),
        ..ServerOptions::default()
    };
    let cluster = Cluster::start(options).await;
    // The handler emits, then waits for each go before its next emit.
    let (said_tx, mut said) = mpsc::unbounded_channel::<u64>();
    let (go_tx, go) = mpsc::unbounded_channel::<()>();
    let go = std::sync::Arc::new(tokio::sync::Mutex::new(go));
    let handler = move |task: Task| {
        let (said_tx, go) = (said_tx.clone(), go.clone());
        async move {
            let mut go = go.lock().await;
            for text in ["a\n", "b\n", "c\n"] {
                let next = task.emit(lines(&[text])).await.unwrap().next;
                let _ = said_tx.send(next);
                go.recv().await;
            }
            Outcome::Complete(Vec::new())
        }
    };
    let config = WorkerConfig::new(cluster.client(), "w1", 1);
    let worker = run_worker(config, handler);
    let spec = JobSpec::new("tailed", vec![TaskSpec::new("log")]);
    let mut jobs = cluster.client().jobs().await.unwrap();
    let job = submit(&mut jobs, &spec).await.job;
    assert_eq!(within("the first emit", said.recv()).await, Some(1));
    let tail = |after| TailStreamRequest {
        job,
        key: "log".into(),
        after,
        ..Default::default()
    };
    let mut pages = jobs.tail_stream(tail(None)).await.unwrap().into_inner();
    let first = within("a page", pages.message()).await.unwrap().unwrap();
    assert_eq!(
        (data(&first), first.next, first.finished),
        (vec!["a\n".into()], 1, false)
    );
    // The tail holds the server's only watch slot.
    let refused = jobs.tail_stream(tail(None)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert!(refused.message().contains("max_watches = 1"), "{refused:?}");
    for (text, next) in [("b\n", 2), ("c\n", 3)] {
        go_tx.send(()).unwrap();
        let page = within("a pushed page", pages.message())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((data(&page), page.next), (vec![text.to_string()], next));
    }
    go_tx.send(()).unwrap();
    let last = within("the last page", pages.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((last.frames.len(), last.next, last.finished), (0, 3, true));
    assert!(within("the end", pages.message()).await.unwrap().is_none());

    // A tail of an ended task sends what is kept after the cursor and ends at once.
    let mut pages = jobs.tail_stream(tail(Some(0))).await.unwrap().into_inner();
    let rest = within("a page", pages.message()).await.unwrap().unwrap();
    assert_eq!(data(&rest), ["b\n", "c\n"]);
    let last = within("the last page", pages.message())
        .await
        .unwrap()
        .unwrap();
    assert!(last.finished && last.frames.is_empty());
    let missing = TailStreamRequest {
        key: "nope".into(),
        ..tail(None)
    };
    let missing = jobs.tail_stream(missing).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_page_carries_at_most_half_a_mib_so_a_slow_reader_holds_little() {
    let cluster = Cluster::start(ServerOptions::default()).await;
    let handler = move |task: Task| async move {
        let big = vec![vec![b'x'; 300 << 10]; 3];
        task.emit(big).await.unwrap();
        Outcome::Complete(Vec::new())
    };
    let config = WorkerConfig::new(cluster.client(), "w1", 1);
    let worker = run_worker(config, handler);
    let spec = JobSpec::new("big", vec![TaskSpec::new("log")]);
    let mut jobs = cluster.client().jobs().await.unwrap();
    let job = submit(&mut jobs, &spec).await.job;
    assert_eq!(
        within("the job", finished(&mut jobs, job)).await,
        "succeeded"
    );
    let tail = TailStreamRequest {
        job,
        key: "log".into(),
        ..Default::default()
    };
    let mut pages = jobs.tail_stream(tail).await.unwrap().into_inner();
    let mut sizes = Vec::new();
    while let Some(page) = within("a page", pages.message()).await.unwrap() {
        sizes.push(page.frames.len());
    }
    assert_eq!(sizes, [1, 1, 1, 0]);
    worker.stop().await;
}
