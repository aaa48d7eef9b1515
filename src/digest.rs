//! Content hashes: the SHA-256 that provenance files, sweep keys and the fitted-table cache name inputs by.
//!
//! Input: bytes, or a reader streamed through in fixed-size pieces. Output: lower-case hex. A foundation module: it imports nothing of simwatt.

use sha2::{Digest, Sha256};

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

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of the sources and built-in data this binary was built from (see `build.rs`): names the code
/// behind a result where the crate version stays the same across changes.
pub const SOURCE_DIGEST: &str = env!("SIMWATT_SOURCE_DIGEST");

#[cfg(test)]
mod tests {
    use super::*;

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
