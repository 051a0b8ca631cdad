//! Checksums: the MD5 behind every ETag and the per-bucket stored checksum kept for bit-rot checks.

use fast_md5::Md5;

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
    pub value: ChecksumBytes,
}

/// A stored checksum's bytes, kept inline (at most 16: an MD5): a record decodes without
/// allocating for it (issue 16).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct ChecksumBytes {
    len: u8,
    buf: [u8; 16],
}

impl ChecksumBytes {
    /// `bytes`, or `None` when longer than any stored checksum.
    pub fn new(bytes: &[u8]) -> Option<ChecksumBytes> {
        let mut buf = [0u8; 16];
        buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(ChecksumBytes { len: bytes.len() as u8, buf })
    }
}

impl std::ops::Deref for ChecksumBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for ChecksumBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl<const N: usize> PartialEq<[u8; N]> for ChecksumBytes {
    fn eq(&self, other: &[u8; N]) -> bool {
        **self == other[..]
    }
}

impl PartialEq<&[u8]> for ChecksumBytes {
    fn eq(&self, other: &&[u8]) -> bool {
        **self == **other
    }
}

impl AsRef<[u8]> for ChecksumBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl StoredChecksum {
    pub fn none() -> StoredChecksum {
        StoredChecksum { kind: ChecksumKind::None, value: ChecksumBytes::default() }
    }

    pub fn hex(&self) -> String {
        hex::encode(self.value)
    }
}

/// Hashes a body in one pass: MD5 for the ETag plus the bucket's stored checksum.
pub struct BodyHasher {
    /// `None` when the caller hashes the MD5 itself (`skip_md5`).
    md5: Option<Md5>,
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
        BodyHasher { md5: Some(Md5::new()), stored, kind }
    }

    /// Stops hashing the MD5 (it reads back as zeros) unless it is the stored checksum: for a
    /// caller that computes it elsewhere, off the shard.
    pub fn skip_md5(&mut self) {
        if !matches!(self.stored, StoredState::Md5) {
            self.md5 = None;
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        if let Some(m) = &mut self.md5 {
            m.update(data);
        }
        match &mut self.stored {
            StoredState::None | StoredState::Md5 => {}
            StoredState::Xxhash(h) => h.update(data),
            StoredState::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, data),
        }
    }

    /// Returns the MD5 digest and the stored checksum.
    pub fn finish(self) -> ([u8; 16], StoredChecksum) {
        let md5: [u8; 16] = self.md5.map_or([0; 16], |m| m.finalize());
        let value = match self.stored {
            StoredState::None => ChecksumBytes::default(),
            StoredState::Xxhash(h) => inline(&h.digest().to_be_bytes()),
            StoredState::Crc32c(crc) => inline(&crc.to_be_bytes()),
            StoredState::Md5 => inline(&md5),
        };
        (md5, StoredChecksum { kind: self.kind, value })
    }
}

/// A checksum of at most 16 bytes, inline.
fn inline<const N: usize>(bytes: &[u8; N]) -> ChecksumBytes {
    const { assert!(N <= 16) };
    let mut buf = [0u8; 16];
    buf[..N].copy_from_slice(bytes);
    ChecksumBytes { len: N as u8, buf }
}

/// Computes the stored checksum of a whole buffer (validation on read, scrub).
pub fn stored_checksum_of(kind: ChecksumKind, data: &[u8]) -> StoredChecksum {
    let mut h = BodyHasher::new(kind);
    h.update(data);
    h.finish().1
}

