//! Copies on distinct mountpaths (D36): model runs, failures, resilvering, multipart mirroring.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use engine::{CompleteOptions, CompletePart, Error, ListQuery, UploadOptions};

mod common;
use common::*;

/// With copies on, the model still holds through writes, deletes, listings and restarts, every
/// object is on two mountpaths, and a verifying pass finds nothing short.
#[test]
fn random_operations_with_two_copies_match_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let paths = vec![dir.path().join("a"), dir.path().join("b"), dir.path().join("c")];
    rt().block_on(async {
        let (store, model) = model_run(&paths, 2, 0x2545_f491_4f6c_dd1d, 400).await;
        let r = store.repair_pass(false, true, 0).await.unwrap();
        assert_eq!((r.examined, r.under_replicated), (model.len() as u64, 0));
    });
}

/// A failed mountpath loses nothing: reads go to the other copy, the repair makes a new copy
/// on the next mountpath, and then a second failure still loses nothing.
#[test]
fn copies_survive_two_mountpaths_failing_one_after_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let paths = vec![dir.path().join("a"), dir.path().join("b"), dir.path().join("c")];
    rt().block_on(async {
        let store = open_with_copies(&paths, 2);
        store.create_bucket("bkt", "me").await.unwrap();
        let mut want = BTreeMap::new();
        for i in 0..60 {
            let data: Vec<u8> = (0..[5usize, 9000, 70_000][i % 3]).map(|j| (i * 7 + j) as u8).collect();
            put(&store, "bkt", &format!("k{i}"), &data).await;
            want.insert(format!("k{i}"), data);
        }
        store.mountpaths()[0].poison(&"test: drive failed");
        for (k, v) in &want {
            assert_eq!(get(&store, "bkt", k).await.as_deref(), Some(v.as_slice()), "{k} with a drive failed");
        }
        let page =
            store.list_objects("bkt", &ListQuery { prefix: "", delimiter: None, after: None, max_keys: 1000 }).unwrap();
        assert_eq!(page.entries.len(), want.len(), "a listing skips the failed drive");
        let r = store.repair_pass(true, false, 0).await.unwrap();
        assert!(r.repaired > 0 && r.left == 0, "{r:?}");
        assert_eq!(store.repair_pass(false, false, 0).await.unwrap().under_replicated, 0);
        assert_eq!(store.copies_report().under_replicated, Some(0));
        // Writes go on, to the two healthy mountpaths.
        put(&store, "bkt", "after", b"written while a drive is out").await;
        store.mountpaths()[1].poison(&"test: a second drive failed");
        for (k, v) in &want {
            assert_eq!(get(&store, "bkt", k).await.as_deref(), Some(v.as_slice()), "{k} with two drives failed");
        }
        assert_eq!(get(&store, "bkt", "after").await.as_deref(), Some(&b"written while a drive is out"[..]));
        // One healthy mountpath cannot take a write of two copies: refused, not half done.
        let w = store.put_writer("bkt", "refused", Some(3), None);
        assert!(matches!(w, Err(Error::Poisoned { .. })), "{:?}", w.err());
    });
}

