//! A process whose stdout and stderr lines are kept (the newest few thousand), so a test
//! can wait for a line it prints and show its last words when the test fails.

use super::Proc;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// Lines kept per process; older ones are dropped.
const KEPT: usize = 4_000;

/// The lines a process printed, tagged `out:` or `err:`.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<VecDeque<String>>>);

impl Lines {
    fn push(&self, line: String) {
        let mut lines = self.0.lock().expect("lines lock");
        if lines.len() == KEPT {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// Kept lines containing `needle`.
    pub fn count(&self, needle: &str) -> usize {
        let lines = self.0.lock().expect("lines lock");
        lines.iter().filter(|l| l.contains(needle)).count()
    }

    /// The last `n` lines, one per line.
    pub fn tail(&self, n: usize) -> String {
        let lines = self.0.lock().expect("lines lock");
        let skip = lines.len().saturating_sub(n);
        let shown: Vec<&str> = lines.iter().skip(skip).map(String::as_str).collect();
        shown.join("\n")
    }

    fn read_from(&self, stream: impl Read + Send + 'static, tag: &'static str) {
        let lines = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                lines.push(format!("{tag}: {line}"));
            }
        });
    }
}

/// A child killed when dropped (see [`Proc`]), with its output kept in [`Lines`].
pub struct Logged {
    pub proc: Proc,
    pub lines: Lines,
}

impl Logged {
    pub fn spawn(mut cmd: Command) -> Logged {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the process starts");
        let lines = Lines::default();
        if let Some(out) = child.stdout.take() {
            lines.read_from(out, "out");
        }
        if let Some(err) = child.stderr.take() {
            lines.read_from(err, "err");
        }
        Logged {
            proc: Proc::of(child),
            lines,
        }
    }

    /// Whether the process is still running (it may be stopped).
    pub fn running(&mut self) -> bool {
        self.proc.running()
    }
}
