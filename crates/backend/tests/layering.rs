//! The backend is layered one way: each module imports only modules of the
//! layers before it (ARCHITECTURE.md draws the order). This test reads the
//! `src/` tree, resolves every `crate::` and `super::` path to the module it
//! names, and fails on an import of a later layer, or of another module of
//! the same layer.

use std::collections::BTreeSet;
use std::path::Path;

/// The layers, first to last. A module belongs to the entry that is the
/// longest prefix of its path; submodules of one entry may import each
/// other freely (they are one unit).
const LAYERS: &[&[&str]] = &[
    // 1. The device leaf: its own types first, then the devices.
    &[
        "device::error",
        "device::ops",
        "device::seeded",
        "host_cpus",
    ],
    &["device::host_buffer"],
    &["device"],
    // 2. Models, no device code: layout first, then what reads it.
    &["model::layout", "model::tiny"],
    &["model::weights", "model::shard", "model::reference"],
    &["model"],
    // 3. The forward pass.
    &["forward"],
    // 4. Host store, pool, executor.
    &["host_store", "pool", "span_log", "pace"],
    &["exec"],
    // 5. Calibration (shared leaves first), replay, benches, checks.
    &[
        "calibrate::options",
        "calibrate::layer_times",
        "calibrate::stalls",
    ],
    &["calibrate::passes", "calibrate::loaded"],
    &["calibrate::paced"],
    &["calibrate", "replay"],
    &["check", "warm_bench", "multi_bench", "multipath_bench"],
];

