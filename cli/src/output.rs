//! Printing that survives its reader going away. `print!` panics with `failed printing
//! to stdout: Broken pipe` when stdout is a pipe whose reader exited (`keel status 7 |
//! head`); here such a command ends quietly with status 141, as a Unix tool killed by
//! SIGPIPE does. SIGPIPE itself stays ignored (Rust's default): restoring it would also
//! let a write to a closed socket or to a task's stdin kill the process.

use keel_jobs::terminal_safe;
use std::io::{ErrorKind, Write};

/// The status a shell reports for a process ended by SIGPIPE (128 + 13).
const CLOSED_PIPE: i32 = 141;

/// Writes `text` to stdout and flushes it. A closed reader ends the process quietly
/// (status 141); any other failure (a full disk) is reported and ends it with status 1.
pub fn stdout(text: &str) {
    stdout_bytes(text.as_bytes());
}

/// Writes `bytes` to stdout as they are, as [`stdout`] does.
pub fn stdout_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(CLOSED_PIPE);
        }
        stderr(&format!("keel: writing to stdout: {e}\n"));
        std::process::exit(1);
    }
}

/// Writes `text` to stdout, ignoring failures: for long-running commands (`keel serve`),
/// which keep serving when nobody reads what they print.
pub fn stdout_best_effort(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Writes `text` to stderr. Failures are ignored: there is nowhere left to report them.
pub fn stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `text` as one escaped line of at most `max` characters: its lines (trimmed, blank
/// ones dropped) joined with ` ⏎ `, then cut with an ellipsis.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ⏎ ");
    let safe = terminal_safe(&joined);
    match safe.char_indices().nth(max.saturating_sub(1)) {
        Some((cut, _)) if safe.chars().count() > max => format!("{}…", &safe[..cut]),
        _ => safe.into_owned(),
    }
}

/// Each line of `text` escaped ([`terminal_safe`]), the line breaks kept.
pub(crate) fn safe_lines(text: &str) -> String {
    text.lines().map(|l| terminal_safe(l) + "\n").collect()
}

/// `println!` through [`stdout`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::stdout(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` through [`stdout`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::stdout(&format!($($arg)*))
    };
}

/// `eprintln!` through [`stderr`].
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::stderr(&format!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {errln, out, outln};
