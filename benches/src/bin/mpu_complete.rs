//! Measures CompleteMultipartUpload in the engine: the same object size split into 10, 100 and
//! 1000 parts, and 1 GiB against 8 GiB objects with the same part count. Completion writes one
//! manifest record and moves no data, so its time should follow the part count only.
//!
//! `cargo run --release -p keel-benches --bin mpu-complete -- DIR [RUNS]`
//! (DIR on the drive to measure; needs about 9 GiB free; `--sync always`, as a server defaults to).

use std::sync::Arc;
use std::time::Instant;

use engine::{CompletePart, IoBuffer, Store, StoreConfig, SyncMode, UploadOptions};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

async fn write_part(store: &Arc<Store>, id: &str, n: u32, size: u64, buf: &mut Option<IoBuffer>) -> String {
    let mut w = store.part_writer("bench", "obj", id, n, Some(size), None).expect("part writer");
    let mut left = size;
    while left > 0 {
        let mut b = buf.take().expect("buffer");
        let take = left.min(b.capacity() as u64) as usize;
        b.truncate(0);
        let fill = vec![(n & 0xff) as u8; take];
        b.extend_from_slice(&fill);
        let (r, back) = w.data().write(b).await;
        r.expect("write part");
        *buf = Some(back);
        left -= take as u64;
    }
    w.finish(None, None).await.expect("finish part").etag()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: mpu-complete DIR [RUNS]"));
    let runs: usize = args.next().map_or(3, |r| r.parse().expect("RUNS is a number"));
    let cases: &[(u64, u32)] = &[(GIB, 10), (GIB, 100), (GIB, 1000), (8 * GIB, 100)];
    let rt = compio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&StoreConfig {
            mountpaths: vec![dir.join("mp")],
            sync: SyncMode::Always,
            index: Default::default(),
            odirect: false,
            faults: None,
        })
        .expect("open store");
        store.create_bucket("bench", "bench").await.expect("bucket");
        let mut buf = Some(IoBuffer::with_capacity((4 * MIB) as usize));
        println!("| object size | parts | part size | completion median | min | max | runs |");
        println!("| --- | --- | --- | --- | --- | --- | --- |");
        for &(size, parts) in cases {
            let mut times = Vec::new();
            for _ in 0..runs {
                let id = store.create_upload("bench", "obj", "bench", UploadOptions::default()).await.expect("upload");
                let part_size = size / u64::from(parts);
                let mut list = Vec::new();
                for n in 1..=parts {
                    let this = if n == parts { size - part_size * u64::from(parts - 1) } else { part_size };
                    let etag = write_part(&store, &id, n, this, &mut buf).await;
                    list.push(CompletePart { part_number: n, etag, checksum: None });
                }
                let t = Instant::now();
                let meta = store
                    .complete_upload("bench", "obj", &id, &list, engine::CompleteOptions::default())
                    .await
                    .expect("complete");
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                assert_eq!(meta.size, size);
                store.delete_object("bench", "obj").await.expect("delete");
            }
            times.sort_by(f64::total_cmp);
            println!(
                "| {} GiB | {parts} | {:.2} MiB | {:.2} ms | {:.2} ms | {:.2} ms | {runs} |",
                size / GIB,
                (size / u64::from(parts)) as f64 / MIB as f64,
                times[times.len() / 2],
                times[0],
                times[times.len() - 1]
            );
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}
