//! Fixture checks shared by the record-format tests.
#![allow(dead_code)]

use engine::{FlexAlgorithm, FlexChecksum, SystemMeta};

/// Checks that `encoded` is `fixture` (hex, whitespace ignored) and that the fixture decodes
/// back to the value.
pub fn check<T: PartialEq + std::fmt::Debug>(
    name: &str,
    encoded: &[u8],
    fixture: &str,
    decode: impl Fn(&[u8]) -> T,
    value: &T,
) {
    let fixture: String = fixture.split_whitespace().collect();
    assert_eq!(hex::encode(encoded), fixture, "{name}: the encoder writes other bytes than the fixture");
    let bytes = hex::decode(&fixture).expect("fixture is hex");
    assert_eq!(&decode(&bytes), value, "{name}: the fixture decodes to another value");
}

/// Checks that a record written in an older format still decodes to the value.
pub fn check_old<T: PartialEq + std::fmt::Debug>(name: &str, fixture: &str, decode: impl Fn(&[u8]) -> T, value: &T) {
    let fixture: String = fixture.split_whitespace().collect();
    let bytes = hex::decode(&fixture).expect("fixture is hex");
    assert_eq!(&decode(&bytes), value, "{name}: the old fixture decodes to another value");
}

pub fn system() -> SystemMeta {
    SystemMeta { content_type: Some("text/plain".into()), cache_control: Some("no-cache".into()), ..Default::default() }
}

pub fn flex(parts: u32) -> FlexChecksum {
    FlexChecksum { algorithm: FlexAlgorithm::Crc32c, value: vec![0xde, 0xad, 0xbe, 0xef], parts }
}