/// A flexible checksum algorithm (`x-amz-checksum-*`), computed in the same pass as the MD5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlexAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl FlexAlgorithm {
    pub const ALL: [FlexAlgorithm; 5] = [
        FlexAlgorithm::Crc32,
        FlexAlgorithm::Crc32c,
        FlexAlgorithm::Crc64Nvme,
        FlexAlgorithm::Sha1,
        FlexAlgorithm::Sha256,
    ];

    /// The name S3 uses (`CRC32`, `CRC64NVME`, ...).
    pub fn name(self) -> &'static str {
        match self {
            FlexAlgorithm::Crc32 => "CRC32",
            FlexAlgorithm::Crc32c => "CRC32C",
            FlexAlgorithm::Crc64Nvme => "CRC64NVME",
            FlexAlgorithm::Sha1 => "SHA1",
            FlexAlgorithm::Sha256 => "SHA256",
        }
    }

    /// The lowercase suffix of its header and XML element (`crc32` in `x-amz-checksum-crc32`).
    pub fn suffix(self) -> &'static str {
        match self {
            FlexAlgorithm::Crc32 => "crc32",
            FlexAlgorithm::Crc32c => "crc32c",
            FlexAlgorithm::Crc64Nvme => "crc64nvme",
            FlexAlgorithm::Sha1 => "sha1",
            FlexAlgorithm::Sha256 => "sha256",
        }
    }

    pub fn parse(name: &str) -> Option<FlexAlgorithm> {
        FlexAlgorithm::ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            FlexAlgorithm::Crc32 | FlexAlgorithm::Crc32c => 4,
            FlexAlgorithm::Crc64Nvme => 8,
            FlexAlgorithm::Sha1 => 20,
            FlexAlgorithm::Sha256 => 32,
        }
    }

    /// CRCs can be combined into a whole-object value (FULL_OBJECT); hashes only composite.
    pub fn is_crc(self) -> bool {
        matches!(self, FlexAlgorithm::Crc32 | FlexAlgorithm::Crc32c | FlexAlgorithm::Crc64Nvme)
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            FlexAlgorithm::Crc32 => 1,
            FlexAlgorithm::Crc32c => 2,
            FlexAlgorithm::Crc64Nvme => 3,
            FlexAlgorithm::Sha1 => 4,
            FlexAlgorithm::Sha256 => 5,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<FlexAlgorithm> {
        FlexAlgorithm::ALL.into_iter().find(|a| a.code() == code)
    }

    /// Digest of one buffer.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut h = FlexHasher::new(self);
        h.update(data);
        h.finish()
    }
}

/// Streaming state of one flexible checksum.
pub enum FlexHasher {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64Nvme(crc64fast_nvme::Digest),
    Sha1(Box<sha1::Sha1>),
    Sha256(Box<sha2::Sha256>),
}

