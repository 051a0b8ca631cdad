//! Helpers shared by the engine's integration tests (real directories).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use engine::{Error, IoBuffer, ListQuery, PutOptions, Store, StoreConfig, SyncMode};

pub fn open(paths: &[PathBuf]) -> Arc<Store> {
    let cfg = StoreConfig {
        mountpaths: paths.to_vec(),
        sync: SyncMode::None,
        index: Default::default(),
        odirect: false,
        faults: None,
    };
    // A store dropped a moment ago may still hold its index lock while its committer exits.
    for _ in 0..200 {
        match Store::open(&cfg) {
            Ok(s) => return s,
            Err(Error::Index(e)) if e.contains("Locked") => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(e) => panic!("open: {e}"),
        }
    }
    panic!("index stayed locked");
}

pub fn rt() -> compio::runtime::Runtime {
    compio::runtime::Runtime::new().unwrap()
}

pub async fn put(store: &Arc<Store>, bucket: &str, key: &str, data: &[u8]) -> engine::ObjectMeta {
    let mut w = store.put_writer(bucket, key, Some(data.len() as u64), None).unwrap();
    for chunk in data.chunks(300_000) {
        let mut b = IoBuffer::with_capacity(chunk.len().max(1));
        b.extend_from_slice(chunk);
        let (r, _) = w.data().write(b).await;
        r.unwrap();
    }
    w.finish(PutOptions::default()).await.unwrap()
}

pub async fn get(store: &Store, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let r = match store.open_object(bucket, key).await {
        Ok(r) => r,
        Err(Error::NoSuchObject) => return None,
        Err(e) => panic!("get {key}: {e}"),
    };
    let mut out = Vec::new();
    let mut buf = IoBuffer::with_capacity(1 << 20);
    while (out.len() as u64) < r.meta.size {
        let (n, b) = r.read_at(buf, out.len() as u64, 1 << 20).await;
        buf = b;
        let n = n.unwrap();
        assert!(n > 0);
        out.extend_from_slice(buf.as_slice());
    }
    Some(out)
}

pub fn data_files(paths: &[PathBuf]) -> usize {
    fn walk(p: &Path) -> usize {
        std::fs::read_dir(p)
            .map_or(0, |rd| rd.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum())
    }
    paths.iter().map(|p| walk(&p.join("objects"))).sum()
}

/// A small deterministic generator (no dependency for tests).
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random puts, deletes, paged listings, reads and restarts over three mountpaths with `copies`
/// copies, checked against a `BTreeMap` after every step and at the end; then every data file
/// is accounted for (`copies` per object that needs one, nothing orphaned). Returns the store
/// and the model.
pub async fn model_run(
    paths: &[PathBuf],
    copies: u8,
    seed: u64,
    steps: u64,
) -> (Arc<Store>, BTreeMap<String, Vec<u8>>) {
    let mut store = open_with_copies(paths, copies);
    store.create_bucket("model", "me").await.unwrap();
    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut rng = Rng(seed);
    let keys: Vec<String> = (0..40).map(|i| format!("{}/{}", ["a", "b", "a/b", "c"][i % 4], i)).collect();
    for step in 0..steps {
        let key = &keys[rng.below(keys.len() as u64) as usize];
        match rng.below(10) {
            0..=4 => {
                let len = [0usize, 10, 8192, 8193, 200_000][rng.below(5) as usize];
                let data: Vec<u8> = (0..len).map(|i| (i as u64 ^ step) as u8).collect();
                put(&store, "model", key, &data).await;
                model.insert(key.clone(), data);
            }
            5 | 6 => {
                store.delete_object("model", key).await.unwrap();
                model.remove(key);
            }
            7 => {
                let prefix = ["", "a", "a/", "b/"][rng.below(4) as usize];
                let max = 1 + rng.below(7) as usize;
                let mut after: Option<String> = None;
                let mut seen = Vec::new();
                loop {
                    let q = ListQuery { prefix, delimiter: None, after: after.as_deref(), max_keys: max };
                    let page = store.list_objects("model", &q).unwrap();
                    seen.extend(page.entries.iter().map(|e| (e.key.clone(), e.size)));
                    if !page.truncated {
                        break;
                    }
                    after = page.last;
                }
                let want: Vec<_> = model
                    .iter()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .map(|(k, v)| (k.clone(), v.len() as u64))
                    .collect();
                assert_eq!(seen, want, "listing prefix {prefix:?} at step {step}: each key once");
            }
            8 => {
                // Restart: everything acknowledged is still there.
                drop(store);
                store = open_with_copies(paths, copies);
            }
            _ => assert_eq!(get(&store, "model", key).await.as_deref(), model.get(key).map(Vec::as_slice)),
        }
    }
    for k in &keys {
        assert_eq!(get(&store, "model", k).await.as_deref(), model.get(k).map(Vec::as_slice), "{k}");
    }
    let files = model.values().filter(|v| v.len() > 8192).count();
    assert_eq!(data_files(paths), usize::from(copies) * files, "no orphaned or missing data files");
    (store, model)
}

pub async fn upload_part(store: &Arc<Store>, key: &str, id: &str, n: u32, data: &[u8]) -> String {
    let mut w = store.part_writer("mpu", key, id, n, Some(data.len() as u64), None).unwrap();
    if !data.is_empty() {
        let mut b = IoBuffer::with_capacity(data.len());
        b.extend_from_slice(data);
        let (r, _) = w.data().write(b).await;
        r.unwrap();
    }
    w.finish(None, None).await.unwrap().etag()
}

pub fn open_with_copies(paths: &[PathBuf], copies: u8) -> Arc<Store> {
    let store = open(paths);
    store.set_default_copies(copies);
    store
}
