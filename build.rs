//! Build script: a digest of the sources and built-in data, so that results can name the code that
//! made them even when the crate version stays the same.
//!
//! Output: the `SIMWATT_SOURCE_DIGEST` environment variable at compile time, the SHA-256 of every file
//! under `src/`, `Cargo.lock`, the YAML files at the top of `profiles/`, `profiles/power/`,
//! `profiles/engine/` and `regions/`, and every file under `regions/hourly/` (the data built into the
//! binary; each file's path relative to the crate and its bytes, in path order). A sweep shard and the fitted-table cache key on it; provenance.json records it.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn walk(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if recursive {
                walk(&p, true, out);
            }
        } else if recursive || p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
}

fn main() {
    let root = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let mut files = Vec::new();
    walk(&root.join("src"), true, &mut files);
    walk(&root.join("regions/hourly"), true, &mut files);
    println!("cargo:rerun-if-changed=regions/hourly");
    for d in ["profiles", "profiles/power", "profiles/engine", "regions"] {
        walk(&root.join(d), false, &mut files);
        println!("cargo:rerun-if-changed={d}");
    }
    files.push(root.join("Cargo.lock"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.lock");
    let mut rel: Vec<(String, PathBuf)> = files
        .into_iter()
        .map(|p| {
            let r = p
                .strip_prefix(&root)
                .unwrap_or(&p)
                .to_string_lossy()
                .replace('\\', "/");
            (r, p)
        })
        .collect();
    rel.sort();
    let mut h = Sha256::new();
    for (r, p) in &rel {
        let bytes = std::fs::read(p).unwrap_or_default();
        h.update(r.as_bytes());
        h.update([0]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=SIMWATT_SOURCE_DIGEST={digest}");
}
