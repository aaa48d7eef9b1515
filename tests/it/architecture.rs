//! The layers of the crate, checked from its source: no module imports a layer above its own, and no
//! two files import each other, directly or round a longer cycle.
//!
//! The layers, lowest first (docs/architecture.md draws them):
//! foundation (error, input, units, rng, digest, csvio, catalog, precision) -> config -> workload -> cluster -> sim ->
//! predictor -> power -> accounting -> metrics -> output / measured / measure / runfolder -> report / plots /
//! trace -> drivers -> cli. A module may import its own layer or any below; the file-level import graph
//! must be acyclic.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layer of each top-level module of `src/` (higher imports lower).
fn layer(module: &str) -> Option<u32> {
    Some(match module {
        "error" | "input" | "units" | "rng" | "digest" | "csvio" | "catalog" | "precision" => 0,
        "config" => 1,
        "workload" => 2,
        "cluster" => 3,
        "sim" => 4,
        "predictor" | "engine" => 5,
        "power" => 6,
        "accounting" | "microgrid" | "pv" => 7,
        "metrics" => 8,
        "output" | "measured" | "measure" | "runfolder" => 9,
        "report" | "plots" | "trace" => 10,
        "drivers" => 11,
        "cli" => 12,
        _ => return None,
    })
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src/ is readable") {
        let p = e.expect("a directory entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file under src/: `sim/mod.rs` -> ["sim"], `cluster/policy/vllm.rs` ->
/// ["cluster", "policy", "vllm"]; `lib.rs` and `main.rs` -> [].
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Source text without comments and string literals (so doc text and messages that mention
/// `crate::x` do not count as imports). `#[cfg(test)]` modules are cut: tests may reach anywhere.
fn code_only(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' && (i == 0 || b[i - 1] != b'\'') {
            // A raw string's hashes (r#"..."#) end it with the same count.
            let mut hashes = 0;
            let mut j = i;
            while j > 0 && b[j - 1] == b'#' {
                hashes += 1;
                j -= 1;
            }
            let raw = j > 0 && b[j - 1] == b'r';
            i += 1;
            while i < b.len() {
                if !raw && b[i] == b'\\' {
                    i += 2;
                    continue;
                }
                if b[i] == b'"' && (0..hashes).all(|k| b.get(i + 1 + k) == Some(&b'#')) {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            out.push_str("\"\"");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Every path named after `crate::` or `super::` in `code`, expanded through `{...}` groups, as
/// module paths relative to the crate root (`here` is the referring file's module path).
fn referenced_paths(code: &str, here: &[String]) -> Vec<Vec<String>> {
    fn ident(s: &[u8], mut i: usize) -> (String, usize) {
        let start = i;
        while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'_') {
            i += 1;
        }
        (String::from_utf8_lossy(&s[start..i]).into_owned(), i)
    }
    fn skip_ws(s: &[u8], mut i: usize) -> usize {
        while i < s.len() && s[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    }
    /// Parses `a::b::{c, d::e}` at `i`, pushing each full path; returns the index after it.
    fn tree(s: &[u8], i: usize, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
        let mut path = prefix.to_vec();
        let mut i = skip_ws(s, i);
        loop {
            if s.get(i) == Some(&b'{') {
                i += 1;
                loop {
                    i = skip_ws(s, i);
                    if s.get(i) == Some(&b'}') {
                        return i + 1;
                    }
                    i = tree(s, i, &path, out);
                    i = skip_ws(s, i);
                    match s.get(i) {
                        Some(b',') => i += 1,
                        Some(b'}') => return i + 1,
                        _ => return i,
                    }
                }
            }
            let (id, j) = ident(s, i);
            if id.is_empty() {
                out.push(path);
                return j;
            }
            path.push(id);
            i = j;
            if s.get(i) == Some(&b':') && s.get(i + 1) == Some(&b':') {
                i += 2;
            } else {
                out.push(path);
                return i;
            }
        }
    }
    let s = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let boundary = i == 0 || !(s[i - 1].is_ascii_alphanumeric() || s[i - 1] == b'_');
        let rest = &code[i..];
        if boundary && rest.starts_with("crate::") {
            i = tree(s, i + 7, &[], &mut out);
        } else if boundary && rest.starts_with("super::") {
            // `super` is the parent of the referring file's module (a mod.rs is its folder's module).
            let mut base = here.to_vec();
            let mut k = i;
            while code[k..].starts_with("super::") {
                base.pop();
                k += 7;
            }
            i = tree(s, k, &base, &mut out);
        } else {
            i += 1;
        }
    }
    out
}

struct Graph {
    /// File module paths (joined with "::") and the file modules each imports.
    edges: BTreeMap<String, BTreeSet<String>>,
}

fn build_graph() -> Graph {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Vec<String>> = files
        .iter()
        .map(|f| module_of(f.strip_prefix(&src).unwrap()))
        .collect();
    let mut edges = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        if rel == Path::new("main.rs") {
            continue;
        }
        let here = module_of(rel);
        let text = std::fs::read_to_string(f).expect("a source file is readable");
        let mut targets = BTreeSet::new();
        for p in referenced_paths(&code_only(&text), &here) {
            // The file that defines the referenced item: the longest prefix that is a module file.
            let target = (1..=p.len())
                .rev()
                .map(|n| p[..n].to_vec())
                .find(|m| modules.contains(m));
            if let Some(t) = target {
                if t != here && !here.starts_with(&t) {
                    targets.insert(t.join("::"));
                }
            }
        }
        edges.insert(here.join("::"), targets);
    }
    Graph { edges }
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

#[test]
fn every_top_level_module_has_a_layer() {
    let g = build_graph();
    let unknown: BTreeSet<&str> = g
        .edges
        .keys()
        .map(|m| top(m))
        .filter(|t| !t.is_empty() && layer(t).is_none())
        .collect();
    assert!(
        unknown.is_empty(),
        "modules without a layer (add them to tests/it/architecture.rs and docs/architecture.md): {unknown:?}"
    );
}

#[test]
fn no_module_imports_a_layer_above_its_own() {
    let g = build_graph();
    let mut upward = Vec::new();
    for (from, tos) in &g.edges {
        let Some(lf) = layer(top(from)) else { continue };
        for to in tos {
            let Some(lt) = layer(top(to)) else { continue };
            if lt > lf {
                upward.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that point up the layers:\n  {}",
        upward.join("\n  ")
    );
}

#[test]
fn the_file_import_graph_has_no_cycle() {
    let g = build_graph();
    // Depth-first search with colours; report the first cycle found with its path.
    #[derive(Clone, Copy, PartialEq)]
    enum C {
        White,
        Grey,
        Black,
    }
    let names: Vec<&String> = g.edges.keys().collect();
    let mut colour: BTreeMap<&str, C> = names.iter().map(|n| (n.as_str(), C::White)).collect();
    let mut cycles = Vec::new();
    fn visit<'a>(
        n: &'a str,
        g: &'a Graph,
        colour: &mut BTreeMap<&'a str, C>,
        stack: &mut Vec<&'a str>,
        cycles: &mut Vec<String>,
    ) {
        colour.insert(n, C::Grey);
        stack.push(n);
        for m in g.edges.get(n).into_iter().flatten() {
            match colour.get(m.as_str()).copied() {
                Some(C::Grey) => {
                    let at = stack.iter().position(|s| *s == m).unwrap_or(0);
                    let mut c: Vec<&str> = stack[at..].to_vec();
                    c.push(m);
                    cycles.push(c.join(" -> "));
                }
                Some(C::White) => visit(m, g, colour, stack, cycles),
                _ => {}
            }
        }
        stack.pop();
        colour.insert(n, C::Black);
    }
    for n in names {
        if colour[n.as_str()] == C::White {
            visit(n, &g, &mut colour, &mut Vec::new(), &mut cycles);
        }
    }
    assert!(
        cycles.is_empty(),
        "import cycles between files:\n  {}",
        cycles.join("\n  ")
    );
}

#[test]
fn the_checker_sees_imports_through_groups_and_super() {
    let code = code_only(
        "use crate::{a::{b, c::D}, e};\nuse super::f::G; // crate::ignored\nlet s = \"crate::nope\";",
    );
    let here = vec!["x".to_string(), "y".to_string()];
    let got = referenced_paths(&code, &here);
    let want: Vec<Vec<String>> = [
        vec!["a", "b"],
        vec!["a", "c", "D"],
        vec!["e"],
        vec!["x", "f", "G"],
    ]
    .iter()
    .map(|v| v.iter().map(|s| s.to_string()).collect())
    .collect();
    assert_eq!(got, want);
}
