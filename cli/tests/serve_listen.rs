//! Real processes: what `keel serve` checks before it creates its data directory or
//! says where it listens. A host name is resolved, a port in use or a bad TLS pair
//! fails at once without leaving a data directory behind, and no `listening on https`
//! line is printed for a server whose certificate does not load.

mod process;

use process::{free_port, keel, Proc, BOUND};
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

/// Runs `keel serve` with `args` until it exits (bounded); returns its stdout and stderr.
fn serve_fails(args: &[&str], data: &std::path::Path) -> (String, String) {
    let mut child = keel()
        .arg("serve")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keel serve starts");
    let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let mut proc = Proc::of(child);
    let status = proc.wait_exit(BOUND);
    assert!(!status.success(), "keel serve {args:?} succeeded");
    let (mut out, mut err) = (String::new(), String::new());
    stdout.read_to_string(&mut out).unwrap();
    stderr.read_to_string(&mut err).unwrap();
    (out, err)
}

#[test]
fn a_host_name_is_accepted_and_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = keel()
        .args([
            "serve",
            "--listen",
            &format!("localhost:{port}"),
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("keel serve starts");
    let stdout = child.stdout.take().unwrap();
    let _proc = Proc::of(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(BOUND).expect("keel serve printed a line");
    let local = [
        format!("listening on http://127.0.0.1:{port}\n"),
        format!("listening on http://[::1]:{port}\n"),
    ];
    assert!(local.contains(&line), "{line:?}");
}

#[test]
fn a_port_in_use_fails_before_the_data_directory_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (out, err) = serve_fails(&["--listen", &addr], &data);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains(&format!("listening on {addr}:")), "{err}");
    assert!(!data.exists(), "keel serve made {}", data.display());
}

#[test]
fn an_unresolvable_host_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_, err) = serve_fails(&["--listen", "no-such-host.invalid:7070"], &data);
    assert!(
        err.contains("listening on no-such-host.invalid:7070:"),
        "{err}"
    );
    assert!(!data.exists());
}

#[test]
fn a_bad_certificate_fails_before_any_listening_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, "not a certificate\n").unwrap();
    std::fs::write(&key, "not a key\n").unwrap();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let (out, err) = serve_fails(&args, &data);
    assert!(!out.contains("listening on"), "{out}");
    assert!(err.contains("cert.pem"), "{err}");
    assert!(!data.exists(), "keel serve made {}", data.display());
    std::fs::remove_file(&key).unwrap();
    let (out, err) = serve_fails(&args, &data);
    assert!(!out.contains("listening on"), "{out}");
    assert!(err.contains("key.pem"), "{err}");
}
