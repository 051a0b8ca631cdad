//! Engine tests on real directories: a model-based run of random operations against a
//! `BTreeMap`, multipart uploads, restarts, and placement changes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use engine::{
    CompleteOptions, CompletePart, Error, IoBuffer, ListQuery, PutOptions, Store, StoreConfig, SyncMode, UploadOptions,
};

mod common;
use common::*;

#[test]
fn random_operations_match_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let paths = vec![dir.path().join("a"), dir.path().join("b"), dir.path().join("c")];
    rt().block_on(model_run(&paths, 1, 0x9e37_79b9_7f4a_7c15, 600));
}

#[test]
fn multipart_assembles_without_copying() {
    let dir = tempfile::tempdir().unwrap();
    let paths = vec![dir.path().join("a"), dir.path().join("b")];
    rt().block_on(async {
        let store = open(&paths);
        store.create_bucket("mpu", "me").await.unwrap();
        let id = store.create_upload("mpu", "big", "me", UploadOptions::default()).await.unwrap();
        let parts: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 100 + i as usize]).collect();
        // Out of order, one part re-uploaded (the first version must vanish).
        let mut etags = vec![String::new(); 4];
        for n in [3u32, 1, 4, 2] {
            etags[n as usize - 1] = upload_part(&store, "big", &id, n, &parts[n as usize - 1]).await;
        }
        upload_part(&store, "big", &id, 2, b"garbage").await;
        etags[1] = upload_part(&store, "big", &id, 2, &parts[1]).await;
        assert_eq!(data_files(&paths), 4);
        let (listed, truncated) = store.list_parts("mpu", "big", &id, 0, 1000).unwrap();
        assert_eq!(listed.iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert!(!truncated);
        let (page, truncated) = store.list_parts("mpu", "big", &id, 1, 2).unwrap();
        assert_eq!((page.iter().map(|(n, _)| *n).collect::<Vec<_>>(), truncated), (vec![2, 3], true));

        let cp = |n: u32, e: &str| CompletePart { part_number: n, etag: format!("\"{e}\""), checksum: None };
        let bad = store
            .complete_upload("mpu", "big", &id, &[cp(2, &etags[1]), cp(1, &etags[0])], CompleteOptions::default())
            .await;
        assert!(matches!(bad, Err(Error::InvalidPartOrder)));
        let bad = store.complete_upload("mpu", "big", &id, &[cp(1, "00")], CompleteOptions::default()).await;
        assert!(matches!(bad, Err(Error::InvalidPart { part_number: 1 })));
        let bad = store
            .complete_upload("mpu", "big", &id, &[cp(1, &etags[0]), cp(9, &etags[0])], CompleteOptions::default())
            .await;
        assert!(matches!(bad, Err(Error::InvalidPart { part_number: 9 })));
        let bad = store
            .complete_upload(
                "mpu",
                "big",
                &id,
                &[cp(1, &etags[0]), cp(2, &etags[1])],
                CompleteOptions { min_part_size: 1000, ..Default::default() },
            )
            .await;
        assert!(matches!(bad, Err(Error::PartTooSmall { part_number: 1 })));

        // Complete with parts 1, 2 and 4: part 3 is discarded.
        let meta = store
            .complete_upload(
                "mpu",
                "big",
                &id,
                &[cp(1, &etags[0]), cp(2, &etags[1]), cp(4, &etags[3])],
                CompleteOptions::default(),
            )
            .await
            .unwrap();
        let want: Vec<u8> = [&parts[0][..], &parts[1], &parts[3]].concat();
        assert_eq!(meta.size, want.len() as u64);
        assert!(meta.etag().ends_with("-3"));
        assert_eq!(get(&store, "mpu", "big").await.unwrap(), want);
        assert_eq!(data_files(&paths), 3, "the unused part's file is gone");
        assert!(matches!(store.upload("mpu", "big", &id), Err(Error::NoSuchUpload)));
        assert!(matches!(store.abort_upload("mpu", "big", &id).await, Err(Error::NoSuchUpload)));

        // Overwriting the multipart object removes its part files.
        put(&store, "mpu", "big", b"small").await;
        assert_eq!(data_files(&paths), 0);

        // Abort removes everything; late parts of an aborted upload are refused.
        let id2 = store.create_upload("mpu", "k2", "me", UploadOptions::default()).await.unwrap();
        upload_part(&store, "k2", &id2, 1, &[1; 1000]).await;
        let mut late = store.part_writer("mpu", "k2", &id2, 2, Some(3), None).unwrap();
        let mut b = IoBuffer::with_capacity(3);
        b.extend_from_slice(b"abc");
        late.data().write(b).await.0.unwrap();
        store.abort_upload("mpu", "k2", &id2).await.unwrap();
        assert!(matches!(late.finish(None, None).await, Err(Error::NoSuchUpload)));
        assert_eq!(data_files(&paths), 0);
    });
}