/// Writers racing on one key leave every holder with the same record.
#[test]
fn writers_racing_on_one_key_leave_the_copies_equal() {
    let dir = tempfile::tempdir().unwrap();
    let paths = vec![dir.path().join("a"), dir.path().join("b"), dir.path().join("c")];
    rt().block_on(async {
        let store = open_with_copies(&paths, 3);
        store.create_bucket("bkt", "me").await.unwrap();
        // Threads, as shards are: each with its own runtime, their commits interleaving.
        let threads: Vec<_> = (0..4u8)
            .map(|w| {
                let store = store.clone();
                std::thread::spawn(move || {
                    rt().block_on(async {
                        for round in 0..40u8 {
                            let data = vec![w ^ round; 20_000 + usize::from(w)];
                            put(&store, "bkt", "hot", &data).await;
                        }
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let r = store.repair_pass(false, true, 0).await.unwrap();
        assert_eq!((r.examined, r.under_replicated), (1, 0), "the three copies agree");
        assert_eq!(data_files(&paths), 3, "each replaced copy's file went");
    });
}

/// The inodes of every data file under `paths` (a copy made by the repair is a new inode).
fn data_inodes(paths: &[PathBuf]) -> BTreeMap<PathBuf, u64> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    for p in paths {
        for fan in std::fs::read_dir(p.join("objects")).unwrap().flatten() {
            for f in std::fs::read_dir(fan.path()).unwrap().flatten() {
                out.insert(f.path(), f.metadata().unwrap().ino());
            }
        }
    }
    out
}

/// With copies, a multipart upload's parts go to every holder as they arrive, and completion
/// commits the object on each without copying a byte (the files the object names are the very
/// part files written then); parts left out, re-uploaded or aborted go from every holder, and
/// parts a mirror kept for an upload that ended without it are removed at the next start.
#[test]
fn multipart_parts_are_mirrored_as_they_arrive_and_completion_copies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let paths = vec![dir.path().join("a"), dir.path().join("b"), dir.path().join("c")];
    let parts: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i + 1; 20_000 + i as usize]).collect();
    rt().block_on(async {
        let store = open_with_copies(&paths, 2);
        store.create_bucket("mpu", "me").await.unwrap();
        let id = store.create_upload("mpu", "big", "me", UploadOptions::default()).await.unwrap();
        let mut etags = Vec::new();
        for (n, p) in parts.iter().enumerate() {
            etags.push(upload_part(&store, "big", &id, n as u32 + 1, p).await);
        }
        upload_part(&store, "big", &id, 2, b"garbage, replaced").await;
        etags[1] = upload_part(&store, "big", &id, 2, &parts[1]).await;
        assert_eq!(data_files(&paths), 6, "three parts on two mountpaths, the replaced part gone from both");
        let before = data_inodes(&paths);
        let cp = |n: u32, e: &str| CompletePart { part_number: n, etag: e.to_owned(), checksum: None };
        store
            .complete_upload("mpu", "big", &id, &[cp(1, &etags[0]), cp(3, &etags[2])], CompleteOptions::default())
            .await
            .unwrap();
        let after = data_inodes(&paths);
        assert_eq!(after.len(), 4, "the unused part gone from both holders");
        assert!(after.iter().all(|(p, ino)| before.get(p) == Some(ino)), "completion copied nothing");
        assert_eq!(store.copies_report().repaired_bytes, 0);
        let whole: Vec<u8> = [parts[0].clone(), parts[2].clone()].concat();
        assert_eq!(get(&store, "mpu", "big").await.as_deref(), Some(whole.as_slice()));
        let r = store.repair_pass(true, true, 0).await.unwrap();
        assert_eq!((r.repaired, r.left, r.under_replicated), (0, 0, 0), "both holders hold it: {r:?}");
        // Aborted: from both holders.
        let id2 = store.create_upload("mpu", "other", "me", UploadOptions::default()).await.unwrap();
        upload_part(&store, "other", &id2, 1, &parts[0]).await;
        assert_eq!(data_files(&paths), 6);
        store.abort_upload("mpu", "other", &id2).await.unwrap();
        assert_eq!(data_files(&paths), 4);
        // Aborted while a mirror was out: its part stays there until the next start.
        let data_inodes_before_third = data_inodes(&paths);
        let id3 = store.create_upload("mpu", "third", "me", UploadOptions::default()).await.unwrap();
        upload_part(&store, "third", &id3, 1, &parts[0]).await;
        let new_files: Vec<PathBuf> =
            data_inodes(&paths).into_keys().filter(|p| !data_inodes_before_third.contains_key(p)).collect();
        assert_eq!(new_files.len(), 2, "the part on two mountpaths");
        let owner = store.owner("mpu", "third").clone();
        let mirror = store
            .mountpaths()
            .iter()
            .find(|m| !Arc::ptr_eq(m, &owner) && new_files.iter().any(|f| f.starts_with(m.root())))
            .unwrap();
        mirror.poison(&"test: the mirror is out");
        store.abort_upload("mpu", "third", &id3).await.unwrap();
        assert_eq!(data_files(&paths), 5, "the mirror's part is left behind");
    });
    std::thread::sleep(std::time::Duration::from_millis(5));
    rt().block_on(async {
        let store = open_with_copies(&paths, 2);
        store.collect_orphans(std::time::SystemTime::now()).unwrap();
        assert_eq!(data_files(&paths), 4, "the stray part and its record removed at the next start");
    });
}

/// A mountpath added to a store with copies (a replaced drive) gets its share: the repair
/// moves copies onto the holders that lack one and removes the ones no longer on a holder, and
/// a key overwritten meanwhile (its new copies on the new holders) leaves no old copy behind.
#[test]
fn a_new_mountpath_is_resilvered_and_old_copies_go() {
    let dir = tempfile::tempdir().unwrap();
    let two = vec![dir.path().join("a"), dir.path().join("b")];
    let mut want = BTreeMap::new();
    rt().block_on(async {
        let store = open_with_copies(&two, 2);
        store.create_bucket("grow", "me").await.unwrap();
        for i in 0..80 {
            let data: Vec<u8> = (0..[9000usize, 30_000][i % 2]).map(|j| (i + j) as u8).collect();
            put(&store, "grow", &format!("k{i}"), &data).await;
            want.insert(format!("k{i}"), data);
        }
    });
    let three = vec![dir.path().join("a"), dir.path().join("b"), dir.path().join("c")];
    rt().block_on(async {
        let store = open_with_copies(&three, 2);
        // As the server does at start: bucket records onto the new mountpath.
        store.repair_buckets().await.unwrap();
        for i in 0..10 {
            let data = vec![i as u8; 12_000];
            put(&store, "grow", &format!("k{i}"), &data).await;
            want.insert(format!("k{i}"), data);
        }
        for (k, v) in &want {
            assert_eq!(get(&store, "grow", k).await.as_deref(), Some(v.as_slice()), "{k} before the resilver");
        }
        let r = store.repair_pass(true, false, 0).await.unwrap();
        assert_eq!(r.left, 0, "{r:?}");
        assert!(r.repaired > 10, "the new mountpath got copies: {r:?}");
        assert_eq!(data_files(&three), 2 * want.len(), "two copies each, no old or extra copy left");
        assert!(data_files(&[dir.path().join("c")]) > 30, "the new drive holds its share");
        for (k, v) in &want {
            assert_eq!(get(&store, "grow", k).await.as_deref(), Some(v.as_slice()), "{k} after the resilver");
        }
        let again = store.repair_pass(true, true, 0).await.unwrap();
        assert_eq!((again.repaired, again.left, again.under_replicated), (0, 0, 0), "{again:?}");
    });
}

/// A repair that runs before the new mountpath got its bucket records (a start under load,
/// before `repair_buckets`) is refused there: it counts as a failed copy and the next mountpath
/// of the order takes the copy, never as a key that changed meanwhile (which left the key on
/// one mountpath and reported nothing short).
#[test]
fn a_copy_refused_for_a_missing_bucket_record_goes_to_the_next_mountpath() {
    let dir = tempfile::tempdir().unwrap();
    let two = vec![dir.path().join("a"), dir.path().join("b")];
    rt().block_on(async {
        let store = open_with_copies(&two, 1);
        store.create_bucket("late", "me").await.unwrap();
        for i in 0..40 {
            put(&store, "late", &format!("k{i}"), &[i as u8; 12_000]).await;
        }
    });
    let three = vec![dir.path().join("a"), dir.path().join("b"), dir.path().join("c")];
    rt().block_on(async {
        let store = open_with_copies(&three, 2);
        let r = store.repair_pass(true, false, 0).await.unwrap();
        assert_eq!((r.left, r.repaired), (0, 40), "{r:?}");
        assert_eq!(data_files(&three), 80, "two copies of every key, none on the new mountpath");
        assert_eq!(data_files(&[dir.path().join("c")]), 0);
        // Once the records are there, the copies move onto their holders.
        store.repair_buckets().await.unwrap();
        let moved = store.repair_pass(true, false, 0).await.unwrap();
        assert!(moved.repaired > 5 && moved.left == 0, "{moved:?}");
        assert_eq!(data_files(&three), 80);
        assert!(data_files(&[dir.path().join("c")]) > 5);
    });
}

/// A mountpath that failed (and missed an overwrite) and comes back after a restart never
/// serves its older copy: reads compare every copy until a repair pass removed it.
#[test]
fn a_failed_mountpath_back_after_a_restart_never_serves_an_older_copy() {
    let dir = tempfile::tempdir().unwrap();
    let paths = vec![dir.path().join("a"), dir.path().join("b"), dir.path().join("c")];
    let keys: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    rt().block_on(async {
        let store = open_with_copies(&paths, 2);
        store.create_bucket("back", "me").await.unwrap();
        for k in &keys {
            put(&store, "back", k, &[1u8; 9000]).await;
        }
        store.mountpaths()[0].poison(&"test: drive failed");
        store.record_failures();
        for k in &keys {
            put(&store, "back", k, &[2u8; 9000]).await;
        }
    });
    rt().block_on(async {
        // Restarted with the drive working again (not detached): its copies are older.
        let store = open_with_copies(&paths, 2);
        for k in &keys {
            assert_eq!(get(&store, "back", k).await.as_deref(), Some(&[2u8; 9000][..]), "{k} after the restart");
        }
        let r = store.repair_pass(true, false, 0).await.unwrap();
        assert_eq!(r.left, 0, "{r:?}");
        assert!(!paths.iter().any(|p| p.join("copies-unclean").exists()), "clean once the pass found all well");
        for k in &keys {
            assert_eq!(get(&store, "back", k).await.as_deref(), Some(&[2u8; 9000][..]), "{k} after the repair");
        }
        assert_eq!(data_files(&paths), 2 * keys.len(), "the older copies went");
    });
}

/// An ACL change made while a holder was out (same modification time on both copies) stands
/// after the holder comes back: the copy on the mountpath that failed loses the tie.
#[test]
fn an_acl_change_made_while_a_copy_was_out_stands_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let paths = vec![dir.path().join("a"), dir.path().join("b"), dir.path().join("c")];
    let keys: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    rt().block_on(async {
        let store = open_with_copies(&paths, 2);
        store.create_bucket("acls", "me").await.unwrap();
        for k in &keys {
            put(&store, "acls", k, b"small").await;
        }
        store.mountpaths()[0].poison(&"test: drive failed");
        for k in &keys {
            store.set_object_acl("acls", k, engine::CannedAcl::PublicRead).await.unwrap();
        }
    });
    rt().block_on(async {
        let store = open_with_copies(&paths, 2);
        for k in &keys {
            assert_eq!(store.head_object("acls", k).unwrap().acl, engine::CannedAcl::PublicRead, "{k}");
        }
        assert_eq!(store.repair_pass(true, false, 0).await.unwrap().left, 0);
        for k in &keys {
            assert_eq!(
                store.head_object("acls", k).unwrap().acl,
                engine::CannedAcl::PublicRead,
                "{k} after the repair"
            );
        }
    });
}

/// A listing of a copies bucket never comes back short: with as many mountpaths failed since
/// the last whole repair as the bucket has copies, some key may have no healthy copy, and the
/// listing is refused; after a repair with one failed, a second failure still lists everything.
#[test]
fn a_listing_is_refused_rather_than_short_when_a_key_may_have_no_healthy_copy() {
    let dir = tempfile::tempdir().unwrap();
    let paths = vec![dir.path().join("a"), dir.path().join("b"), dir.path().join("c")];
    let all = ListQuery { prefix: "", delimiter: None, after: None, max_keys: 1000 };
    rt().block_on(async {
        let store = open_with_copies(&paths, 2);
        store.create_bucket("lists", "me").await.unwrap();
        for i in 0..40 {
            put(&store, "lists", &format!("k{i:02}"), b"x").await;
        }
        store.mountpaths()[0].poison(&"test: drive failed");
        store.mountpaths()[1].poison(&"test: a second drive failed");
        assert!(matches!(store.list_objects("lists", &all), Err(Error::Poisoned { .. })));
    });
    rt().block_on(async {
        let store = open_with_copies(&paths, 2);
        store.mountpaths()[0].poison(&"test: drive failed");
        assert_eq!(store.list_objects("lists", &all).unwrap().entries.len(), 40, "one failed: every key listed");
        assert_eq!(store.repair_pass(true, false, 0).await.unwrap().left, 0);
        store.mountpaths()[1].poison(&"test: a second drive failed");
        assert_eq!(store.list_objects("lists", &all).unwrap().entries.len(), 40, "repaired before the second");
    });
}

/// Reads all of `len` bytes from a reader.
async fn read_all(r: &engine::ObjectReader, len: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = engine::take_buffer();
    while (out.len() as u64) < len {
        let (n, b) = r.read_at(buf, out.len() as u64, (len - out.len() as u64) as usize).await;
        buf = b;
        if n.unwrap() == 0 {
            break;
        }
        out.extend_from_slice(buf.as_slice());
    }
    out
}

/// Copies part `n` of `id` from `from` (the upload's node) into `to`'s copied parts.
async fn copy_part(from: &Arc<engine::Store>, to: &Arc<engine::Store>, key: &str, id: &str, n: u32) -> bool {
    let (parts, _) = from.list_parts("mpu", key, id, n - 1, 1).unwrap();
    let source = parts[0].1.clone();
    let reader = from.open_part("mpu", key, (id, n), &source.etag()).await.unwrap();
    let bytes = read_all(&reader, source.size).await;
    let mut w = to.part_copy_writer("mpu", key, (id, n), &source).unwrap();
    let mut b = engine::IoBuffer::with_capacity(bytes.len().max(1));
    b.extend_from_slice(&bytes);
    let (r, _) = w.data().write(b).await;
    r.unwrap();
    w.finish().await.unwrap()
}

/// A cluster holder's copy of a multipart upload (D40), between two stores: parts copied as they
/// arrive (two with the same bytes among them) complete the object there without a byte moved;
/// a holder missing a part refuses (it pulls the object whole instead) and drops what it has; a
/// part copied after the completion is not kept.
#[test]
fn parts_copied_to_another_node_complete_there_from_the_parts() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (vec![dir.path().join("a")], vec![dir.path().join("b")]);
    rt().block_on(async {
        let (primary, holder) = (open(&a), open(&b));
        for s in [&primary, &holder] {
            s.create_bucket("mpu", "me").await.unwrap();
        }
        let parts = [vec![7u8; 20_000], vec![7u8; 20_000], vec![9u8; 100]];
        let id = primary.create_upload("mpu", "big", "me", UploadOptions::default()).await.unwrap();
        let mut list = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let n = i as u32 + 1;
            let etag = upload_part(&primary, "big", &id, n, p).await;
            assert!(copy_part(&primary, &holder, "big", &id, n).await);
            list.push(CompletePart { part_number: n, etag, checksum: None });
        }
        assert_eq!(data_files(&b), 3, "the parts are on the holder before the completion");
        let before = data_inodes(&b);
        let meta = primary.complete_upload("mpu", "big", &id, &list, CompleteOptions::default()).await.unwrap();
        assert!(holder.complete_copied("mpu", "big", &meta).await.unwrap());
        assert_eq!(data_inodes(&b), before, "completed from the parts in place");
        assert_eq!(get(&holder, "mpu", "big").await.unwrap(), parts.concat());
        let held = holder.head_object("mpu", "big").unwrap();
        assert_eq!((held.etag(), held.mtime_ms, held.size), (meta.etag(), meta.mtime_ms, meta.size));
        // The same completion offered again: the version is there already.
        assert!(matches!(holder.complete_copied("mpu", "big", &meta).await, Err(Error::PreconditionFailed)));

        // A holder that missed part 2 refuses; its copied part goes.
        let id = primary.create_upload("mpu", "two", "me", UploadOptions::default()).await.unwrap();
        let e1 = upload_part(&primary, "two", &id, 1, &[1u8; 20_000]).await;
        assert!(copy_part(&primary, &holder, "two", &id, 1).await);
        let e2 = upload_part(&primary, "two", &id, 2, &[2u8; 30_000]).await;
        let cp = |n: u32, e: &str| CompletePart { part_number: n, etag: e.to_owned(), checksum: None };
        let list = [cp(1, &e1), cp(2, &e2)];
        let meta = primary.complete_upload("mpu", "two", &id, &list, CompleteOptions::default()).await.unwrap();
        assert_eq!(data_files(&b), 4);
        assert!(!holder.complete_copied("mpu", "two", &meta).await.unwrap());
        assert_eq!(data_files(&b), 3, "the refused completion dropped the part copied for it");
        assert!(get(&holder, "mpu", "two").await.is_none());

        // A part copy that ends after the holder took the completed object is not kept.
        let id = primary.create_upload("mpu", "late", "me", UploadOptions::default()).await.unwrap();
        let e1 = upload_part(&primary, "late", &id, 1, &[3u8; 20_000]).await;
        let (parts, _) = primary.list_parts("mpu", "late", &id, 0, 1).unwrap();
        assert!(copy_part(&primary, &holder, "late", &id, 1).await);
        let meta =
            primary.complete_upload("mpu", "late", &id, &[cp(1, &e1)], CompleteOptions::default()).await.unwrap();
        assert!(holder.complete_copied("mpu", "late", &meta).await.unwrap());
        let files = data_files(&b);
        let mut w = holder.part_copy_writer("mpu", "late", (&id, 1), &parts[0].1).unwrap();
        let mut buf = engine::IoBuffer::with_capacity(20_000);
        buf.extend_from_slice(&[3u8; 20_000]);
        w.data().write(buf).await.0.unwrap();
        assert!(!w.finish().await.unwrap(), "a late copy is not recorded");
        assert_eq!(data_files(&b), files, "and its file is gone");
        assert_eq!(get(&holder, "mpu", "late").await.unwrap(), vec![3u8; 20_000]);
    });
}
