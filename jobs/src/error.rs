//! A located error report: `file:line:column: message`, then the offending source line
//! with a caret under the span, so a reader can fix the file without searching it.

use std::fmt;
use std::ops::Range;

/// Why a job spec or pool file was refused, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    pub file: String,
    /// 1-based line of the start of the offending span.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    pub message: String,
    /// The source line holding the span, for the snippet; empty when the file is empty.
    source_line: String,
    /// Characters to underline, at least one.
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
        let column = source[line_start..start].chars().count() + 1;
        let width = source[start..end.min(line_end)].chars().count().max(1);
        let source_line = source[line_start..line_end].trim_end_matches('\r');
        SpecError {
            file: file.to_string(),
            line,
            column,
            message: message.into(),
            source_line: source_line.to_string(),
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
        let message = printable(&self.message);
        write!(f, "{}:{}:{}: {message}", self.file, self.line, self.column)?;
        if self.source_line.is_empty() {
            return Ok(());
        }
        let number = self.line.to_string();
        let gutter = " ".repeat(number.len());
        // Keep tabs so the caret lines up under the same characters the terminal shows.
        let pad: String = self
            .source_line
            .chars()
            .take(self.column - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "\n{gutter} |")?;
        write!(f, "\n{number} | {}", printable(&self.source_line))?;
        write!(f, "\n{gutter} | {pad}{}", "^".repeat(self.width))
    }
}

impl std::error::Error for SpecError {}

/// Replaces control characters (other than tab) so an untrusted file cannot send
/// terminal escape sequences through an error report.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\t' && c != '\n' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
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
}
