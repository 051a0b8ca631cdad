//! Which mountpaths make up this node, and in which generation (DESIGN D24).
//!
//! Every mountpath of a node holds the same record, `<root>/keel-node`, rewritten (to a
//! temporary file, fsynced, renamed) at every start with a new epoch:
//! ```text
//! keel-node 1
//! node <16 hex digits: the node's id, the same on all its mountpaths>
//! epoch <decimal: the generation of the node's last start>
//! member <16 hex: mountpath id> active <path>
//! member <16 hex: mountpath id> detached <decimal: epoch of the detach> <path>
//! ```
//! Every index record a run writes carries its epoch. A member missing at start stops the start
//! until it is detached (`keel mountpath detach DIR`): writes made without it must be able to win
//! over what it holds when it returns. A returning member is reconciled before it serves: its
//! records of keys written or deleted after its last epoch, and of buckets deleted (or deleted
//! and created again) meanwhile, go.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The record's file name in a mountpath's root.
pub const NODE_FILE: &str = "keel-node";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberState {
    Active,
    /// Detached by the operator at this epoch: the node runs without it.
    Detached {
        at: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The mountpath's placement id (its `keel-mountpath` file).
    pub id: u64,
    /// Where it was last seen.
    pub path: PathBuf,
    pub state: MemberState,
}

/// The first line of a node record, naming its format. A change of what the record holds is a
/// new format (and a new fixture in `engine/tests/record_format.rs`).
pub const NODE_RECORD_FORMAT: &str = "keel-node 1";

/// The node record every mountpath holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRecord {
    pub node: u64,
    pub epoch: u64,
    pub members: Vec<Member>,
}

fn bad(why: &str) -> Error {
    Error::Membership(format!("malformed {NODE_FILE} file: {why}"))
}

impl NodeRecord {
    pub fn encode(&self) -> String {
        let mut s = format!("{NODE_RECORD_FORMAT}\nnode {:016x}\nepoch {}\n", self.node, self.epoch);
        for m in &self.members {
            match m.state {
                MemberState::Active => s.push_str(&format!("member {:016x} active {}\n", m.id, m.path.display())),
                MemberState::Detached { at } => {
                    s.push_str(&format!("member {:016x} detached {at} {}\n", m.id, m.path.display()))
                }
            }
        }
        s
    }

    pub fn decode(text: &str) -> Result<NodeRecord> {
        // Lines end at '\n' only: a path may hold any other byte, '\r' included.
        let mut lines = text.strip_suffix('\n').unwrap_or(text).split('\n');
        if lines.next() != Some(NODE_RECORD_FORMAT) {
            return Err(bad("unknown format"));
        }
        let hex = |v: &str| u64::from_str_radix(v, 16).map_err(|_| bad("id is not hex"));
        let node = hex(lines.next().and_then(|l| l.strip_prefix("node ")).ok_or_else(|| bad("no node line"))?)?;
        let epoch = lines
            .next()
            .and_then(|l| l.strip_prefix("epoch "))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("no epoch line"))?;
        let mut members = Vec::new();
        for line in lines {
            let rest = line.strip_prefix("member ").ok_or_else(|| bad("unknown line"))?;
            let (id, rest) = rest.split_once(' ').ok_or_else(|| bad("short member line"))?;
            let (state, path) = if let Some(path) = rest.strip_prefix("active ") {
                (MemberState::Active, path)
            } else if let Some(rest) = rest.strip_prefix("detached ") {
                let (at, path) = rest.split_once(' ').ok_or_else(|| bad("short member line"))?;
                (MemberState::Detached { at: at.parse().map_err(|_| bad("detach epoch"))? }, path)
            } else {
                return Err(bad("member state"));
            };
            members.push(Member { id: hex(id)?, path: PathBuf::from(path), state });
        }
        Ok(NodeRecord { node, epoch, members })
    }

    /// The record in `root`, if there is one.
    pub fn read(root: &Path) -> Result<Option<NodeRecord>> {
        match std::fs::read_to_string(root.join(NODE_FILE)) {
            Ok(text) => NodeRecord::decode(&text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the record into `root` durably: a temporary file, fsynced, renamed over the old one.
    pub fn write(&self, root: &Path) -> Result<()> {
        if let Some(m) = self.members.iter().find(|m| m.path.as_os_str().as_encoded_bytes().contains(&b'\n')) {
            return Err(Error::Membership(format!("a mountpath path may not contain a newline: {:?}", m.path)));
        }
        let tmp = root.join(format!("{NODE_FILE}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(self.encode().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, root.join(NODE_FILE))?;
        crate::mountpath::sync_dir(root)?;
        Ok(())
    }

    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    /// Members detached and not back.
    pub fn detached(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| matches!(m.state, MemberState::Detached { .. }))
    }
}

/// What a mountpath directory given at start holds, read without creating anything.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The directory as given, made absolute (canonical when it exists).
    pub path: PathBuf,
    /// Its mountpath id, if it has one.
    pub id: Option<u64>,
    pub record: Option<NodeRecord>,
}

/// An absolute form of `p`: canonical when it exists, else joined to the working directory.
pub fn absolute(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| std::env::current_dir().map_or_else(|_| p.to_path_buf(), |d| d.join(p)))
}

pub fn peek(root: &Path) -> Result<Seen> {
    let path = absolute(root);
    let id = crate::mountpath::read_id(&path)?;
    let record = if id.is_some() { NodeRecord::read(&path)? } else { None };
    Ok(Seen { path, id, record })
}

/// What a start does with the mountpaths it was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub node: u64,
    /// The epoch this run stamps on what it writes (one past the newest record's).
    pub epoch: u64,
    /// Given mountpaths coming back after being detached: (position among the given, the last
    /// epoch they saw). They are reconciled before the node serves.
    pub returning: Vec<(usize, u64)>,
    /// Given mountpaths that have an id but no record: they join only if they hold no objects.
    pub unrecorded: Vec<usize>,
    /// Members that stay detached.
    pub detached: Vec<Member>,
}

