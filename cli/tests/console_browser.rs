//! The web console in a real browser: `keel serve --ui` and two `keel worker`s run as
//! processes, headless Chromium opens the console, and the test reads its DOM. A job
//! held running by a file is listed, turns succeeded when the file appears without
//! the page reloading (live over server-sent events), its DAG is drawn with every task
//! succeeded, the workers are listed, and a failed job is retried from its page with
//! the client token. One screenshot per page goes to `target/console-screenshots/`.

mod browser;
mod process;

use browser::Browser;
use process::{free_port, keel, worker_with, Serve};
use std::path::{Path, PathBuf};
use std::time::Instant;

const CLIENT_TOKEN: &str = "console-browser-client-token";
const WORKER_TOKEN: &str = "console-browser-worker-token";

fn screenshots() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("console-screenshots");
    std::fs::create_dir_all(&target).unwrap();
    target
}

/// `keel submit` with the client token; the job id it printed.
fn submit(url: &str, job: &Path, token: &Path) -> u64 {
    let out = keel()
        .arg("submit")
        .arg(job)
        .args(["--coordinator", url])
        .arg("--token-file")
        .arg(token)
        .output()
        .expect("keel submit runs");
    assert!(
        out.status.success(),
        "keel submit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a job id")
}

/// A diamond whose first task waits for `go`, so the job is running when the page opens.
fn diamond(dir: &Path) -> PathBuf {
    let go = dir.join("go");
    let wait = format!("while [ ! -f {} ]; do sleep 0.05; done", go.display());
    let toml = format!(
        "[job]\nname = \"browser-diamond\"\n\n\
         [[task]]\nid = \"fetch\"\ncommand = '{wait}'\n\n\
         [[task]]\nid = \"left\"\ncommand = 'true'\ndeps = [\"fetch\"]\n\n\
         [[task]]\nid = \"right\"\ncommand = 'true'\ndeps = [\"fetch\"]\n\n\
         [[task]]\nid = \"join\"\ncommand = 'printf \"<i>joined</i>\"'\ndeps = [\"left\", \"right\"]\n"
    );
    let path = dir.join("diamond.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

fn failing(dir: &Path) -> PathBuf {
    let toml = "[job]\nname = \"browser-flaky <b>x</b>\"\n\n\
        [[task]]\nid = \"render\"\ncommand = 'echo \"template <missing>\" >&2; exit 3'\n\
        retry = { max_attempts = 1 }\n\n\
        [[task]]\nid = \"publish\"\ncommand = 'true'\ndeps = [\"render\"]\n";
    let path = dir.join("failing.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

fn row_state(job: u64) -> String {
    format!("document.querySelector('tr[data-job-id=\"{job}\"] [data-state]')?.dataset.state")
}

/// `keel serve --ui` with a token file, two workers, and what the steps need.
struct Cluster {
    dir: tempfile::TempDir,
    serve: Serve,
    client: PathBuf,
    console: String,
    _workers: [process::Proc; 2],
}

fn cluster() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    let lines = format!("client {CLIENT_TOKEN}\nworker {WORKER_TOKEN}\n");
    std::fs::write(&tokens, lines).unwrap();
    let (client, worker_token) = (dir.path().join("client"), dir.path().join("worker"));
    std::fs::write(&client, CLIENT_TOKEN).unwrap();
    std::fs::write(&worker_token, WORKER_TOKEN).unwrap();
    let ui = format!("127.0.0.1:{}", free_port());
    let extra = [
        "--ui".to_string(),
        ui.clone(),
        "--token-file".to_string(),
        tokens.display().to_string(),
    ];
    let serve = Serve::start_with(&dir.path().join("data"), None, &extra);
    let wt = worker_token.display().to_string();
    let options = ["--concurrency", "2", "--token-file", &wt];
    let workers = [
        worker_with(&serve.url(), "browser-w1", &options),
        worker_with(&serve.url(), "browser-w2", &options),
    ];
    Cluster {
        dir,
        serve,
        client,
        console: format!("http://{ui}"),
        _workers: workers,
    }
}

const SHOW: &str = "document.getElementById('main').innerText";

/// The jobs list shows the job running, then succeeded without reloading.
async fn job_turns_succeeded_live(page: &mut Browser, c: &Cluster, job: u64, shots: &Path) {
    page.open(&format!("{}/", c.console)).await;
    let running = format!("{} === 'running'", row_state(job));
    page.wait_for("the job running in the list", &running, SHOW)
        .await;
    // Anything that reloads the page loses this mark.
    page.eval("window.keelMark = 'kept'").await;
    std::fs::write(c.dir.path().join("go"), "").unwrap();
    let succeeded = format!("{} === 'succeeded'", row_state(job));
    page.wait_for("the job turning succeeded", &succeeded, SHOW)
        .await;
    assert_eq!(
        page.eval("window.keelMark").await,
        "kept",
        "the page reloaded"
    );
    let live = page
        .eval("document.getElementById('live').textContent")
        .await;
    assert_eq!(live, "live");
    page.screenshot(&shots.join("jobs.png")).await;
}

/// The job page draws the DAG with every task succeeded, and the attempts.
async fn graph_is_drawn(page: &mut Browser, c: &Cluster, job: u64, shots: &Path) {
    page.open(&format!("{}/jobs/{job}", c.console)).await;
    let nodes = "document.querySelectorAll('#dag g.node[data-state=\"succeeded\"]').length";
    page.wait_for(
        "the DAG with four succeeded tasks",
        &format!("{nodes} === 4"),
        SHOW,
    )
    .await;
    let edges = page
        .eval("document.querySelectorAll('#dag path.edge').length")
        .await;
    assert_eq!(edges, 4);
    let bars = page
        .eval("document.querySelectorAll('#timeline rect').length > 4")
        .await;
    assert_eq!(bars, true, "the attempts timeline has a bar per attempt");
    // The output is shown as text, never as markup, with its download link.
    let output = page
        .eval("document.querySelector('tr[data-task=\"join\"] .output code').textContent")
        .await;
    assert_eq!(output, "<i>joined</i>");
    let markup = page
        .eval("document.querySelectorAll('tr[data-task=\"join\"] .output i').length")
        .await;
    assert_eq!(markup, 0);
    let link = page
        .eval("document.querySelector('tr[data-task=\"join\"] .output a').textContent")
        .await;
    assert_eq!(link, "13 bytes");
    page.screenshot(&shots.join("job.png")).await;
}

async fn workers_are_listed(page: &mut Browser, c: &Cluster, shots: &Path) {
    page.open(&format!("{}/workers", c.console)).await;
    let both = "document.querySelector('tr[data-worker=\"browser-w1\"]') \
        && document.querySelector('tr[data-worker=\"browser-w2\"]')";
    page.wait_for("both workers listed", both, SHOW).await;
    page.screenshot(&shots.join("workers.png")).await;
}

/// A failed job is retried from its page once the client token is entered; the new
/// job links back to it.
async fn failed_job_is_retried(page: &mut Browser, c: &Cluster, shots: &Path) {
    let failed = submit(&c.serve.url(), &failing(c.dir.path()), &c.client);
    page.open(&format!("{}/jobs/{failed}", c.console)).await;
    let button = "document.getElementById('do-retry')";
    page.wait_for("the retry button of the failed job", button, SHOW)
        .await;
    let title = page
        .eval("document.querySelector('h1 .name').textContent")
        .await;
    assert_eq!(title, "browser-flaky <b>x</b>", "user text shows as text");
    page.eval(&format!(
        "document.getElementById('token').value = '{CLIENT_TOKEN}'; \
         document.getElementById('token-form').requestSubmit()"
    ))
    .await;
    let state = "document.getElementById('token-state').textContent";
    page.wait_for(
        "the token accepted",
        &format!("{state} === 'token accepted'"),
        state,
    )
    .await;
    page.screenshot(&shots.join("job-failed.png")).await;
    page.eval("document.getElementById('do-retry').click()")
        .await;
    let note = "document.getElementById('action-state').textContent";
    page.wait_for(
        "a link to the retry job",
        "document.querySelector('#action-state a')",
        note,
    )
    .await;
    let link = page
        .eval("document.querySelector('#action-state a').getAttribute('href')")
        .await;
    let retry: u64 = link
        .as_str()
        .unwrap()
        .trim_start_matches("/jobs/")
        .parse()
        .unwrap();
    assert!(retry > failed, "{link}");
    page.open(&format!("{}/jobs/{retry}", c.console)).await;
    let back = format!("document.querySelector('a[href=\"/jobs/{failed}\"]')");
    page.wait_for("the retry job linking back", &back, SHOW)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_a_job_live_its_graph_and_the_workers() {
    let started = Instant::now();
    let c = cluster();
    let job = submit(&c.serve.url(), &diamond(c.dir.path()), &c.client);
    let shots = screenshots();
    let mut page = Browser::launch().await;
    job_turns_succeeded_live(&mut page, &c, job, &shots).await;
    graph_is_drawn(&mut page, &c, job, &shots).await;
    workers_are_listed(&mut page, &c, &shots).await;
    failed_job_is_retried(&mut page, &c, &shots).await;
    eprintln!(
        "console browser test: {:.1}s, screenshots in {}",
        started.elapsed().as_secs_f64(),
        shots.display()
    );
}
