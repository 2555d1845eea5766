//! `keel worker --stream-stderr`: a command's stderr, line by line, appended to its
//! task's output stream while it runs, so `keel logs -f` follows a running shell task.
//! Each pipe read's complete lines go out in one emit, and the next read waits for it
//! to be stored: a command writing faster than the coordinator stores is slowed by the
//! pipe instead of growing memory here. A line longer than `MAX_LINE` goes out in
//! pieces; a refused emit (the job's stream bytes are full) stops streaming, and the
//! command runs on.

use keel_grpc::worker::Task;

/// Longest piece of one line sent as a frame.
const MAX_LINE: usize = 16 << 10;

/// Collects stderr's bytes into lines and emits them.
pub struct LineStream<'t> {
    task: &'t Task,
    partial: Vec<u8>,
    stopped: bool,
}

impl<'t> LineStream<'t> {
    pub fn new(task: &'t Task) -> LineStream<'t> {
        LineStream {
            task,
            partial: Vec::new(),
            stopped: false,
        }
    }

    /// Takes the next bytes read and emits every line they complete.
    pub async fn feed(&mut self, bytes: &[u8]) {
        if self.stopped {
            return;
        }
        self.partial.extend_from_slice(bytes);
        let mut frames = Vec::new();
        while let Some(end) = line_end(&self.partial) {
            frames.push(self.partial.drain(..end).collect());
        }
        self.emit(frames).await;
    }

    /// The command exited: its last line, unfinished, goes out as it is.
    pub async fn finish(&mut self) {
        if !self.stopped && !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.emit(vec![last]).await;
        }
    }

    async fn emit(&mut self, frames: Vec<Vec<u8>>) {
        if frames.is_empty() {
            return;
        }
        if let Err(e) = self.task.emit(frames).await {
            tracing::warn!(task = %self.task.task, error = %e, "stderr no longer streamed");
            self.stopped = true;
            self.partial = Vec::new();
        }
    }
}

/// Where the first line of `buf` ends (after its newline), or where a piece of an
/// overlong line does; `None` while the line is unfinished.
fn line_end(buf: &[u8]) -> Option<usize> {
    match buf.iter().position(|b| *b == b'\n') {
        Some(at) if at < MAX_LINE => Some(at + 1),
        _ if buf.len() >= MAX_LINE => Some(MAX_LINE),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_end_after_their_newline_and_long_ones_are_cut_in_pieces() {
        assert_eq!(line_end(b"one\ntwo\n"), Some(4));
        assert_eq!(line_end(b"unfinished"), None);
        assert_eq!(line_end(b""), None);
        assert_eq!(line_end(b"\n"), Some(1));
        let long = vec![b'x'; MAX_LINE + 5];
        assert_eq!(line_end(&long), Some(MAX_LINE));
        let mut exact = vec![b'x'; MAX_LINE - 1];
        exact.push(b'\n');
        assert_eq!(line_end(&exact), Some(MAX_LINE));
    }
}
