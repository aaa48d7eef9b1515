//! Content hashes: the SHA-256 that provenance files, sweep keys and the fitted-table cache name inputs by.
//!
//! Input: bytes. Output: lower-case hex. A foundation module: it imports nothing of simwatt.

use sha2::{Digest, Sha256};

/// Hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of the sources and built-in data this binary was built from (see `build.rs`): names the code
/// behind a result where the crate version stays the same across changes.
pub const SOURCE_DIGEST: &str = env!("SIMWATT_SOURCE_DIGEST");