#[test]
fn uploads_survive_restart_and_list_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let paths = vec![dir.path().join("a"), dir.path().join("b")];
    let (id_a, id_b, etag) = rt().block_on(async {
        let store = open(&paths);
        store.create_bucket("mpu", "me").await.unwrap();
        let id_a = store.create_upload("mpu", "dir/a", "me", UploadOptions::default()).await.unwrap();
        let id_b = store.create_upload("mpu", "dir/b", "me", UploadOptions::default()).await.unwrap();
        store.create_upload("mpu", "top", "me", UploadOptions::default()).await.unwrap();
        let etag = upload_part(&store, "dir/a", &id_a, 1, b"before restart").await;
        (id_a, id_b, etag)
    });
    rt().block_on(async {
        let store = open(&paths);
        let page = store.list_uploads("mpu", &engine::UploadQuery { max_uploads: 1000, ..Default::default() }).unwrap();
        let keys: Vec<_> = page.uploads.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(keys, vec!["dir/a", "dir/b", "top"]);
        let page = store
            .list_uploads("mpu", &engine::UploadQuery { delimiter: Some("/"), max_uploads: 1000, ..Default::default() })
            .unwrap();
        assert_eq!(page.common_prefixes, vec!["dir/".to_owned()]);
        let page = store
            .list_uploads(
                "mpu",
                &engine::UploadQuery { key_marker: Some("dir/a"), max_uploads: 1, ..Default::default() },
            )
            .unwrap();
        assert_eq!((page.uploads[0].upload_id.as_str(), page.truncated), (id_b.as_str(), true));
        let tail = upload_part(&store, "dir/a", &id_a, 2, b" and after").await;
        let cp = |n, e: &str| CompletePart { part_number: n, etag: e.to_owned(), checksum: None };
        store
            .complete_upload("mpu", "dir/a", &id_a, &[cp(1, &etag), cp(2, &tail)], CompleteOptions::default())
            .await
            .unwrap();
        assert_eq!(get(&store, "mpu", "dir/a").await.unwrap(), b"before restart and after");
        assert_eq!(store.abort_uploads_before(u64::MAX).await.unwrap(), 2);
        assert!(
            store
                .list_uploads("mpu", &engine::UploadQuery { max_uploads: 10, ..Default::default() })
                .unwrap()
                .uploads
                .is_empty()
        );
    });
}

#[test]
fn objects_placed_before_a_mountpath_was_added_still_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let one = vec![dir.path().join("a")];
    let two = vec![dir.path().join("a"), dir.path().join("b")];
    rt().block_on(async {
        let store = open(&one);
        store.create_bucket("grow", "me").await.unwrap();
        for i in 0..50 {
            put(&store, "grow", &format!("k{i}"), format!("v{i}").as_bytes()).await;
        }
    });
    rt().block_on(async {
        let store = open(&two);
        store.repair_buckets().await.unwrap();
        for i in 0..50 {
            assert_eq!(get(&store, "grow", &format!("k{i}")).await.unwrap(), format!("v{i}").as_bytes());
        }
        let page = store.list_objects("grow", &ListQuery { max_keys: 1000, ..Default::default() }).unwrap();
        assert_eq!(page.entries.len(), 50);
        // Rebalance moves the misplaced half to the new mountpath; nothing is lost or doubled.
        let r = store.rebalance().await.unwrap();
        assert!(r.moved > 5 && r.moved < 45, "{r:?}");
        assert_eq!(store.rebalance().await.unwrap().moved, 0, "a second pass has nothing to do");
        for i in 0..50 {
            assert_eq!(get(&store, "grow", &format!("k{i}")).await.unwrap(), format!("v{i}").as_bytes());
        }
        let usage = store.usage().unwrap();
        assert_eq!(usage.mountpaths.iter().map(|m| m.1).sum::<u64>(), 50);
        assert!(usage.mountpaths.iter().all(|m| m.1 > 0), "both mountpaths hold objects now");
        for i in 0..50 {
            store.delete_object("grow", &format!("k{i}")).await.unwrap();
        }
        store.delete_bucket("grow").await.unwrap();
    });
}

