//! The primitives records are written with: little-endian integers, length-prefixed bytes,
//! optional strings, and the stored headers of objects and uploads.

use crate::error::{Error, Result};
use crate::limits;

use super::SystemMeta;

/// System metadata (six `opt<str>`) then user metadata (`u16` count of `str` pairs).
pub(super) fn write_headers(w: &mut Writer, system: &SystemMeta, user: &[(String, String)]) {
    for f in system.fields() {
        w.opt_str(f.as_deref());
    }
    w.u16(u16::try_from(user.len()).expect("user metadata is bounded by USER_METADATA_BYTES_MAX"));
    for (k, v) in user {
        w.bytes(k.as_bytes());
        w.bytes(v.as_bytes());
    }
}

pub(super) fn read_headers(r: &mut Reader<'_>) -> Result<(SystemMeta, Vec<(String, String)>)> {
    let system = SystemMeta {
        content_type: r.opt_str()?,
        content_encoding: r.opt_str()?,
        content_disposition: r.opt_str()?,
        cache_control: r.opt_str()?,
        expires: r.opt_str()?,
        content_language: r.opt_str()?,
    };
    let pairs = r.u16()? as usize;
    let mut user = Vec::with_capacity(pairs.min(64));
    for _ in 0..pairs {
        user.push((r.str()?, r.str()?));
    }
    Ok((system, user))
}

pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u128(&mut self, v: u128) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn raw(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        let len = u32::try_from(v.len()).expect("record fields are bounded by META_RECORD_BYTES_MAX");
        self.u32(len);
        self.0.extend_from_slice(v);
    }
    pub(crate) fn opt_str(&mut self, v: Option<&str>) {
        match v {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.bytes(s.as_bytes());
            }
        }
    }
}

pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(Error::BadMeta("record truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("length checked")))
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("length checked")))
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("length checked")))
    }
    pub(crate) fn u128(&mut self) -> Result<u128> {
        Ok(u128::from_le_bytes(self.take(16)?.try_into().expect("length checked")))
    }
    pub(crate) fn array16(&mut self) -> Result<[u8; 16]> {
        Ok(self.take(16)?.try_into().expect("length checked"))
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.u32()? as usize;
        if len > limits::META_RECORD_BYTES_MAX.max(limits::INLINE_BYTES_MAX) {
            return Err(Error::BadMeta("field longer than a record may be"));
        }
        self.take(len)
    }
    pub(crate) fn str(&mut self) -> Result<String> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| Error::BadMeta("string is not UTF-8"))
    }
    pub(crate) fn opt_str(&mut self) -> Result<Option<String>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            _ => Err(Error::BadMeta("option presence byte")),
        }
    }
}
