//! YAML reading with errors that name the file, the line and the field.

use crate::error::InputError;
use serde::de::DeserializeOwned;
use serde_saphyr::{Location, Spanned};
use std::path::{Path, PathBuf};

/// Parses `text` (the contents of `file`) into `T`, turning syntax and type
/// errors into an [`InputError`] with the line and, where serde knows it, the field.
pub fn parse<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, InputError> {
    serde_saphyr::from_str(text).map_err(|e| {
        let inner = e.without_snippet();
        let line = inner.location().map(|l| l.line()).filter(|&l| l > 0);
        let field = match inner {
            serde_saphyr::Error::SerdeUnknownField { field, .. } => field.clone(),
            serde_saphyr::Error::SerdeMissingField { field, .. } => field.to_string(),
            _ => String::new(),
        };
        let message = inner.to_string();
        // serde-saphyr appends its own location; ours comes first, so drop it.
        let message = match message.find(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        InputError::new(file, line, field, message)
    })
}

/// Context for validating a parsed YAML file: builds errors that point into it.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The file being validated.
    pub file: PathBuf,
}

impl Ctx {
    /// A context for `file`.
    pub fn new(file: impl AsRef<Path>) -> Self {
        Ctx {
            file: file.as_ref().to_path_buf(),
        }
    }

    /// An error about `field` at `loc`.
    pub fn err(
        &self,
        loc: &Location,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) -> InputError {
        let line = Some(loc.line()).filter(|&l| l > 0);
        InputError::new(&self.file, line, field, msg)
    }

    /// The value of a float that must be strictly positive (and finite).
    pub fn positive(&self, v: &Spanned<f64>, field: &str, unit: &str) -> Result<f64, InputError> {
        if v.value.is_finite() && v.value > 0.0 {
            Ok(v.value)
        } else {
            Err(self.err(
                &v.referenced,
                field,
                format!("expected a number > 0 ({unit}), got {}", v.value),
            ))
        }
    }

    /// The value of a float that must be zero or more (and finite).
    pub fn non_negative(
        &self,
        v: &Spanned<f64>,
        field: &str,
        unit: &str,
    ) -> Result<f64, InputError> {
        if v.value.is_finite() && v.value >= 0.0 {
            Ok(v.value)
        } else {
            Err(self.err(
                &v.referenced,
                field,
                format!("expected a number >= 0 ({unit}), got {}", v.value),
            ))
        }
    }

    /// The value of an integer that must be at least 1.
    pub fn at_least_one(&self, v: &Spanned<u64>, field: &str) -> Result<u64, InputError> {
        if v.value >= 1 {
            Ok(v.value)
        } else {
            Err(self.err(&v.referenced, field, "expected an integer >= 1, got 0"))
        }
    }
}