impl FlexHasher {
    pub fn new(alg: FlexAlgorithm) -> FlexHasher {
        match alg {
            FlexAlgorithm::Crc32 => FlexHasher::Crc32(crc32fast::Hasher::new()),
            FlexAlgorithm::Crc32c => FlexHasher::Crc32c(0),
            FlexAlgorithm::Crc64Nvme => FlexHasher::Crc64Nvme(crc64fast_nvme::Digest::new()),
            FlexAlgorithm::Sha1 => FlexHasher::Sha1(Box::default()),
            FlexAlgorithm::Sha256 => FlexHasher::Sha256(Box::default()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            FlexHasher::Crc32(h) => h.update(data),
            FlexHasher::Crc32c(c) => *c = crc32c::crc32c_append(*c, data),
            FlexHasher::Crc64Nvme(d) => d.write(data),
            FlexHasher::Sha1(h) => sha1::Digest::update(h.as_mut(), data),
            FlexHasher::Sha256(h) => sha2::Digest::update(h.as_mut(), data),
        }
    }

    /// The digest, big-endian for CRCs (as S3 base64-encodes them).
    pub fn finish(self) -> Vec<u8> {
        match self {
            FlexHasher::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            FlexHasher::Crc32c(c) => c.to_be_bytes().to_vec(),
            FlexHasher::Crc64Nvme(d) => d.sum64().to_be_bytes().to_vec(),
            FlexHasher::Sha1(h) => sha1::Digest::finalize(*h).to_vec(),
            FlexHasher::Sha256(h) => sha2::Digest::finalize(*h).to_vec(),
        }
    }
}

/// The reflected polynomials of the three CRCs, for combining.
fn crc_poly(alg: FlexAlgorithm) -> Option<(u64, usize)> {
    match alg {
        FlexAlgorithm::Crc32 => Some((0xEDB8_8320, 32)),
        FlexAlgorithm::Crc32c => Some((0x82F6_3B78, 32)),
        FlexAlgorithm::Crc64Nvme => Some((0x9A6C_9329_AC4B_C9B5, 64)),
        _ => None,
    }
}

fn gf2_times(mat: &[u64], mut vec: u64) -> u64 {
    let mut sum = 0;
    let mut i = 0;
    while vec != 0 {
        if vec & 1 != 0 {
            sum ^= mat[i];
        }
        vec >>= 1;
        i += 1;
    }
    sum
}

fn gf2_square(square: &mut [u64], mat: &[u64]) {
    for n in 0..mat.len() {
        square[n] = gf2_times(mat, mat[n]);
    }
}

/// The CRC of `A || B` from `crc(A)`, `crc(B)` and `len(B)` (zlib's `crc32_combine`, generalised
/// to the 64-bit CRC): how whole-object CRCs of multipart objects are made without reading.
pub fn crc_combine(alg: FlexAlgorithm, crc_a: &[u8], crc_b: &[u8], len_b: u64) -> Option<Vec<u8>> {
    let (poly, width) = crc_poly(alg)?;
    let bytes = width / 8;
    if crc_a.len() != bytes || crc_b.len() != bytes {
        return None;
    }
    let val = |b: &[u8]| b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    let (mut crc1, crc2) = (val(crc_a), val(crc_b));
    let mut len2 = len_b;
    if len2 > 0 {
        let mut even = vec![0u64; width];
        let mut odd = vec![0u64; width];
        odd[0] = poly;
        let mut row = 1u64;
        for slot in odd.iter_mut().skip(1) {
            *slot = row;
            row <<= 1;
        }
        gf2_square(&mut even, &odd);
        gf2_square(&mut odd, &even);
        loop {
            gf2_square(&mut even, &odd);
            if len2 & 1 != 0 {
                crc1 = gf2_times(&even, crc1);
            }
            len2 >>= 1;
            if len2 == 0 {
                break;
            }
            gf2_square(&mut odd, &even);
            if len2 & 1 != 0 {
                crc1 = gf2_times(&odd, crc1);
            }
            len2 >>= 1;
            if len2 == 0 {
                break;
            }
        }
    }
    let out = crc1 ^ crc2;
    Some(out.to_be_bytes()[8 - bytes..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_bytes_hold_up_to_sixteen() {
        assert_eq!(&*ChecksumBytes::new(&[7; 16]).unwrap(), &[7; 16]);
        assert!(ChecksumBytes::new(&[7; 17]).is_none(), "longer than any stored checksum: refused");
        assert!(ChecksumBytes::new(&[]).unwrap().is_empty());
    }

    /// The MD5 behind every ETag agrees with RustCrypto's md-5 on the RFC 1321 vectors and on
    /// random data of every length around the block size and beyond, fed in random pieces.
    #[test]
    fn md5_agrees_with_md5_crate() {
        use md5::Digest;
        for (input, want) in [
            (&b""[..], "d41d8cd98f00b204e9800998ecf8427e"),
            (b"a", "0cc175b9c0f1b6a831c399e269772661"),
            (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
            (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (b"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            (
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            assert_eq!(hex::encode(fast_md5::digest(input)), want);
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let data: Vec<u8> = (0..300_000).map(|_| next() as u8).collect();
        let mut lengths: Vec<usize> = (0..200).chain([255, 256, 257, 4095, 4096, 4097, 65_536, 299_999]).collect();
        lengths.extend((0..50).map(|_| (next() % 300_000) as usize));
        for len in lengths {
            let want = md5::Md5::digest(&data[..len]);
            let mut h = Md5::new();
            let mut at = 0;
            while at < len {
                let step = ((next() % 200) as usize + 1).min(len - at);
                h.update(&data[at..at + step]);
                at += step;
            }
            assert_eq!(h.finalize(), want.as_slice(), "length {len}");
        }
    }

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
    fn flexible_known_answers() {
        use base64::Engine;
        let b64 = |v: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(v);
        // Values boto3 sends for b"hello world" and b"abc" (captured on the wire).
        assert_eq!(b64(FlexAlgorithm::Crc32.digest(b"hello world")), "DUoRhQ==");
        assert_eq!(b64(FlexAlgorithm::Crc32.digest(b"abc")), "NSRBwg==");
        // Standard check values of "123456789".
        assert_eq!(FlexAlgorithm::Crc32c.digest(b"123456789"), 0xE306_9283u32.to_be_bytes());
        assert_eq!(FlexAlgorithm::Crc64Nvme.digest(b"123456789"), 0xAE8B_1486_0A79_9888u64.to_be_bytes());
        assert_eq!(hex::encode(FlexAlgorithm::Sha1.digest(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            hex::encode(FlexAlgorithm::Sha256.digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        for a in FlexAlgorithm::ALL {
            assert_eq!(FlexAlgorithm::parse(a.name()), Some(a));
            assert_eq!(FlexAlgorithm::from_code(a.code()), Some(a));
            assert_eq!(a.digest(b"x").len(), a.digest_len());
        }
    }

    #[test]
    fn crcs_combine_like_the_concatenation() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for alg in [FlexAlgorithm::Crc32, FlexAlgorithm::Crc32c, FlexAlgorithm::Crc64Nvme] {
            for cut in [0usize, 1, 7, 4096, 9_999, 10_000] {
                let (a, b) = data.split_at(cut);
                let combined = crc_combine(alg, &alg.digest(a), &alg.digest(b), b.len() as u64).unwrap();
                assert_eq!(combined, alg.digest(&data), "{alg:?} cut {cut}");
            }
        }
        assert!(crc_combine(FlexAlgorithm::Sha1, &[0; 20], &[0; 20], 1).is_none());
    }

    #[test]
    fn names_round_trip() {
        for k in [ChecksumKind::None, ChecksumKind::Xxhash, ChecksumKind::Crc32c, ChecksumKind::Md5] {
            assert_eq!(ChecksumKind::parse(k.name()), Some(k));
            assert_eq!(ChecksumKind::from_code(k.code()), Some(k));
        }
    }
}