/// Faults at random points (failed and torn writes, failed fsyncs and index commits) never make
/// the store disagree with the model of acknowledged operations, before or after a reopen.
#[test]
fn injected_faults_never_break_the_model() {
    use std::sync::atomic::Ordering;
    let mut rng = Rng(0xfeed_beef_1234_5678);
    let mut injected = 0;
    for trial in 0..12 {
        let dir = tempfile::tempdir().unwrap();
        let paths = vec![dir.path().join("a"), dir.path().join("b")];
        let faults = std::sync::Arc::new(engine::Faults::default());
        let (write_at, tear_at, fsync_at, commit_at) =
            (1 + rng.below(12), 1 + rng.below(12), 1 + rng.below(12), 1 + rng.below(20));
        match trial % 4 {
            0 => faults.fail_write_at.store(write_at, Ordering::Relaxed),
            1 => faults.tear_write_at.store(tear_at, Ordering::Relaxed),
            2 => faults.fail_fsync_at.store(fsync_at, Ordering::Relaxed),
            _ => faults.fail_commit_at.store(commit_at, Ordering::Relaxed),
        }
        let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        rt().block_on(async {
            let cfg = StoreConfig {
                mountpaths: paths.clone(),
                sync: SyncMode::Always,
                index: Default::default(),
                odirect: false,
                faults: Some(faults.clone()),
            };
            let store = Store::open(&cfg).unwrap();
            store.create_bucket("faulty", "me").await.unwrap();
            for step in 0..40u64 {
                let key = format!("k{}", rng.below(8));
                if rng.below(4) == 0 {
                    if store.delete_object("faulty", &key).await.is_ok() {
                        model.remove(&key);
                    }
                    continue;
                }
                let data: Vec<u8> = (0..(10_000 + step as usize * 997)).map(|i| (i as u64 ^ step) as u8).collect();
                let mut w = match store.put_writer("faulty", &key, Some(data.len() as u64), None) {
                    Ok(w) => w,
                    Err(_) => continue, // a poisoned mountpath refuses new writes
                };
                let mut ok = true;
                for chunk in data.chunks(4096) {
                    let mut b = IoBuffer::with_capacity(chunk.len());
                    b.extend_from_slice(chunk);
                    if w.data().write(b).await.0.is_err() {
                        ok = false;
                        break;
                    }
                }
                if ok && w.finish(PutOptions::default()).await.is_ok() {
                    model.insert(key, data);
                } else {
                    injected += 1;
                }
            }
        });
        // Reopen without faults: exactly the acknowledged state.
        rt().block_on(async {
            let store = open(&paths);
            for i in 0..8 {
                let key = format!("k{i}");
                assert_eq!(get(&store, "faulty", &key).await, model.get(&key).cloned(), "trial {trial}, {key}");
            }
        });
    }
    assert!(injected >= 6, "faults were hit ({injected})");
}

/// Writes keys `k00`..`k39` (each `old`, returning their ETags) into `bucket` with mountpath `a`
/// alone, then opens the store with `a` and a new `b`: the keys `b` now owns live on `a` only.
/// Returns the store, the keys, their ETags, and which of them `b` owns.
fn grown_store(dir: &Path, bucket: &str) -> (Arc<Store>, Vec<String>, Vec<String>, Vec<usize>) {
    let keys: Vec<String> = (0..40).map(|i| format!("k{i:02}")).collect();
    let mut etags = Vec::new();
    rt().block_on(async {
        let store = open(&[dir.join("a")]);
        store.create_bucket(bucket, "me").await.unwrap();
        for k in &keys {
            etags.push(put(&store, bucket, k, b"old").await.etag());
        }
    });
    let store = open(&[dir.join("a"), dir.join("b")]);
    rt().block_on(store.repair_buckets()).unwrap();
    let moved: Vec<usize> =
        (0..keys.len()).filter(|&i| Arc::ptr_eq(store.owner(bucket, &keys[i]), &store.mountpaths()[1])).collect();
    assert!(moved.len() > 5, "some keys belong to the new mountpath");
    (store, keys, etags, moved)
}

