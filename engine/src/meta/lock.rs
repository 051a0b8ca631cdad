//! Object lock (S3 WORM, D47): an object version's retention and legal hold, and a bucket's
//! lock configuration with its default retention. Checked by the engine before a version goes.

use crate::error::{Error, Result};

use super::codec::{Reader, Writer};

/// A retention mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// Users with `x-amz-bypass-governance-retention` may shorten, remove or delete through it.
    Governance,
    /// Nobody may shorten or remove it, or delete the version, until its date passes.
    Compliance,
}

impl LockMode {
    pub fn name(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }

    /// S3's names, exactly (lower case is refused, as S3 refuses it).
    pub fn parse(s: &str) -> Option<LockMode> {
        match s {
            "GOVERNANCE" => Some(LockMode::Governance),
            "COMPLIANCE" => Some(LockMode::Compliance),
            _ => None,
        }
    }

    fn code(self) -> u8 {
        match self {
            LockMode::Governance => 1,
            LockMode::Compliance => 2,
        }
    }

    fn from_code(c: u8) -> Result<Option<LockMode>> {
        match c {
            0 => Ok(None),
            1 => Ok(Some(LockMode::Governance)),
            2 => Ok(Some(LockMode::Compliance)),
            _ => Err(Error::BadMeta("lock mode")),
        }
    }
}

/// A version's retention: its mode and the time (ms since the epoch) it holds until.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub mode: LockMode,
    pub until_ms: u64,
}

/// What protects one object version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ObjectLock {
    pub retention: Option<Retention>,
    pub legal_hold: bool,
}

impl ObjectLock {
    /// `u8` mode (0 none, 1 GOVERNANCE, 2 COMPLIANCE), then `u64` retain-until ms when there is
    /// one, then `u8` legal hold.
    pub(super) fn write(&self, w: &mut Writer) {
        match self.retention {
            None => w.u8(0),
            Some(r) => {
                w.u8(r.mode.code());
                w.u64(r.until_ms);
            }
        }
        w.u8(self.legal_hold as u8);
    }

    pub(super) fn read(r: &mut Reader<'_>) -> Result<ObjectLock> {
        let retention = match LockMode::from_code(r.u8()?)? {
            None => None,
            Some(mode) => Some(Retention { mode, until_ms: r.u64()? }),
        };
        let legal_hold = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(Error::BadMeta("legal hold")),
        };
        Ok(ObjectLock { retention, legal_hold })
    }

    /// Whether the version may go (or its retention be shortened) now: not under a legal hold,
    /// not under a COMPLIANCE retention, and under a GOVERNANCE one only with `bypass`.
    pub fn check_removable(&self, now_ms: u64, bypass: bool) -> Result<()> {
        if self.legal_hold {
            return Err(Error::ObjectLocked("the object version is under a legal hold"));
        }
        match self.retention {
            Some(r) if r.until_ms > now_ms && (r.mode == LockMode::Compliance || !bypass) => {
                Err(Error::ObjectLocked("the object version is under retention"))
            }
            _ => Ok(()),
        }
    }

    /// Whether `new` may replace this retention now: a COMPLIANCE retention only grows (same
    /// mode, a later date); a GOVERNANCE one may be shortened, removed or made COMPLIANCE with
    /// `bypass`; a retention whose date has passed may be replaced freely.
    pub fn check_retention_change(&self, new: Option<Retention>, now_ms: u64, bypass: bool) -> Result<()> {
        let Some(old) = self.retention.filter(|r| r.until_ms > now_ms) else { return Ok(()) };
        let extends = new.is_some_and(|n| n.mode == old.mode && n.until_ms >= old.until_ms);
        if extends || (old.mode == LockMode::Governance && bypass) {
            return Ok(());
        }
        Err(Error::ObjectLocked("the object version's retention may not be shortened or changed"))
    }
}

/// A bucket's default retention: what a new version gets when its write names none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefaultRetention {
    pub mode: LockMode,
    /// Days, or years when `years`.
    pub amount: u32,
    pub years: bool,
}

impl DefaultRetention {
    /// The retention a version written at `now_ms` gets.
    pub fn from(&self, now_ms: u64) -> Retention {
        let days = if self.years { u64::from(self.amount) * 365 } else { u64::from(self.amount) };
        Retention { mode: self.mode, until_ms: now_ms.saturating_add(days * 86_400_000) }
    }

    /// `opt<(u8 mode, u8 unit: 0 days 1 years, u32 amount)>`.
    pub(super) fn write_opt(d: &Option<DefaultRetention>, w: &mut Writer) {
        match d {
            None => w.u8(0),
            Some(d) => {
                w.u8(1);
                w.u8(d.mode.code());
                w.u8(d.years as u8);
                w.u32(d.amount);
            }
        }
    }

    pub(super) fn read_opt(r: &mut Reader<'_>) -> Result<Option<DefaultRetention>> {
        match r.u8()? {
            0 => Ok(None),
            1 => {
                let mode = LockMode::from_code(r.u8()?)?.ok_or(Error::BadMeta("default retention mode"))?;
                let years = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(Error::BadMeta("default retention unit")),
                };
                Ok(Some(DefaultRetention { mode, amount: r.u32()?, years }))
            }
            _ => Err(Error::BadMeta("default retention presence")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400_000;

    #[test]
    fn removal_and_changes() {
        let gov = ObjectLock {
            retention: Some(Retention { mode: LockMode::Governance, until_ms: 10 * DAY }),
            legal_hold: false,
        };
        let comp = ObjectLock {
            retention: Some(Retention { mode: LockMode::Compliance, until_ms: 10 * DAY }),
            legal_hold: false,
        };
        let held = ObjectLock { retention: None, legal_hold: true };
        assert!(gov.check_removable(DAY, false).is_err());
        assert!(gov.check_removable(DAY, true).is_ok());
        assert!(comp.check_removable(DAY, true).is_err());
        assert!(comp.check_removable(11 * DAY, false).is_ok());
        assert!(held.check_removable(0, true).is_err());
        assert!(ObjectLock::default().check_removable(0, false).is_ok());
        let later = |mode| Some(Retention { mode, until_ms: 12 * DAY });
        let sooner = |mode| Some(Retention { mode, until_ms: 5 * DAY });
        assert!(comp.check_retention_change(later(LockMode::Compliance), DAY, false).is_ok());
        assert!(comp.check_retention_change(sooner(LockMode::Compliance), DAY, true).is_err());
        assert!(comp.check_retention_change(later(LockMode::Governance), DAY, true).is_err());
        assert!(comp.check_retention_change(None, DAY, true).is_err());
        assert!(gov.check_retention_change(sooner(LockMode::Governance), DAY, false).is_err());
        assert!(gov.check_retention_change(sooner(LockMode::Governance), DAY, true).is_ok());
        assert!(gov.check_retention_change(later(LockMode::Compliance), DAY, false).is_err());
        assert!(gov.check_retention_change(later(LockMode::Compliance), DAY, true).is_ok());
        // Past its date, anything goes.
        assert!(comp.check_retention_change(None, 11 * DAY, false).is_ok());
        let d = DefaultRetention { mode: LockMode::Governance, amount: 2, years: false };
        assert_eq!(d.from(DAY).until_ms, 3 * DAY);
    }
}
