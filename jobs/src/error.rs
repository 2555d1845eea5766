//! A located error report: `file:line:column: message`, then the offending source line
//! with a caret under the span, so a reader can fix the file without searching it.
//!
//! Reports are bounded: the echoed line is cut to a window around the column and the
//! message to a few hundred characters, so a 50 MB value on one line yields a report of
//! a few hundred bytes, not a copy of the file. Everything taken from the file is passed
//! through [`terminal_safe`].

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// Characters of the source line shown around the column.
const WINDOW: usize = 200;
/// Characters shown before the column when the line is cut.
const LEAD: usize = WINDOW / 2;
/// Characters of a message kept (a message may quote the offending value).
const MAX_MESSAGE: usize = 400;

/// Why a job spec or pool file was refused, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// The file's path as given, for the message.
    pub file: String,
    /// 1-based line of the start of the offending span.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What is wrong, cut to a bounded length.
    pub message: String,
    /// At most [`WINDOW`] characters of the source line around the column; empty when
    /// the file is empty.
    snippet: String,
    /// Whether the line goes on before and after the snippet.
    cut_before: bool,
    cut_after: bool,
    /// Characters of the snippet before the span.
    lead: usize,
    /// Characters to underline, at least one and within the snippet.
    width: usize,
}

impl SpecError {
    /// An error at byte range `span` of `source`. Out-of-range or mid-character spans
    /// are clamped, so a wrong span still yields a report instead of a panic.
    pub fn at(file: &str, source: &str, span: Range<usize>, message: impl Into<String>) -> Self {
        let start = floor_char_boundary(source, span.start);
        let end = floor_char_boundary(source, span.end.max(start));
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let line = source[..start].matches('\n').count() + 1;
        let before = &source[line_start..start];
        let column = before.chars().count() + 1;
        // The window starts up to LEAD characters before the span.
        let skip = column.saturating_sub(1 + LEAD);
        let window_start = before
            .char_indices()
            .nth(skip)
            .map_or(start, |(i, _)| line_start + i);
        let full_line = source[window_start..line_end].trim_end_matches('\r');
        let window_end = full_line
            .char_indices()
            .nth(WINDOW)
            .map_or(window_start + full_line.len(), |(i, _)| window_start + i);
        let snippet = &source[window_start..window_end];
        let lead = column - 1 - skip;
        let shown_after = snippet.chars().count().saturating_sub(lead);
        let width = source[start..end.min(line_end)]
            .chars()
            .take(shown_after)
            .count()
            .max(1);
        SpecError {
            file: file.to_string(),
            line,
            column,
            message: message.into(),
            snippet: snippet.to_string(),
            cut_before: skip > 0,
            cut_after: window_end < window_start + full_line.len(),
            lead,
            width,
        }
    }

    /// An error about the file as a whole, reported at its first character.
    pub fn whole_file(file: &str, source: &str, message: impl Into<String>) -> Self {
        SpecError::at(file, source, 0..0, message)
    }

    /// A file that is not UTF-8, located at its first invalid byte.
    pub fn invalid_utf8(file: &str, bytes: &[u8], valid_up_to: usize) -> Self {
        let valid = bytes.get(..valid_up_to).unwrap_or_default();
        let prefix = std::str::from_utf8(valid).unwrap_or_default();
        let mut e = SpecError::at(file, prefix, prefix.len()..prefix.len(), "");
        e.message = "the file is not valid UTF-8".to_string();
        e
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = terminal_safe(&self.message);
        let message = match message.char_indices().nth(MAX_MESSAGE) {
            Some((cut, _)) => Cow::Owned(format!("{}…", &message[..cut])),
            None => message,
        };
        let file = terminal_safe(&self.file);
        write!(f, "{file}:{}:{}: {message}", self.line, self.column)?;
        if self.snippet.is_empty() {
            return Ok(());
        }
        let number = self.line.to_string();
        let gutter = " ".repeat(number.len());
        // Tabs are kept so the caret lines up under the same characters the terminal
        // shows; every other character is as wide as its escaped form.
        let shown: String = self
            .snippet
            .split('\t')
            .map(terminal_safe)
            .collect::<Vec<_>>()
            .join("\t");
        let mut pad = String::from(if self.cut_before { " " } else { "" });
        for c in self.snippet.chars().take(self.lead) {
            match c {
                '\t' => pad.push('\t'),
                c => pad.extend(std::iter::repeat_n(' ', escaped_width(c))),
            }
        }
        let carets: usize = self
            .snippet
            .chars()
            .skip(self.lead)
            .take(self.width)
            .map(escaped_width)
            .sum();
        let (open, close) = (
            if self.cut_before { "…" } else { "" },
            if self.cut_after { "…" } else { "" },
        );
        write!(f, "\n{gutter} |")?;
        write!(f, "\n{number} | {open}{shown}{close}")?;
        write!(f, "\n{gutter} | {pad}{}", "^".repeat(carets.max(1)))
    }
}

impl std::error::Error for SpecError {}

/// Makes text from a file, a user or a worker safe to print on a terminal: control
/// characters (C0, DEL, C1, including newline, carriage return and tab) become `\n`,
/// `\r`, `\t` or `\xNN`, and the characters that reorder or break text (bidirectional
/// embeddings, overrides, isolates and marks: U+202A–U+202E, U+2066–U+2069, U+200E,
/// U+200F, U+061C; line and paragraph separators U+2028, U+2029) become `\u{NNNN}`.
/// An escape sequence can then neither clear the screen nor move the cursor, and a
/// right-to-left override cannot make a name read as something else.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{061c}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    use std::fmt::Write;
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if !needs_escape(c) => out.push(c),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
    }
}

