//! The engine's model test for versions (D46): random PUTs, deletes (markers), deletes of
//! named versions, reads by version, version listings in random page sizes, restarts and
//! switches between Enabled and Suspended, against a model of each key's versions. At the end
//! every version's files are there and no other file is.

use std::collections::BTreeMap;
use std::sync::Arc;

use engine::{Error, IoBuffer, Store, VersionQuery, VersionRef, Versioning};

mod common;
use common::*;

/// One version in the model: its id, its bytes (`None`: a delete marker).
#[derive(Clone, Debug)]
struct Ver {
    id: String,
    data: Option<Vec<u8>>,
}

async fn read_version(store: &Store, key: &str, v: &str) -> Result<Vec<u8>, Error> {
    let r = store.open_version("vmodel", key, VersionRef::parse(v).unwrap()).await?;
    let mut out = Vec::new();
    let mut buf = IoBuffer::with_capacity(1 << 20);
    while (out.len() as u64) < r.meta.size {
        let (n, b) = r.read_at(buf, out.len() as u64, 1 << 20).await;
        buf = b;
        assert!(n.unwrap() > 0);
        out.extend_from_slice(buf.as_slice());
    }
    Ok(out)
}

fn listing(store: &Store, page: usize) -> Vec<(String, String, bool)> {
    let (mut km, mut vm): (Option<String>, Option<VersionRef>) = (None, None);
    let mut out = Vec::new();
    loop {
        let q =
            VersionQuery { prefix: "", delimiter: None, key_marker: km.as_deref(), version_marker: vm, max_keys: page };
        let p = store.list_versions("vmodel", &q).unwrap();
        out.extend(p.entries.iter().map(|e| (e.key.clone(), e.version.id(), e.is_latest)));
        if !p.truncated {
            return out;
        }
        km = p.next_key_marker;
        vm = p.next_version_marker.as_deref().and_then(VersionRef::parse);
    }
}

async fn set_state(store: &Arc<Store>, state: Versioning) {
    store.update_bucket("vmodel", |m| m.versioning = state).await.unwrap();
}

#[test]
fn random_versioned_operations_match_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let paths = vec![dir.path().join("a"), dir.path().join("b")];
    rt().block_on(async {
        let mut store = open(&paths);
        store.create_bucket("vmodel", "me").await.unwrap();
        set_state(&store, Versioning::Enabled).await;
        let mut suspended = false;
        // Newest last.
        let mut model: BTreeMap<String, Vec<Ver>> = BTreeMap::new();
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let keys: Vec<String> = (0..12).map(|i| format!("{}/{i}", ["a", "b"][i % 2])).collect();
        for step in 0..500u64 {
            let key = keys[rng.below(keys.len() as u64) as usize].clone();
            let vers = model.entry(key.clone()).or_default();
            match rng.below(12) {
                0..=3 => {
                    let len = [0usize, 10, 8193, 20_000][rng.below(4) as usize];
                    let data: Vec<u8> = (0..len).map(|i| (i as u64 ^ step) as u8).collect();
                    let meta = put(&store, "vmodel", &key, &data).await;
                    if suspended {
                        vers.retain(|v| v.id != "null");
                    }
                    vers.push(Ver { id: meta.version.id(), data: Some(data) });
                }
                4 | 5 => {
                    let d = store.delete_version("vmodel", &key, None, false).await.unwrap();
                    assert!(d.delete_marker);
                    if suspended {
                        vers.retain(|v| v.id != "null");
                    }
                    vers.push(Ver { id: d.version_id.unwrap(), data: None });
                }
                6 if !vers.is_empty() => {
                    let i = rng.below(vers.len() as u64) as usize;
                    let v = vers.remove(i);
                    store.delete_version("vmodel", &key, VersionRef::parse(&v.id), false).await.unwrap();
                }
                7 if !vers.is_empty() => {
                    let v = &vers[rng.below(vers.len() as u64) as usize];
                    match (&v.data, read_version(&store, &key, &v.id).await) {
                        (Some(want), Ok(got)) => assert_eq!(&got, want, "{key} {} at step {step}", v.id),
                        (None, Err(Error::DeleteMarker { .. })) => {}
                        (want, got) => panic!("{key} {} at step {step}: want {want:?}, got {got:?}", v.id),
                    }
                }
                8 => {
                    let page = 1 + rng.below(9) as usize;
                    let want: Vec<(String, String, bool)> = model
                        .iter()
                        .flat_map(|(k, vs)| {
                            vs.iter().rev().enumerate().map(move |(i, v)| (k.clone(), v.id.clone(), i == 0))
                        })
                        .collect();
                    assert_eq!(listing(&store, page), want, "version listing in pages of {page} at step {step}");
                }
                9 => {
                    drop(store);
                    store = open(&paths);
                }
                10 => {
                    suspended = !suspended;
                    set_state(&store, if suspended { Versioning::Suspended } else { Versioning::Enabled }).await;
                }
                _ => {
                    // The current version: the newest, unless it is a marker.
                    let want = vers.last().and_then(|v| v.data.clone());
                    assert_eq!(get(&store, "vmodel", &key).await, want, "{key} at step {step}");
                }
            }
        }
        let files: usize = model.values().flatten().filter(|v| v.data.as_ref().is_some_and(|d| d.len() > 8192)).count();
        assert_eq!(data_files(&paths), files, "every version's file is there, and no other");
    });
}

