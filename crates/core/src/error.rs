//! Errors for bad input: each names the file, the line and the field.

use std::fmt;
use std::path::{Path, PathBuf};

/// Exit code every binary uses for bad input (YAML, CSV, flags, a model that cannot fit).
pub const EXIT_BAD_INPUT: i32 = 2;

/// A problem with something the user wrote: a workload, a profile, a schedule or a flag.
///
/// Displayed as `FILE:LINE: field `FIELD`: MESSAGE`, so editors can jump to it.
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    /// The file that holds the bad value (or `<flags>` for command-line input).
    pub file: PathBuf,
    /// 1-based line of the value, when known.
    pub line: Option<u64>,
    /// Dotted path of the field, e.g. `arrivals.rate` or `models[1].arch`.
    pub field: String,
    /// What was wrong and what was expected.
    pub message: String,
}

impl InputError {
    /// A new error about `field` in `file` at `line`.
    pub fn new(
        file: impl AsRef<Path>,
        line: Option<u64>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        InputError {
            file: file.as_ref().to_path_buf(),
            line,
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if self.field.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": field `{}`: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for InputError {}

/// Any error of the core library: bad input, or an I/O failure on a named path.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user's input is wrong; exit with [`EXIT_BAD_INPUT`].
    #[error(transparent)]
    Input(#[from] InputError),
    /// Reading or writing a file failed.
    #[error("{path}: {cause}")]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error (not an error `source`, so that printing
        /// the chain does not say it twice).
        cause: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            cause: source,
        }
    }

    /// An input file that cannot be read (missing, unreadable, not UTF-8):
    /// bad input, so the binaries exit with [`EXIT_BAD_INPUT`].
    pub fn unreadable(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Input(InputError::new(
            path,
            None,
            "",
            format!("cannot read it: {source}"),
        ))
    }

    /// The process exit code for this error: 2 for bad input, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) => EXIT_BAD_INPUT,
            Error::Io { .. } => 1,
        }
    }
}

/// Result alias of the core library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