/// Columns `c` takes once escaped (one for an ordinary character).
fn escaped_width(c: char) -> usize {
    let mut s = String::new();
    push_escaped(&mut s, c);
    s.chars().count()
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_line_and_column_in_characters() {
        let src = "a = 1\n\tb = \"é\" x\n";
        let x = src.find('x').unwrap();
        let e = SpecError::at("f.toml", src, x..x + 1, "bad x");
        assert_eq!((e.line, e.column), (2, 10));
        assert_eq!(
            e.to_string(),
            "f.toml:2:10: bad x\n  |\n2 | \tb = \"é\" x\n  | \t        ^"
        );
    }

    #[test]
    fn clamps_spans_outside_the_source() {
        let e = SpecError::at("f.toml", "é", 1..99, "m");
        assert_eq!((e.line, e.column, e.width), (1, 1, 1));
        let e = SpecError::at("f.toml", "", 5..9, "m");
        assert_eq!(e.to_string(), "f.toml:1:1: m");
    }

    #[test]
    fn invalid_utf8_points_at_the_first_bad_byte() {
        let bytes = [b"a = 1\nb = ".as_slice(), &[0xff]].concat();
        let err = std::str::from_utf8(&bytes).unwrap_err();
        let e = SpecError::invalid_utf8("f.toml", &bytes, err.valid_up_to());
        assert_eq!((e.line, e.column), (2, 5));
    }

    #[test]
    fn control_characters_are_not_printed() {
        let e = SpecError::whole_file("f.toml", "x\u{1b}[2J", "bad \u{1b}");
        assert!(!e.to_string().contains('\u{1b}'));
    }

    #[test]
    fn escapes_control_and_bidi_characters() {
        let cases = [
            ("a\u{1b}[2Jb", "a\\x1b[2Jb"),
            ("line\rover", "line\\rover"),
            ("bell\u{7}", "bell\\x07"),
            ("nul\0", "nul\\x00"),
            ("evil\u{202e}txt.exe", "evil\\u{202e}txt.exe"),
            ("two\nlines\ttab", "two\\nlines\\ttab"),
            (
                "\u{9b}c1 \u{2066}iso\u{2069} \u{200f}",
                "\\x9bc1 \\u{2066}iso\\u{2069} \\u{200f}",
            ),
            ("plain é ✓", "plain é ✓"),
        ];
        for (raw, shown) in cases {
            assert_eq!(terminal_safe(raw), shown, "{raw:?}");
        }
        assert!(matches!(terminal_safe("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_long_line_is_shown_as_a_window_around_the_column() {
        let value = "x".repeat(1_000_000);
        let src = format!("a = 1\nb = \"{value}\" oops {value}\n");
        let at = src.find("oops").unwrap();
        let e = SpecError::at("f.toml", &src, at..at + 4, "bad");
        assert_eq!((e.line, e.column), (2, at - 6 + 1));
        let report = e.to_string();
        assert!(report.len() < 1_000, "{} bytes", report.len());
        let lines: Vec<&str> = report.lines().collect();
        let shown = lines[2].strip_prefix("2 | ").unwrap();
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        assert_eq!(shown.chars().count(), WINDOW + 2);
        let caret = lines[3].strip_prefix("  | ").unwrap();
        let column = caret.find('^').unwrap();
        assert_eq!(
            &shown.chars().skip(column).take(4).collect::<String>(),
            "oops"
        );
        assert_eq!(caret.trim_start(), "^^^^");
    }

    #[test]
    fn a_span_longer_than_the_window_is_underlined_within_it() {
        let src = format!("data = \"{}\"\n", "y".repeat(5_000));
        let e = SpecError::at("f.toml", &src, 7..src.len() - 1, "too long");
        let report = e.to_string();
        assert!(report.len() < 1_000, "{} bytes", report.len());
        let carets = report.lines().last().unwrap().matches('^').count();
        assert_eq!(carets, WINDOW - 7);
    }

    #[test]
    fn a_message_quoting_a_huge_value_is_cut() {
        let e = SpecError::whole_file("f.toml", "", format!("bad {}", "z".repeat(100_000)));
        let report = e.to_string();
        assert!(report.ends_with('…'));
        assert_eq!(
            report.chars().count(),
            "f.toml:1:1: ".len() + MAX_MESSAGE + 1
        );
    }

    #[test]
    fn a_job_file_with_a_50_mb_value_yields_a_short_report() {
        let huge = "p".repeat(50 << 20);
        let src = format!(
            "[job]\nname = \"big\"\npriority = \"{huge}\"\n\n[[task]]\nid = \"a\"\ncommand = \"x\"\n"
        );
        let e = crate::load_job("big.toml", &src, &crate::Limits::default()).unwrap_err();
        let report = e.to_string();
        assert!(report.len() < 2_000, "{} bytes", report.len());
        assert!(
            report.starts_with("big.toml:3:12: field `priority`"),
            "{report}"
        );
    }

    #[test]
    fn tabs_and_escapes_keep_the_caret_under_the_span() {
        let src = "\ta\u{1b}b = 1";
        let e = SpecError::at("f.toml", src, 3..4, "here");
        let report = e.to_string();
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines[2], "1 | \ta\\x1bb = 1");
        assert_eq!(lines[3], "  | \t     ^");
    }
}
