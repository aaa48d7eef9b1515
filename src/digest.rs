//! Content hashes: the SHA-256 that provenance files, sweep keys and the fitted-table cache name inputs by.
//!
//! Input: bytes, or a reader streamed through in fixed-size pieces. Output: lower-case hex; and the
//! [`HashIndex`] of files' hashes kept by size, modification time and inode. A foundation module: it
//! imports nothing of simwatt.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Hex SHA-256 of everything `r` reads, streamed: a file of megabytes is hashed without being held
/// in memory whole (a fresh buffer of its size costs page faults on every run that hashes it).
pub fn sha256_reader_hex(mut r: impl std::io::Read) -> std::io::Result<String> {
    let mut h = Sha256::new();
    std::io::copy(&mut r, &mut h)?;
    Ok(hex(&h.finalize()))
}

/// Hex SHA-256 of the file at `path`, streamed ([`sha256_reader_hex`]).
pub fn sha256_file_hex(path: &Path) -> std::io::Result<String> {
    std::fs::File::open(path).and_then(sha256_reader_hex)
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256s of files recorded with the size, modification time and inode each had when it was hashed,
/// kept in a small JSON file (the fitted-table cache's `profile-hashes.json`): a later process may take
/// a file's hash from it while those stay the same, as `make` and git's index do, instead of reading
/// megabytes of profiles on every run. An entry is trusted only if the file's modification time is at
/// least [`RACY_NS`] before the moment it was hashed (a file written within that window of being
/// hashed could change again within one tick of the clock), and a caller that takes a hash from the
/// index is expected to verify it before it reports it (see `TableCache` in the predictor).
#[derive(Debug, Default)]
pub struct HashIndex {
    path: PathBuf,
    entries: BTreeMap<String, IndexEntry>,
}

/// How close to its hashing a file's modification time may be for its recorded hash to be trusted,
/// ns.
pub const RACY_NS: u64 = 2_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct IndexEntry {
    len: u64,
    mtime_ns: u64,
    ino: u64,
    hashed_at_ns: u64,
    sha256: String,
}

/// A file's size, modification time (ns since the epoch) and inode (0 where the platform has none).
fn stat(meta: &std::fs::Metadata) -> Option<(u64, u64, u64)> {
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let ino = 0;
    Some((meta.len(), u64::try_from(mtime.as_nanos()).ok()?, ino))
}

impl HashIndex {
    /// The index kept at `path`: empty if the file is missing or unreadable (it is only a cache).
    pub fn load(path: &Path) -> Self {
        let entries = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        HashIndex {
            path: path.to_path_buf(),
            entries,
        }
    }

    /// The recorded SHA-256 of `file` (an absolute path), if its metadata `meta` is what it was when
    /// it was hashed and it had not been modified within [`RACY_NS`] of that.
    pub fn get(&self, file: &Path, meta: &std::fs::Metadata) -> Option<&str> {
        let (len, mtime_ns, ino) = stat(meta)?;
        let e = self.entries.get(file.to_str()?)?;
        let settled = mtime_ns.checked_add(RACY_NS)? <= e.hashed_at_ns;
        ((e.len, e.mtime_ns, e.ino) == (len, mtime_ns, ino) && settled).then_some(e.sha256.as_str())
    }

    /// Records `sha256` for `file` with the metadata `meta` it had before it was read, hashed at
    /// `hashed_at`; returns whether the index changed.
    pub fn put(
        &mut self,
        file: &Path,
        meta: &std::fs::Metadata,
        sha256: &str,
        hashed_at: SystemTime,
    ) -> bool {
        let (Some((len, mtime_ns, ino)), Some(name), Ok(at)) = (
            stat(meta),
            file.to_str(),
            hashed_at.duration_since(UNIX_EPOCH),
        ) else {
            return false;
        };
        let e = IndexEntry {
            len,
            mtime_ns,
            ino,
            hashed_at_ns: u64::try_from(at.as_nanos()).unwrap_or(u64::MAX),
            sha256: sha256.to_string(),
        };
        self.entries.insert(name.to_string(), e.clone()) != Some(e)
    }

    /// Forgets `file`.
    pub fn remove(&mut self, file: &Path) {
        if let Some(name) = file.to_str() {
            self.entries.remove(name);
        }
    }

    /// Writes the index to its file, through a temporary file renamed into place, so that a process
    /// reading it at the same time sees the old index or the new one.
    pub fn save(&self) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".profile-hashes.{}.tmp", std::process::id()));
        let text = serde_json::to_vec_pretty(&self.entries).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}

/// SHA-256 of the sources and built-in data this binary was built from (see `build.rs`): names the code
/// behind a result where the crate version stays the same across changes.
pub const SOURCE_DIGEST: &str = env!("SIMWATT_SOURCE_DIGEST");

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `bytes` to `f` and sets its modification time a minute back.
    fn write_old(f: &Path, bytes: &[u8]) -> std::fs::Metadata {
        std::fs::write(f, bytes).unwrap();
        let old = SystemTime::now() - std::time::Duration::from_secs(60);
        let h = std::fs::File::options().write(true).open(f).unwrap();
        h.set_modified(old).unwrap();
        std::fs::metadata(f).unwrap()
    }

    #[test]
    fn an_index_entry_holds_while_its_file_keeps_its_size_and_time_and_had_settled() {
        let dir = tempfile::tempdir().unwrap();
        let (f, at) = (dir.path().join("mlp.csv"), dir.path().join("index.json"));
        let meta = write_old(&f, b"a,b\n1,2\n");
        let mut index = HashIndex::load(&at);
        assert_eq!(index.get(&f, &meta), None);
        assert!(index.put(&f, &meta, "abc", SystemTime::now()));
        index.save().unwrap();
        assert_eq!(HashIndex::load(&at).get(&f, &meta), Some("abc"));
        // Hashed within RACY_NS of its modification: not trusted.
        let modified = meta.modified().unwrap();
        let mut racy = HashIndex::load(&at);
        racy.put(
            &f,
            &meta,
            "abc",
            modified + std::time::Duration::from_secs(1),
        );
        assert_eq!(racy.get(&f, &meta), None);
        // Another size (the same time): not trusted.
        let longer = write_old(&f, b"a,b\n1,2\n3,4\n");
        assert_eq!(HashIndex::load(&at).get(&f, &longer), None);
        // Forgotten.
        let mut index = HashIndex::load(&at);
        index.remove(&f);
        assert_eq!(index.get(&f, &meta), None);
    }

    #[test]
    fn an_unreadable_index_is_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let (f, at) = (dir.path().join("mlp.csv"), dir.path().join("index.json"));
        let meta = write_old(&f, b"a\n");
        std::fs::write(&at, b"{ not json").unwrap();
        let mut index = HashIndex::load(&at);
        assert_eq!(index.get(&f, &meta), None);
        index.put(&f, &meta, "abc", SystemTime::now());
        index.save().unwrap();
        assert_eq!(HashIndex::load(&at).get(&f, &meta), Some("abc"));
    }

    #[test]
    fn a_streamed_hash_is_the_hash_of_the_bytes() {
        // Longer than std::io::copy's buffer, so the stream is hashed in several pieces.
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(sha256_reader_hex(&bytes[..]).unwrap(), sha256_hex(&bytes));
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
