//! What the workload tests share: the input error a text must give, and
//! the check that it names the field and the line and says what it should.

use std::path::Path;
use switchyard_core::{Error, InputError, Workload};

/// The input error parsing `text` (as `bad.yaml`) gives.
pub fn error_of(text: &str) -> InputError {
    match Workload::parse(Path::new("bad.yaml"), text) {
        Err(Error::Input(e)) => e,
        Err(other) => panic!("expected an input error, got {other}"),
        Ok(_) => panic!("expected an error"),
    }
}

/// 1-based line of the first line of `text` containing `needle`.
pub fn line_of(text: &str, needle: &str) -> u64 {
    text.lines().position(|l| l.contains(needle)).expect(needle) as u64 + 1
}

/// `text` is refused naming `field`, at the first line containing
/// `line_needle`, with a message that says `says`.
pub fn check(text: &str, field: &str, line_needle: &str, says: &str) {
    let e = error_of(text);
    assert_eq!(e.field, field, "{e}");
    assert_eq!(e.line, Some(line_of(text, line_needle)), "{e}");
    assert!(
        e.message.contains(says),
        "message `{}` should say `{says}`",
        e.message
    );
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("bad.yaml:{}: field `{field}`", e.line.unwrap())),
        "{shown}"
    );
}