/// A key written before a mountpath was added and overwritten after it (so that two mountpaths
/// hold a copy until a rebalance) reads, lists and deletes as one object: the new copy.
#[test]
fn overwrites_after_adding_a_mountpath_read_list_and_delete_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let (store, keys, _, _) = grown_store(dir.path(), "grow");
    rt().block_on(async {
        for k in &keys {
            put(&store, "grow", k, b"new copy").await;
        }
        let page = store.list_objects("grow", &ListQuery { max_keys: 1000, ..Default::default() }).unwrap();
        assert_eq!(page.entries.len(), keys.len());
        for (e, k) in page.entries.iter().zip(&keys) {
            assert_eq!(&e.key, k);
            assert_eq!(e.size, 8, "{k} lists the copy GET serves");
            assert_eq!(get(&store, "grow", k).await.unwrap(), b"new copy");
        }
        for k in &keys {
            store.delete_object("grow", k).await.unwrap();
            assert_eq!(get(&store, "grow", k).await, None, "{k}: no older copy comes back");
        }
        let page = store.list_objects("grow", &ListQuery { max_keys: 1000, ..Default::default() }).unwrap();
        assert!(page.entries.is_empty(), "{:?}", page.entries);
    });
}

/// If-Match writes are compare-and-swap: of several writers that all checked the same ETag,
/// exactly one commits; the others fail (lost the race, or found the winner's ETag), and the
/// object is the winner's.
#[test]
fn conditional_writes_on_one_etag_let_exactly_one_win() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&[dir.path().join("a")]);
    rt().block_on(async {
        store.create_bucket("cas", "me").await.unwrap();
        let first = put(&store, "cas", "k", b"v0").await;
        for round in 0..5 {
            let etag = store.head_object("cas", "k").unwrap().etag();
            if round == 0 {
                assert_eq!(etag, first.etag());
            }
            let mut writers = Vec::new();
            for i in 0..6u8 {
                // Unique per round: a writer repeating the current bytes would keep its ETag, and
                // a later If-Match on that ETag would rightly succeed too.
                let body = vec![b'a' + i + 6 * round; 9000 + i as usize * 1000];
                let mut w = store.put_writer("cas", "k", Some(body.len() as u64), None).unwrap();
                let mut b = IoBuffer::with_capacity(body.len());
                b.extend_from_slice(&body);
                let (r, _) = w.data().write(b).await;
                r.unwrap();
                writers.push((w, body));
            }
            let finishes = writers.into_iter().map(|(w, body)| {
                let condition = engine::WriteCondition::EtagMatches(format!("\"{etag}\""));
                async move { (w.finish(PutOptions { condition, ..Default::default() }).await, body) }
            });
            let results = futures_util::future::join_all(finishes).await;
            let winners: Vec<&Vec<u8>> = results.iter().filter(|(r, _)| r.is_ok()).map(|(_, b)| b).collect();
            assert_eq!(winners.len(), 1, "round {round}: exactly one conditional write commits");
            for (r, _) in &results {
                if let Err(e) = r {
                    assert!(matches!(e, Error::WriteConflict | Error::PreconditionFailed), "{e:?}");
                }
            }
            assert_eq!(get(&store, "cas", "k").await.unwrap(), *winners[0]);
        }
        assert_eq!(data_files(&[dir.path().join("a")]), 1, "losers' data files are gone");
    });
}

/// If-None-Match: * sees a copy from before a mountpath was added (the owner has none yet), and
/// If-Match compares against that copy.
#[test]
fn conditions_see_copies_on_other_mountpaths() {
    let dir = tempfile::tempdir().unwrap();
    let (store, keys, etags, moved) = grown_store(dir.path(), "cond");
    rt().block_on(async {
        let put_if = |k: &str, condition: engine::WriteCondition| {
            let store = store.clone();
            let k = k.to_owned();
            async move {
                let w = store.put_writer("cond", &k, Some(0), None).unwrap();
                w.finish(PutOptions { condition, ..Default::default() }).await
            }
        };
        for &i in &moved {
            let r = put_if(&keys[i], engine::WriteCondition::Absent).await;
            assert!(matches!(r, Err(Error::PreconditionFailed)), "{}: {r:?}", keys[i]);
            let r = put_if(&keys[i], engine::WriteCondition::EtagMatches("\"0000\"".into())).await;
            assert!(matches!(r, Err(Error::PreconditionFailed)), "{}: {r:?}", keys[i]);
            let r = put_if(&keys[i], engine::WriteCondition::EtagMatches(etags[i].clone())).await;
            assert!(r.is_ok(), "{}: {r:?}", keys[i]);
            assert_eq!(get(&store, "cond", &keys[i]).await.unwrap(), b"");
        }
        let r = put_if("brand-new", engine::WriteCondition::Absent).await;
        assert!(r.is_ok());
    });
}

