//! Diagnostics: one problem in one file, located by line and column and printed the way
//! compilers print them, so editors can jump to it.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Whether a problem stops the file from being used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem: `path:line:col: what is wrong (what was expected)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    /// 1-based line; 0 when the problem concerns the file as a whole.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub col: usize,
    pub severity: Severity,
    pub message: String,
    pub expected: Option<String>,
}

impl Diagnostic {
    /// A problem with the file as a whole (unreadable, too big, a symlink out of the tree).
    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            path: path.to_path_buf(),
            line: 1,
            col: 1,
            severity: Severity::Error,
            message: message.into(),
            expected: None,
        }
    }

    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.path.display(), self.line, self.col)?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(expected) = &self.expected {
            write!(f, " ({expected})")?;
        }
        Ok(())
    }
}

/// Where a value was written, kept so that a problem found later, when the file the value
/// names is read, still points at that line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl Location {
    pub fn error(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            path: self.path.clone(),
            line: self.line,
            col: self.col,
            severity: Severity::Error,
            message: message.into(),
            expected: None,
        }
    }
}

/// A text file being read, able to turn byte offsets into line and column.
///
/// `offset` is where `text` starts inside the file, so a front-matter block parsed on its own
/// still reports positions of the whole file.
#[derive(Debug, Clone, Copy)]
pub struct SourceText<'a> {
    pub path: &'a Path,
    pub text: &'a str,
    pub offset: usize,
    pub full: &'a str,
}

impl<'a> SourceText<'a> {
    pub fn whole(path: &'a Path, text: &'a str) -> Self {
        SourceText {
            path,
            text,
            offset: 0,
            full: text,
        }
    }

    /// The part of the file from byte `start` (within this text) to its end... as a new
    /// source whose offsets are still those of the file.
    pub fn slice(&self, range: Range<usize>) -> SourceText<'a> {
        SourceText {
            path: self.path,
            text: &self.text[range.clone()],
            offset: self.offset + range.start,
            full: self.full,
        }
    }

    /// Line and column (both 1-based) of a byte offset within `text`.
    pub fn position(&self, at: usize) -> (usize, usize) {
        let at = (self.offset + at).min(self.full.len());
        let before = &self.full[..floor_char_boundary(self.full, at)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    /// The place of a byte offset within `text`.
    pub fn location(&self, at: usize) -> Location {
        let (line, col) = self.position(at);
        Location {
            path: self.path.to_path_buf(),
            line,
            col,
        }
    }

    /// An error at a byte range within `text`.
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        let (line, col) = self.position(span.start);
        Diagnostic {
            path: self.path.to_path_buf(),
            line,
            col,
            severity: Severity::Error,
            message: message.into(),
            expected: None,
        }
    }
}

fn floor_char_boundary(s: &str, mut at: usize) -> usize {
    while at > 0 && !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let path = Path::new("r.md");
        let src = SourceText::whole(path, "+++\ntitle = \"Du avgör\"\nx = 1\n");
        assert_eq!(src.position(0), (1, 1));
        assert_eq!(src.position(src.text.find("x =").unwrap()), (3, 1));
        let after_o = src.text.find("r\"").unwrap();
        assert_eq!(src.position(after_o), (2, 17));
    }

    #[test]
    fn sliced_sources_report_file_positions() {
        let path = Path::new("r.md");
        let full = "+++\na = 1\n+++\n";
        let src = SourceText::whole(path, full).slice(4..10);
        assert_eq!(src.position(0), (2, 1));
        let d = src.error(0..1, "bad").expected("good");
        assert_eq!(d.to_string(), "r.md:2:1: bad (good)");
    }
}