/// A version record lives with its files (D46): after a mountpath is added, every version stays
/// readable; `keel rebalance` moves current records only; an overwrite of a current record left
/// on its old mountpath keeps the replaced version there; version listings stay whole.
#[test]
fn versions_survive_a_mountpath_addition_and_a_rebalance() {
    let dir = tempfile::tempdir().unwrap();
    let one = vec![dir.path().join("a")];
    let two = vec![dir.path().join("a"), dir.path().join("b")];
    let body = |k: usize, v: usize| vec![(k * 7 + v) as u8; 9000 + k];
    let mut ids: Vec<Vec<String>> = Vec::new();
    rt().block_on(async {
        let store = open(&one);
        store.create_bucket("vmodel", "me").await.unwrap();
        set_state(&store, Versioning::Enabled).await;
        for k in 0..20 {
            let mut v = Vec::new();
            for n in 0..3 {
                v.push(put(&store, "vmodel", &format!("k{k}"), &body(k, n)).await.version.id());
            }
            ids.push(v);
        }
    });
    rt().block_on(async {
        let store = open(&two);
        store.repair_buckets().await.unwrap();
        // Half of the keys are now owned by the new mountpath: overwrite those before any
        // rebalance, so that their current record is retired off its owner.
        for (k, v) in ids.iter_mut().enumerate().filter(|(k, _)| k % 2 == 0) {
            v.push(put(&store, "vmodel", &format!("k{k}"), &body(k, 3)).await.version.id());
        }
        let moved = store.rebalance().await.unwrap().moved;
        assert!(moved > 0 && moved < 20, "current records only: {moved}");
        let want: Vec<(String, String, bool)> = {
            let mut keyed: Vec<(String, &Vec<String>)> =
                ids.iter().enumerate().map(|(k, v)| (format!("k{k}"), v)).collect();
            keyed.sort();
            keyed
                .into_iter()
                .flat_map(|(k, v)| v.iter().rev().enumerate().map(move |(i, id)| (k.clone(), id.clone(), i == 0)))
                .collect()
        };
        assert_eq!(listing(&store, 7), want);
        for (k, v) in ids.iter().enumerate() {
            for (n, id) in v.iter().enumerate() {
                assert_eq!(read_version(&store, &format!("k{k}"), id).await.unwrap(), body(k, n), "k{k} {id}");
            }
        }
        // Deleting every version frees every file.
        for (k, v) in ids.iter().enumerate() {
            for id in v {
                store.delete_version("vmodel", &format!("k{k}"), VersionRef::parse(id), false).await.unwrap();
            }
        }
        assert_eq!(data_files(&two), 0);
    });
}
