//! An SVG timeline of a run: one row per worker, one bar per attempt coloured by how it
//! ended, and marks for faults. Plain SVG with hover titles, readable in any browser.

use keel_engine::{TaskId, Time};
use std::fmt::Write;

/// One attempt as it ran: a bar on the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bar {
    /// The worker that ran it.
    pub worker: String,
    /// The task.
    pub task: TaskId,
    /// The attempt number.
    pub attempt: u32,
    /// When its lease started.
    pub start: Time,
    /// When it ended.
    pub end: Time,
    /// `succeeded`, `failed`, or the reason the lease ended.
    pub outcome: &'static str,
}

/// A fault as it happened, for the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// When it happened.
    pub at: Time,
    /// A worker name, or `coordinator`, `network`, `client`, `all`.
    pub who: String,
    /// The fault, in words.
    pub what: String,
}

const LEFT: f64 = 90.0;
const WIDTH: f64 = 1100.0;
const ROW: f64 = 26.0;
const TOP: f64 = 30.0;

fn colour(outcome: &str) -> &'static str {
    match outcome {
        "succeeded" => "#3a9d5d",
        "failed" => "#d64541",
        "lease_expired" | "worker_lost" | "attempt_timed_out" => "#e89a2c",
        "job_cancelled" | "deadline_exceeded" | "finished" => "#8e8e8e",
        _ => "#5b7dbd",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Draws `bars` and `marks` for `workers` (rows in this order) up to `end` ms.
pub fn svg(title: &str, workers: &[String], bars: &[Bar], marks: &[Mark], end: Time) -> String {
    let end = bars
        .iter()
        .map(|b| b.end)
        .chain(marks.iter().map(|m| m.at))
        .max()
        .unwrap_or(0)
        .max(end)
        .max(1);
    let mut canvas = Canvas {
        workers,
        end,
        out: String::new(),
    };
    canvas.frame(title);
    canvas.bars(bars);
    canvas.marks(marks);
    canvas.legend();
    canvas.out.push_str("</svg>\n");
    canvas.out
}

/// The drawing under way: rows for `workers`, time from 0 to `end`.
struct Canvas<'a> {
    workers: &'a [String],
    end: Time,
    out: String,
}

impl Canvas<'_> {
    fn x(&self, t: Time) -> f64 {
        LEFT + WIDTH * t as f64 / self.end as f64
    }

    fn height(&self) -> f64 {
        TOP + ROW * self.workers.len() as f64 + 40.0
    }

    fn row(&self, worker: &str) -> Option<usize> {
        self.workers.iter().position(|w| w == worker)
    }

    /// The root element, the title, and a labelled line per worker.
    fn frame(&mut self, title: &str) {
        let (height, end) = (self.height(), self.end);
        let _ = writeln!(
            self.out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="monospace" font-size="11">"#,
            LEFT + WIDTH + 20.0
        );
        let _ = writeln!(
            self.out,
            r#"<text x="4" y="16" font-size="13">{} (0 to {end} ms)</text>"#,
            esc(title)
        );
        for (i, w) in self.workers.iter().enumerate() {
            let y = TOP + ROW * i as f64;
            let _ = writeln!(
                self.out,
                r##"<text x="4" y="{}">{}</text><line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/>"##,
                y + 16.0,
                esc(w),
                y + ROW,
                LEFT + WIDTH,
                y + ROW
            );
        }
    }

    fn bars(&mut self, bars: &[Bar]) {
        for b in bars {
            let Some(row) = self.row(&b.worker) else {
                continue;
            };
            let y = TOP + ROW * row as f64 + 4.0;
            let (start, w) = (self.x(b.start), (self.x(b.end) - self.x(b.start)).max(1.0));
            let _ = writeln!(
                self.out,
                r#"<rect x="{start:.1}" y="{y}" width="{w:.1}" height="{}" fill="{}"><title>{} attempt {} {}..{} ms: {}</title></rect>"#,
                ROW - 8.0,
                colour(b.outcome),
                b.task,
                b.attempt,
                b.start,
                b.end,
                b.outcome
            );
        }
    }

    /// A line per fault: across its worker's row, or across every row.
    fn marks(&mut self, marks: &[Mark]) {
        for m in marks {
            let (y1, y2) = match self.row(&m.who) {
                Some(row) => (TOP + ROW * row as f64, TOP + ROW * (row + 1) as f64),
                None => (TOP, TOP + ROW * self.workers.len() as f64),
            };
            let _ = writeln!(
                self.out,
                r##"<line x1="{0:.1}" y1="{y1}" x2="{0:.1}" y2="{y2}" stroke="#b0008a" stroke-width="2"><title>{1} ms {2}: {3}</title></line><text x="{0:.1}" y="{4}" fill="#b0008a" font-size="9">{3}</text>"##,
                self.x(m.at),
                m.at,
                esc(&m.who),
                esc(&m.what),
                y1 + 9.0
            );
        }
    }

    fn legend(&mut self) {
        let legend = [
            "succeeded",
            "failed",
            "lease_expired",
            "job_cancelled",
            "revoked",
        ];
        let ly = self.height() - 20.0;
        for (i, l) in legend.iter().enumerate() {
            let lx = LEFT + 150.0 * i as f64;
            let _ = writeln!(
                self.out,
                r#"<rect x="{lx}" y="{ly}" width="12" height="10" fill="{}"/><text x="{}" y="{}">{l}</text>"#,
                colour(l),
                lx + 16.0,
                ly + 9.0
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_row_per_worker_a_bar_per_attempt_and_fault_marks() {
        let bars = vec![Bar {
            worker: "w2".into(),
            task: TaskId::new(1),
            attempt: 1,
            start: 0,
            end: 500,
            outcome: "succeeded",
        }];
        let marks = vec![Mark {
            at: 250,
            who: "w1".into(),
            what: "crash <x>".into(),
        }];
        let out = svg("t", &["w1".into(), "w2".into()], &bars, &marks, 1_000);
        assert!(out.starts_with("<svg"));
        assert_eq!(out.matches("<rect").count(), 1 + 5);
        assert!(out.contains("#3a9d5d"));
        assert!(out.contains("crash &lt;x&gt;"));
        assert!(out.contains(">w2</text>"));
    }
}