/// Decides a start: who is a member, who is missing, who returns, who is new.
pub fn plan(given: &[Seen], new_node: u64) -> std::result::Result<Plan, String> {
    let newest = given.iter().filter_map(|g| g.record.as_ref()).max_by_key(|r| r.epoch);
    let Some(a) = newest else {
        // A new node, or one from before node records: every given mountpath is a member.
        return Ok(Plan {
            node: new_node,
            epoch: 1,
            returning: Vec::new(),
            unrecorded: given.iter().enumerate().filter(|(_, g)| g.id.is_some()).map(|(i, _)| i).collect(),
            detached: Vec::new(),
        });
    };
    let mut plan =
        Plan { node: a.node, epoch: a.epoch + 1, returning: Vec::new(), unrecorded: Vec::new(), detached: Vec::new() };
    for (i, g) in given.iter().enumerate() {
        let Some(id) = g.id else {
            if let Some(m) = a.members.iter().find(|m| m.path == g.path && m.state == MemberState::Active) {
                return Err(format!(
                    "mountpath {} (member {:016x}) holds no keel data: is its drive mounted? If the drive is gone, run `keel mountpath detach {}` with the other mountpaths to go on without it",
                    g.path.display(),
                    m.id,
                    g.path.display()
                ));
            }
            continue; // a new, empty mountpath
        };
        match (&g.record, a.member(id)) {
            (Some(r), _) if r.node != a.node => {
                return Err(format!("mountpath {} belongs to another keel node ({:016x})", g.path.display(), r.node));
            }
            // Listed active: it was here at the last start (a record older than the newest one
            // means that start stopped while writing the records, before serving).
            (Some(_), Some(Member { state: MemberState::Active, .. })) => {}
            (Some(r), Some(Member { state: MemberState::Detached { at }, .. })) => {
                if r.epoch >= *at {
                    return Err(format!(
                        "mountpath {} served without the others after it was detached from them: the two histories cannot be merged. Detach it or the others for good (move their data away)",
                        g.path.display()
                    ));
                }
                plan.returning.push((i, r.epoch));
            }
            (Some(_), None) => {
                return Err(format!(
                    "mountpath {} has a node record but is not a member of this node",
                    g.path.display()
                ));
            }
            // A member whose record was never written (the first start with node records
            // stopped before reaching it): as the active case; a detached one saw no epoch.
            (None, Some(Member { state: MemberState::Active, .. })) => {}
            (None, Some(Member { state: MemberState::Detached { .. }, .. })) => plan.returning.push((i, 0)),
            (None, None) => plan.unrecorded.push(i),
        }
    }
    for m in &a.members {
        let here = given.iter().any(|g| g.id == Some(m.id));
        match m.state {
            MemberState::Active if !here => {
                return Err(format!(
                    "mountpath {} (member {:016x}) is missing. Give it again, or run `keel mountpath detach {}` with the other mountpaths to go on without it (its objects are unavailable until it returns; what is written meanwhile wins over what it holds)",
                    m.path.display(),
                    m.id,
                    m.path.display()
                ));
            }
            MemberState::Detached { .. } if !here => plan.detached.push(m.clone()),
            _ => {}
        }
    }
    Ok(plan)
}

