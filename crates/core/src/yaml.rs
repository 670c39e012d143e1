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
        let loc = inner.location().filter(|l| l.line() > 0);
        let line = loc.map(|l| l.line());
        // Where the error points: the key path of the value (or of the
        // mapping a field is missing from), from the text itself.
        let at = loc
            .map(|l| key_path(text, l.line() as usize, l.column() as usize))
            .unwrap_or_default();
        let join = |leaf: &str| match (at.is_empty(), leaf.is_empty()) {
            (true, _) => leaf.to_string(),
            (false, true) => at.clone(),
            (false, false) => format!("{at}.{leaf}"),
        };
        let (field, message) = match inner {
            serde_saphyr::Error::SerdeUnknownField { field, .. } => {
                (join(field), inner.to_string())
            }
            serde_saphyr::Error::SerdeMissingField { field, .. } => {
                (join(field), inner.to_string())
            }
            serde_saphyr::Error::DuplicateMappingKey { key, .. } => {
                let key = key.clone().unwrap_or_default();
                (
                    at.clone(),
                    format!("key `{key}` appears twice in one mapping; keep one"),
                )
            }
            _ => (at.clone(), plain(&inner.to_string())),
        };
        // serde-saphyr appends its own location; ours comes first, so drop it.
        let message = match message.find(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        InputError::new(file, line, field, message)
    })
}

/// serde's terse type errors in words a workload's author reads.
fn plain(message: &str) -> String {
    for (terse, words) in [
        ("invalid u64", "expected a whole number >= 0"),
        ("invalid u32", "expected a whole number >= 0"),
        ("invalid floating point", "expected a number"),
        ("expected string scalar", "expected a string"),
    ] {
        if let Some(rest) = message.strip_prefix(terse) {
            return format!("{words}{rest}");
        }
    }
    message.to_string()
}

/// The dotted key path (`arrivals.process`) of the value at `line` and
/// `column` (both 1-based) of a YAML `text`: the last key before the
/// column, the keys of the flow mappings (`key: { ... }`) open there, and
/// the keys of the block mappings it is indented under. Empty when no key
/// precedes it.
pub fn key_path(text: &str, line: usize, column: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(here) = line.checked_sub(1).and_then(|i| lines.get(i)) else {
        return String::new();
    };
    let cut = here
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(here.len(), |(i, _)| i);
    // Keys on this line before the column; a `{` opens a level, `}` closes it.
    let mut levels: Vec<Option<String>> = vec![None];
    let prefix = &here[..cut];
    let mut word = String::new();
    for c in prefix.chars() {
        match c {
            ':' if !word.is_empty() => {
                *levels.last_mut().expect("never empty") = Some(word.clone());
                word.clear();
            }
            '{' => {
                levels.push(None);
                word.clear();
            }
            '}' => {
                if levels.len() > 1 {
                    levels.pop();
                }
                word.clear();
            }
            c if c.is_alphanumeric() || c == '_' || c == '-' => word.push(c),
            ' ' | '\t' if word.is_empty() => {}
            _ => word.clear(),
        }
    }
    let mut path: Vec<String> = levels.into_iter().flatten().collect();
    // Block parents: earlier lines indented less than this one's first key;
    // a parent holding a list gets the item's index (`models[1]`).
    let indent = |l: &str| l.len() - l.trim_start_matches([' ', '-']).len();
    let dash = |l: &str| {
        let t = l.trim_start_matches(' ');
        t.starts_with('-').then(|| l.len() - t.len())
    };
    let mut limit = indent(here);
    // The dash column of the list item we are in, and items seen above it.
    let mut item: Option<(usize, usize)> = dash(here).map(|d| (d, 0));
    for l in lines[..line - 1].iter().rev() {
        let t = l.trim_start_matches([' ', '-']);
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        match (item, dash(l)) {
            (Some((d, n)), Some(ld)) if ld == d => item = Some((d, n + 1)),
            // The item this line's block belongs to.
            (None, Some(ld)) if ld < limit && indent(l) <= limit => item = Some((ld, 0)),
            _ => {}
        }
        if indent(l) < limit {
            if let Some((key, _)) = t.split_once(':') {
                let key = key.trim();
                if !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
                {
                    match item {
                        Some((d, n)) if d >= indent(l) && dash(l).is_none_or(|ld| ld < d) => {
                            path.insert(0, format!("{key}[{n}]"));
                            item = None;
                        }
                        _ => path.insert(0, key.to_string()),
                    }
                }
            }
            if item.is_none() {
                item = dash(l).map(|d| (d, 0));
            }
            limit = indent(l);
            if limit == 0 {
                break;
            }
        }
    }
    path.join(".")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_follow_flow_and_block_mappings() {
        let text = "name: t\ncluster:\n  gpus: x\n  hardware: h\nmodels:\n  - { arch: a, max_batch: y }\narrivals: { process: p, rate: 1 }\n";
        assert_eq!(key_path(text, 1, 7), "name");
        assert_eq!(key_path(text, 3, 9), "cluster.gpus");
        assert_eq!(key_path(text, 6, 29), "models[0].max_batch");
        let list = "models:\n  - arch: a\n    max_batch: 2\n  - { arch: b }\n  - arch: c\n    max_batch: z\n";
        assert_eq!(key_path(list, 6, 16), "models[2].max_batch");
        assert_eq!(key_path(list, 4, 13), "models[1].arch");
        assert_eq!(key_path(text, 7, 22), "arrivals.process");
        assert_eq!(key_path(text, 7, 11), "arrivals");
        assert_eq!(key_path(text, 99, 1), "");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        seed: u64,
        inner: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        rate: f64,
        name: String,
    }

    fn err(text: &str) -> InputError {
        parse::<Doc>(Path::new("w.yaml"), text).unwrap_err()
    }

    #[test]
    fn type_errors_name_the_field_in_words() {
        let e = err("seed: -3\ninner: { rate: 1, name: n }\n").to_string();
        assert!(
            e.contains("w.yaml:1") && e.contains("`seed`") && e.contains("whole number"),
            "{e}"
        );
        let e = err("seed: 1\ninner: { rate: abc, name: n }\n").to_string();
        assert!(
            e.contains("`inner.rate`") && e.contains("expected a number"),
            "{e}"
        );
        let e = err("seed: 1\ninner:\n  rate: 1\n  name: [1]\n").to_string();
        assert!(
            e.contains("w.yaml:4") && e.contains("`inner.name`") && e.contains("expected a string"),
            "{e}"
        );
        let e = err("seed: 1\ninner: { rate: 1 }\n").to_string();
        assert!(e.contains("`inner.name`") && e.contains("missing"), "{e}");
        let e = err("seed: 1\ninner: { rate: 1, name: n }\nseed: 2\n").to_string();
        assert!(
            e.contains("`seed` appears twice") && !e.contains("Options"),
            "{e}"
        );
    }
}