/// The layer index and unit of module `path` (`a::b`), if listed.
fn unit_of(path: &str) -> Option<(usize, &'static str)> {
    let mut best: Option<(usize, &'static str)> = None;
    for (i, layer) in LAYERS.iter().enumerate() {
        for &u in layer.iter() {
            let matches = path == u || path.starts_with(&format!("{u}::"));
            if matches && best.is_none_or(|(_, b)| u.len() > b.len()) {
                best = Some((i, u));
            }
        }
    }
    best
}

/// Blanks out comments, string and char literals, keeping line breaks, so
/// paths and braces are only those of code.
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |out: &mut String, s: &[u8]| {
        for &c in s {
            out.push(if c == b'\n' { '\n' } else { ' ' });
        }
    };
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest.starts_with(b"/*") {
            let end = src[i + 2..].find("*/").map_or(rest.len(), |e| e + 4);
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest.starts_with(b"r#\"") || rest.starts_with(b"r\"") {
            let hashes = rest[1..].iter().take_while(|&&c| c == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            let end = src[i + body..]
                .find(&close)
                .map_or(rest.len(), |e| body + e + close.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest[0] == b'\'' && (rest.get(2) == Some(&b'\'') || rest.get(1) == Some(&b'\\')) {
            // A char literal ('x' or '\n'); lifetimes ('a) are left alone.
            let end = rest[1..]
                .iter()
                .skip(1)
                .position(|&c| c == b'\'')
                .map_or(rest.len(), |e| e + 3);
            blank(&mut out, &rest[..end]);
            i += end;
        } else {
            let ch = src[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Every path of code (after `strip`) starting with `crate::` or `super::`,
/// with `use` groups (`a::{b, c::{d}}`) expanded, as
/// `(byte offset, segments)`.
fn paths(code: &str) -> Vec<(usize, Vec<String>)> {
    let b = code.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let at_word = i == 0 || !is_ident(b[i - 1]) && b[i - 1] != b':';
        let rest = &code[i..];
        if at_word && (rest.starts_with("crate::") || rest.starts_with("super::")) {
            let mut out = Vec::new();
            let end = parse_path(b, i, Vec::new(), &mut out);
            found.extend(out.into_iter().map(|p| (i, p)));
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
}

/// Parses one path (possibly a group) at `i` with segments `prefix` before
/// it; pushes each full path to `out`; returns the offset after it.
fn parse_path(
    b: &[u8],
    mut i: usize,
    mut prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'{' {
            i += 1;
            loop {
                while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
                    i += 1;
                }
                if i >= b.len() || b[i] == b'}' {
                    return i + 1;
                }
                i = parse_path(b, i, prefix.clone(), out);
                // Skip `as name` and anything else up to the next item.
                while i < b.len() && b[i] != b',' && b[i] != b'}' {
                    i += 1;
                }
            }
        }
        let start = i;
        while i < b.len() && is_ident(b[i]) {
            i += 1;
        }
        if i > start {
            prefix.push(String::from_utf8_lossy(&b[start..i]).into_owned());
        }
        if b[i..].starts_with(b"::") {
            i += 2;
        } else {
            out.push(prefix);
            return i;
        }
    }
}

/// The module path of the file at `rel` (relative to `src/`, `/`-separated).
fn module_of(rel: &str) -> Vec<String> {
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut segs: Vec<String> = rel.split('/').map(String::from).collect();
    if segs.last().is_some_and(|s| s == "mod") {
        segs.pop();
    }
    segs
}

/// The inline modules (`mod name {`) open at each byte of `code`, as a
/// count per offset: `super` inside one refers to the file's own module.
fn inline_depths(code: &str) -> Vec<usize> {
    let b = code.as_bytes();
    let mut depth = vec![0; b.len() + 1];
    let mut braces = 0usize;
    let mut open: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let at_word = i == 0 || !is_ident(b[i - 1]);
        if at_word && code[i..].starts_with("mod ") {
            let mut j = i + 4;
            while j < b.len() && (is_ident(b[j]) || b[j].is_ascii_whitespace()) {
                j += 1;
            }
            if j < b.len() && b[j] == b'{' {
                open.push(braces);
                for d in &mut depth[i..=j] {
                    *d = open.len() - 1;
                }
                braces += 1;
                i = j + 1;
                depth[i] = open.len();
                continue;
            }
        }
        match b[i] {
            b'{' => braces += 1,
            b'}' => {
                braces = braces.saturating_sub(1);
                if open.last() == Some(&braces) {
                    open.pop();
                }
            }
            _ => {}
        }
        depth[i] = open.len();
        i += 1;
    }
    depth[b.len()] = open.len();
    depth
}

/// Every module file under `src` (the library's tree: `main.rs` and `bin/`
/// are binaries, `lib.rs` only declares modules), as `(relative path, text)`.
fn sources(src: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p
                .strip_prefix(src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if p.is_dir() {
                if rel != "bin" {
                    dirs.push(p);
                }
            } else if rel.ends_with(".rs") && rel != "main.rs" && rel != "lib.rs" {
                files.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    files.sort();
    files
}

/// Every import of `src` that breaks the layer order, one line each.
fn violations(src: &Path) -> Vec<String> {
    let files = sources(src);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(rel, _)| module_of(rel)).collect();
    let mut bad = Vec::new();
    let listed: Vec<&str> = LAYERS.iter().flat_map(|l| l.iter().copied()).collect();
    for u in &listed {
        let segs: Vec<String> = u.split("::").map(String::from).collect();
        if !modules.contains(&segs) {
            bad.push(format!(
                "layer table lists `{u}`, which is not a module of src/"
            ));
        }
    }
    for (rel, text) in &files {
        let own = module_of(rel);
        let own_name = own.join("::");
        let Some((own_layer, own_unit)) = unit_of(&own_name) else {
            bad.push(format!(
                "src/{rel}: module `{own_name}` is in no layer (add it to LAYERS)"
            ));
            continue;
        };
        let code = strip(text);
        let depths = inline_depths(&code);
        for (at, segs) in paths(&code) {
            // Resolve to an absolute path: `super` leaves the inline
            // modules open here first, then the file's own modules.
            let mut abs = own.clone();
            let mut inline = depths[at];
            let mut k = 0;
            if segs[0] == "crate" {
                abs.clear();
                k = 1;
            }
            while k < segs.len() && segs[k] == "super" {
                if inline > 0 {
                    inline -= 1;
                } else {
                    abs.pop();
                }
                k += 1;
            }
            abs.extend(segs[k..].iter().cloned());
            // The module it names: the longest prefix that is a module file.
            let module = (1..=abs.len())
                .rev()
                .map(|n| abs[..n].to_vec())
                .find(|m| modules.contains(m));
            let Some(module) = module else { continue };
            let name = module.join("::");
            let Some((layer, unit)) = unit_of(&name) else {
                continue;
            };
            if unit == own_unit {
                continue;
            }
            let line = code[..at].matches('\n').count() + 1;
            if layer > own_layer {
                bad.push(format!(
                    "src/{rel}:{line}: `{own_unit}` (layer {own_layer}) imports `{name}` of a later layer ({layer})"
                ));
            } else if layer == own_layer {
                bad.push(format!(
                    "src/{rel}:{line}: `{own_unit}` imports `{name}`, another module of its own layer ({layer})"
                ));
            }
        }
    }
    bad
}

#[test]
fn the_backend_imports_only_earlier_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = violations(&src);
    assert!(bad.is_empty(), "layering broken:\n{}", bad.join("\n"));
}

/// Writes `files` (relative path, text) under a fresh `src/` and returns
/// its violations.
fn check_tree(files: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let listed: Vec<&str> = LAYERS.iter().flat_map(|l| l.iter().copied()).collect();
    // Every listed module, empty, so only the files given matter.
    for u in listed {
        let p = src.join(format!("{}.rs", u.replace("::", "/")));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "").unwrap();
    }
    for (rel, text) in files {
        std::fs::write(src.join(rel), text).unwrap();
    }
    violations(&src)
}

#[test]
fn an_upward_import_is_caught() {
    let bad = check_tree(&[("device.rs", "use crate::model::shard::ShardLayout;\n")]);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(
        bad[0].contains("src/device.rs:1") && bad[0].contains("model::shard"),
        "{bad:?}"
    );
    // Through a `use` group and `super`, too.
    let bad = check_tree(&[(
        "calibrate/passes.rs",
        "use crate::{device::Device, exec::{self, X}};\nfn f() { super::paced::g(); }\n",
    )]);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(bad[0].contains("calibrate::paced"), "{bad:?}");
    // A sibling of the same layer is refused; a comment or a string is not code.
    let bad = check_tree(&[(
        "replay.rs",
        "// crate::check\nconst S: &str = \"crate::check\";\nuse crate::calibrate::X;\n",
    )]);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(
        bad[0].contains("src/replay.rs:3") && bad[0].contains("own layer"),
        "{bad:?}"
    );
}

#[test]
fn super_inside_an_inline_module_is_the_file_itself() {
    let text = "fn f() {}\n#[cfg(test)]\nmod tests {\n    use super::*;\n    use super::super::host_buffer::X;\n}\n";
    assert!(check_tree(&[("device/cpu.rs", text)]).is_empty());
    let up = "mod tests {\n    use super::super::super::model::X;\n}\n";
    let bad = check_tree(&[("device/cpu.rs", up)]);
    assert_eq!(bad.len(), 1, "{bad:?}");
}

#[test]
fn an_unlisted_module_is_refused() {
    let bad = check_tree(&[("newthing.rs", "")]);
    assert!(bad.iter().any(|b| b.contains("newthing")), "{bad:?}");
}