/// `keel mountpath detach TARGET` over the `remaining` mountpaths: marks the member TARGET (a
/// path or an id in hex) detached in a new epoch, on every remaining mountpath. Returns the new
/// record.
pub fn detach(remaining: &[PathBuf], target: &str) -> Result<NodeRecord> {
    let seen: Vec<Seen> = remaining.iter().map(|p| peek(p)).collect::<Result<_>>()?;
    let mut record = seen
        .iter()
        .filter_map(|g| g.record.clone())
        .max_by_key(|r| r.epoch)
        .ok_or_else(|| Error::Membership("none of the given mountpaths holds a node record".into()))?;
    let target_path = absolute(Path::new(target));
    let at = record.epoch + 1;
    let m = record
        .members
        .iter_mut()
        .find(|m| m.path == target_path || format!("{:016x}", m.id) == target)
        .ok_or_else(|| Error::Membership(format!("{target} is not a member of this node")))?;
    if seen.iter().any(|g| g.id == Some(m.id)) {
        return Err(Error::Membership(format!("{target} is among the mountpaths given: give the others")));
    }
    if m.state != MemberState::Active {
        return Err(Error::Membership(format!("{target} is detached already")));
    }
    m.state = MemberState::Detached { at };
    record.epoch = at;
    if !record.members.iter().any(|m| m.state == MemberState::Active) {
        return Err(Error::Membership("cannot detach the last mountpath".into()));
    }
    for g in &seen {
        if g.record.is_some() {
            record.write(&g.path)?;
        }
    }
    Ok(record)
}

/// What `keel mountpath attach` did.
#[derive(Clone, Debug)]
pub enum Attached {
    /// A new member, in the returned record; the member it replaced (given or found at the same
    /// path), if any, left the record for good.
    New { record: NodeRecord, id: u64, replaced: Option<Member> },
    /// DIR is a detached member: nothing to record; given again at the next start it is
    /// reconciled before it serves.
    Returning { id: u64 },
}

