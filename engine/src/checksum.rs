//! Checksums: the MD5 behind every ETag and the per-bucket stored checksum kept for bit-rot checks.

use md5::{Digest, Md5};

/// The stored checksum a bucket keeps for each object (AIStore's `checksum.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ChecksumKind {
    None,
    /// XXH3-64: the default, several GB/s per core.
    #[default]
    Xxhash,
    Crc32c,
    /// Reuses the ETag's MD5 for single-part objects.
    Md5,
}

impl ChecksumKind {
    pub fn name(self) -> &'static str {
        match self {
            ChecksumKind::None => "none",
            ChecksumKind::Xxhash => "xxhash",
            ChecksumKind::Crc32c => "crc32c",
            ChecksumKind::Md5 => "md5",
        }
    }

    pub fn parse(name: &str) -> Option<ChecksumKind> {
        Some(match name {
            "none" => ChecksumKind::None,
            "xxhash" | "xxh3" => ChecksumKind::Xxhash,
            "crc32c" => ChecksumKind::Crc32c,
            "md5" => ChecksumKind::Md5,
            _ => return None,
        })
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            ChecksumKind::None => 0,
            ChecksumKind::Xxhash => 1,
            ChecksumKind::Crc32c => 2,
            ChecksumKind::Md5 => 3,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<ChecksumKind> {
        Some(match code {
            0 => ChecksumKind::None,
            1 => ChecksumKind::Xxhash,
            2 => ChecksumKind::Crc32c,
            3 => ChecksumKind::Md5,
            _ => return None,
        })
    }
}

/// A stored checksum value: the kind and its big-endian bytes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StoredChecksum {
    pub kind: ChecksumKind,
    pub value: Vec<u8>,
}

impl StoredChecksum {
    pub fn none() -> StoredChecksum {
        StoredChecksum { kind: ChecksumKind::None, value: Vec::new() }
    }

    pub fn hex(&self) -> String {
        hex::encode(&self.value)
    }
}

/// Hashes a body in one pass: MD5 for the ETag plus the bucket's stored checksum.
pub struct BodyHasher {
    md5: Md5,
    stored: StoredState,
    kind: ChecksumKind,
}

enum StoredState {
    None,
    Xxhash(Box<xxhash_rust::xxh3::Xxh3>),
    Crc32c(u32),
    Md5,
}

impl BodyHasher {
    pub fn new(kind: ChecksumKind) -> BodyHasher {
        let stored = match kind {
            ChecksumKind::None => StoredState::None,
            ChecksumKind::Xxhash => StoredState::Xxhash(Box::default()),
            ChecksumKind::Crc32c => StoredState::Crc32c(0),
            ChecksumKind::Md5 => StoredState::Md5,
        };
        BodyHasher { md5: Md5::new(), stored, kind }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        match &mut self.stored {
            StoredState::None | StoredState::Md5 => {}
            StoredState::Xxhash(h) => h.update(data),
            StoredState::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, data),
        }
    }

    /// Returns the MD5 digest and the stored checksum.
    pub fn finish(self) -> ([u8; 16], StoredChecksum) {
        let md5: [u8; 16] = self.md5.finalize().into();
        let value = match self.stored {
            StoredState::None => Vec::new(),
            StoredState::Xxhash(h) => h.digest().to_be_bytes().to_vec(),
            StoredState::Crc32c(crc) => crc.to_be_bytes().to_vec(),
            StoredState::Md5 => md5.to_vec(),
        };
        (md5, StoredChecksum { kind: self.kind, value })
    }
}

/// Computes the stored checksum of a whole buffer (validation on read, scrub).
pub fn stored_checksum_of(kind: ChecksumKind, data: &[u8]) -> StoredChecksum {
    let mut h = BodyHasher::new(kind);
    h.update(data);
    h.finish().1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        let (md5, x) = {
            let mut h = BodyHasher::new(ChecksumKind::Xxhash);
            h.update(b"hello ");
            h.update(b"world");
            h.finish()
        };
        assert_eq!(hex::encode(md5), "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(x.value, xxhash_rust::xxh3::xxh3_64(b"hello world").to_be_bytes());
        // CRC-32C of "123456789" is the standard check value 0xE3069283.
        let c = stored_checksum_of(ChecksumKind::Crc32c, b"123456789");
        assert_eq!(c.value, 0xE306_9283u32.to_be_bytes());
        let m = stored_checksum_of(ChecksumKind::Md5, b"");
        assert_eq!(m.hex(), "d41d8cd98f00b204e9800998ecf8427e");
        assert!(stored_checksum_of(ChecksumKind::None, b"x").value.is_empty());
    }

    #[test]
    fn names_round_trip() {
        for k in [ChecksumKind::None, ChecksumKind::Xxhash, ChecksumKind::Crc32c, ChecksumKind::Md5] {
            assert_eq!(ChecksumKind::parse(k.name()), Some(k));
            assert_eq!(ChecksumKind::from_code(k.code()), Some(k));
        }
    }
}