/// A writer told to skip the MD5 records the one its caller states, and a Content-MD5 is checked
/// against that one: the backend agent hashes cached copies off the shard.
#[test]
fn an_md5_computed_by_the_caller_is_recorded_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&[dir.path().join("a")]);
    rt().block_on(async {
        store.create_bucket("bkt", "o").await.unwrap();
        let body = vec![7u8; 300_000];
        let md5: [u8; 16] = fast_md5::digest(&body);
        let write = |stated: [u8; 16], content_md5: Option<[u8; 16]>| {
            let (store, body) = (store.clone(), body.clone());
            async move {
                let mut w = store.put_writer("bkt", "k", Some(body.len() as u64), None).unwrap();
                w.data().skip_md5();
                let mut b = IoBuffer::with_capacity(body.len());
                b.extend_from_slice(&body);
                let (r, _) = w.data().write(b).await;
                r.unwrap();
                w.finish(PutOptions { md5: Some(stated), content_md5, ..Default::default() }).await
            }
        };
        let meta = write(md5, Some(md5)).await.unwrap();
        assert_eq!(meta.md5, md5);
        assert_eq!(store.head_object("bkt", "k").unwrap().md5, md5);
        assert!(matches!(write(md5, Some([1; 16])).await, Err(Error::ChecksumMismatch { .. })));
        assert_eq!(get(&store, "bkt", "k").await.unwrap(), body);
    });
}

/// Copies `bucket/key` from `from` into `to` as a cluster's rebalance does: piece by piece.
async fn import(from: &Arc<Store>, to: &Arc<Store>, bucket: &str, key: &str) -> Result<engine::ObjectMeta, Error> {
    let source = from.head_object(bucket, key).unwrap();
    let mut imp = to.import_writer(bucket, key, &source)?;
    let reader = from.open_object(bucket, key).await.unwrap();
    for (i, (start, len)) in imp.pieces().into_iter().enumerate() {
        reader.copy_verified(start, len, imp.writer(i)).await?;
    }
    imp.finish().await
}

#[test]
fn an_import_keeps_the_record_and_never_replaces_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (vec![dir.path().join("a")], vec![dir.path().join("b1"), dir.path().join("b2")]);
    rt().block_on(async {
        let (from, to) = (open(&a), open(&b));
        for s in [&from, &to] {
            s.create_bucket("mpu", "me").await.unwrap();
        }
        let small = put(&from, "mpu", "small", b"tiny").await;
        let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let file = put(&from, "mpu", "file", &big).await;
        let id = from.create_upload("mpu", "parts", "me", UploadOptions::default()).await.unwrap();
        let e1 = upload_part(&from, "parts", &id, 1, &big[..200_000]).await;
        let e2 = upload_part(&from, "parts", &id, 2, &big[200_000..]).await;
        let cp = |n: u32, e: &str| CompletePart { part_number: n, etag: format!("\"{e}\""), checksum: None };
        let parts = from
            .complete_upload("mpu", "parts", &id, &[cp(1, &e1), cp(2, &e2)], CompleteOptions::default())
            .await
            .unwrap();
        for (key, meta) in [("small", &small), ("file", &file), ("parts", &parts)] {
            let got = import(&from, &to, "mpu", key).await.unwrap();
            // Same ETag, time, size and (for the multipart object) part layout.
            assert_eq!((got.etag(), got.mtime_ms, got.size), (meta.etag(), meta.mtime_ms, meta.size), "{key}");
            assert_eq!(get(&to, "mpu", key).await, get(&from, "mpu", key).await, "{key}");
        }
        let engine::DataLoc::Parts(locs) = to.head_object("mpu", "parts").unwrap().data else { panic!("parts") };
        assert_eq!(locs.iter().map(|p| p.size).collect::<Vec<_>>(), vec![200_000, 100_000]);
        // A key written on the receiver since wins: the import is refused, nothing replaced.
        put(&to, "mpu", "small", b"newer").await;
        assert!(matches!(import(&from, &to, "mpu", "small").await, Err(Error::PreconditionFailed)));
        assert_eq!(get(&to, "mpu", "small").await.as_deref(), Some(&b"newer"[..]));
        // The mover deletes its copy only if it is still the one moved.
        put(&from, "mpu", "file", b"rewritten").await;
        assert!(!from.delete_object_if("mpu", "file", &file).await.unwrap());
        assert!(get(&from, "mpu", "file").await.is_some());
        assert!(from.delete_object_if("mpu", "parts", &parts).await.unwrap());
        assert!(get(&from, "mpu", "parts").await.is_none());
        assert!(!from.delete_object_if("mpu", "parts", &parts).await.unwrap());
    });
}