/// `keel mountpath attach DIR` over the node's mountpaths `given` (DIR may be among them): a new
/// drive becomes a member in a new epoch, on every given mountpath and on DIR, so the next start
/// takes it (and, with copies, the repair fills it: a resilver). The member it replaces — named
/// by `replaces` (a path or an id in hex), else a member not given whose path is DIR's (the new
/// drive mounted where the dead one was) — leaves the record for good: its data is gone, it can
/// never return (refused as not a member), and no tombstone need be kept for it. DIR must hold
/// no objects or uploads. Call with the given mountpaths held open (no keel serving them).
pub fn attach(given: &[PathBuf], dir: &Path, replaces: Option<&str>) -> Result<Attached> {
    std::fs::create_dir_all(dir)?;
    let dir_path = absolute(dir);
    let others: Vec<Seen> =
        given.iter().map(|p| peek(p)).filter(|s| !matches!(s, Ok(s) if s.path == dir_path)).collect::<Result<_>>()?;
    let mut record = others
        .iter()
        .filter_map(|g| g.record.clone())
        .max_by_key(|r| r.epoch)
        .ok_or_else(|| Error::Membership("none of the other mountpaths given holds a node record".into()))?;
    let target = peek(&dir_path)?;
    if let Some(id) = target.id {
        match record.member(id).map(|m| &m.state) {
            Some(MemberState::Active) => {
                return Err(Error::Membership(format!("{} is a member of this node already", dir_path.display())));
            }
            Some(MemberState::Detached { .. }) => return Ok(Attached::Returning { id }),
            None if target.record.as_ref().is_some_and(|r| r.node != record.node) => {
                return Err(Error::Membership(format!("{} belongs to another keel node", dir_path.display())));
            }
            None => {}
        }
    }
    let replaced_at = match replaces {
        Some(r) => {
            let p = absolute(Path::new(r));
            Some(
                record
                    .members
                    .iter()
                    .position(|m| m.path == p || format!("{:016x}", m.id) == r)
                    .ok_or_else(|| Error::Membership(format!("{r} is not a member of this node")))?,
            )
        }
        None => record.members.iter().position(|m| m.path == dir_path),
    };
    if let Some(i) = replaced_at {
        let old = &record.members[i];
        if others.iter().any(|g| g.id == Some(old.id)) {
            return Err(Error::Membership(format!(
                "{} is among the mountpaths given: a member that is here is not replaced",
                old.path.display()
            )));
        }
        // Its directory still holds it (a drive left out, not dead): replacing it would throw
        // its data away for good.
        if old.path != dir_path && crate::mountpath::read_id(&old.path).ok().flatten() == Some(old.id) {
            return Err(Error::Membership(format!(
                "member {:016x} is still at {}: give it with the others, or move its data away to replace it",
                old.id,
                old.path.display()
            )));
        }
    }
    // Two members at one path would make the next start ambiguous.
    if let Some(m) = record.members.iter().enumerate().find(|(i, m)| Some(*i) != replaced_at && m.path == dir_path) {
        return Err(Error::Membership(format!(
            "member {:016x} is recorded at {} already: replace it (--replaces {:016x}) or pick another directory",
            m.1.id,
            dir_path.display(),
            m.1.id
        )));
    }
    let mp = crate::mountpath::Mountpath::open(
        &dir_path,
        crate::index::SyncMode::Always,
        &crate::index::IndexConfig::default(),
        None,
    )?;
    let (id, empty) = (mp.id, mp.holds_nothing()?);
    drop(mp);
    if !empty {
        return Err(Error::Membership(format!(
            "{} holds objects or uploads: a replacement must be empty (move its data away)",
            dir_path.display()
        )));
    }
    let replaced = replaced_at.map(|i| record.members.remove(i));
    record.epoch += 1;
    record.members.push(Member { id, path: dir_path.clone(), state: MemberState::Active });
    for g in &others {
        if g.record.is_some() {
            record.write(&g.path)?;
        }
    }
    record.write(&dir_path)?;
    Ok(Attached::New { record, id, replaced })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(node: u64, epoch: u64, members: &[(u64, &str, Option<u64>)]) -> NodeRecord {
        NodeRecord {
            node,
            epoch,
            members: members
                .iter()
                .map(|(id, p, at)| Member {
                    id: *id,
                    path: PathBuf::from(p),
                    state: at.map_or(MemberState::Active, |at| MemberState::Detached { at }),
                })
                .collect(),
        }
    }

    fn seen(path: &str, id: Option<u64>, record: Option<NodeRecord>) -> Seen {
        Seen { path: PathBuf::from(path), id, record }
    }

    #[test]
    fn records_round_trip() {
        let r = rec(0xabc, 7, &[(1, "/mnt/a b", None), (2, "/mnt/c\r", Some(5))]);
        assert_eq!(NodeRecord::decode(&r.encode()).unwrap(), r);
        assert!(NodeRecord::decode("keel-node 2\n").is_err());
        assert!(NodeRecord::decode("keel-node 1\nnode zz\nepoch 1\n").is_err());
    }

    #[test]
    fn a_start_is_planned_from_the_newest_record() {
        let both = rec(9, 4, &[(1, "/a", None), (2, "/b", None)]);
        // First start: everyone joins.
        let p = plan(&[seen("/a", None, None), seen("/b", Some(2), None)], 9).unwrap();
        assert_eq!((p.epoch, p.unrecorded.clone()), (1, vec![1]));
        // All here: next epoch.
        let p = plan(&[seen("/a", Some(1), Some(both.clone())), seen("/b", Some(2), Some(both.clone()))], 0).unwrap();
        assert_eq!((p.node, p.epoch, p.returning.len()), (9, 5, 0));
        // A member missing refuses the start, and says how to go on.
        let e = plan(&[seen("/a", Some(1), Some(both.clone()))], 0).unwrap_err();
        assert!(e.contains("/b") && e.contains("keel mountpath detach"), "{e}");
        // Its path given but empty (drive not mounted): refused too.
        let e = plan(&[seen("/a", Some(1), Some(both.clone())), seen("/b", None, None)], 0).unwrap_err();
        assert!(e.contains("holds no keel data"), "{e}");
        // Detached: the rest starts; it returns and is reconciled from its last epoch.
        let detached = rec(9, 5, &[(1, "/a", None), (2, "/b", Some(5))]);
        let p = plan(&[seen("/a", Some(1), Some(detached.clone()))], 0).unwrap();
        assert_eq!(p.detached.len(), 1);
        let p =
            plan(&[seen("/a", Some(1), Some(detached.clone())), seen("/b", Some(2), Some(both.clone()))], 0).unwrap();
        assert_eq!((p.epoch, p.returning.clone(), p.detached.len()), (6, vec![(1, 4)], 0));
        // A detached member that served alone meanwhile cannot be merged back.
        let alone = rec(9, 6, &[(1, "/a", Some(5)), (2, "/b", None)]);
        let e = plan(&[seen("/a", Some(1), Some(detached)), seen("/b", Some(2), Some(alone))], 0).unwrap_err();
        assert!(e.contains("cannot be merged"), "{e}");
        // Another node's mountpath is refused; a stray one with an id but no record may join.
        let other = rec(8, 2, &[(3, "/c", None)]);
        assert!(
            plan(
                &[
                    seen("/a", Some(1), Some(both.clone())),
                    seen("/b", Some(2), Some(both.clone())),
                    seen("/c", Some(3), Some(other))
                ],
                0
            )
            .is_err()
        );
        let p = plan(
            &[
                seen("/a", Some(1), Some(both.clone())),
                seen("/b", Some(2), Some(both.clone())),
                seen("/d", Some(4), None),
            ],
            0,
        )
        .unwrap();
        assert_eq!(p.unrecorded, vec![2]);
        // A start that stopped while writing records left an older one on a member: fine.
        let older = rec(9, 3, &[(1, "/a", None), (2, "/b", None)]);
        assert!(plan(&[seen("/a", Some(1), Some(both)), seen("/b", Some(2), Some(older))], 0).is_ok());
    }

    /// `attach` on real directories: a member still present is never replaced, a directory
    /// that is a member already is refused, and two members never share a path.
    #[test]
    fn attach_refuses_what_would_lose_data_or_make_paths_ambiguous() {
        let dir = tempfile::tempdir().unwrap();
        let [a, b, c, d] = ["a", "b", "c", "d"].map(|n| dir.path().join(n));
        let cfg = crate::StoreConfig {
            mountpaths: vec![a.clone(), b.clone(), c.clone()],
            sync: crate::SyncMode::None,
            index: Default::default(),
            odirect: false,
            faults: None,
        };
        drop(crate::Store::open(&cfg).unwrap());
        let id_of = |p: &Path| format!("{:016x}", crate::mountpath::read_id(p).unwrap().unwrap());
        let (b_id, c_id) = (id_of(&b), id_of(&c));
        // b left out but still there: not replaced.
        let e = attach(&[a.clone(), c.clone()], &d, Some(b.to_str().unwrap())).unwrap_err().to_string();
        assert!(e.contains("still at"), "{e}");
        // A member given as DIR: refused.
        let e = attach(&[a.clone(), c.clone()], &b, None).unwrap_err().to_string();
        assert!(e.contains("member of this node already"), "{e}");
        // b and c dead: DIR at b's path replacing c would leave b recorded there too.
        std::fs::remove_dir_all(&b).unwrap();
        std::fs::remove_dir_all(&c).unwrap();
        let e = attach(std::slice::from_ref(&a), &b, Some(&c_id)).unwrap_err().to_string();
        assert!(e.contains("recorded at"), "{e}");
        assert!(!d.join(NODE_FILE).exists() && !b.join(NODE_FILE).exists(), "nothing recorded on refusal");
        // Replacing b at its own path: done, and b is gone from the record for good.
        let Attached::New { record, replaced, .. } = attach(std::slice::from_ref(&a), &b, None).unwrap() else {
            panic!("a new member")
        };
        assert_eq!(replaced.map(|m| format!("{:016x}", m.id)), Some(b_id));
        assert_eq!(record.members.iter().filter(|m| m.path == absolute(&b)).count(), 1);
        assert_eq!(NodeRecord::read(&a).unwrap().unwrap(), record);
    }
}
