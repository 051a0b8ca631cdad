//! Erasure coding prototype (issue 15, DESIGN D37): how fast `reed-solomon-simd` encodes a
//! stripe of k data shards into m parity shards, and rebuilds the data with m shards lost (the
//! worst degraded read), on one core. Checks every rebuilt shard against the original.
//!
//!   cargo run --release -p keel-benches --bin ec-proto -- [SECONDS_PER_CASE=2]

use std::time::{Duration, Instant};

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

fn main() {
    let secs: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let budget = Duration::from_secs_f64(secs);
    println!("{:<8} {:>10} {:>14} {:>14} {:>16}", "k+m", "shard", "encode MB/s", "decode MB/s", "parity overhead");
    for (k, m) in [(4usize, 2usize), (8, 3), (10, 4)] {
        for shard in [64usize << 10, 1 << 20] {
            let (enc, dec) = run(k, m, shard, budget);
            println!(
                "{:<8} {:>10} {:>14.0} {:>14.0} {:>15.0}%",
                format!("{k}+{m}"),
                format!("{} KiB", shard >> 10),
                enc,
                dec,
                100.0 * m as f64 / k as f64
            );
        }
    }
}

/// MB/s of data (k shards) encoded, and rebuilt with the first m data shards missing.
fn run(k: usize, m: usize, shard: usize, budget: Duration) -> (f64, f64) {
    let data: Vec<Vec<u8>> =
        (0..k).map(|i| (0..shard).map(|j| ((i * 131 + j * 7) ^ (j >> 9)) as u8).collect()).collect();
    let mut encoder = ReedSolomonEncoder::new(k, m, shard).expect("a supported shape");
    let mut parity: Vec<Vec<u8>> = Vec::new();
    let mut n = 0u64;
    let started = Instant::now();
    while started.elapsed() < budget || n == 0 {
        for d in &data {
            encoder.add_original_shard(d).expect("shard");
        }
        let result = encoder.encode().expect("encode");
        if n == 0 {
            parity = result.recovery_iter().map(<[u8]>::to_vec).collect();
        }
        n += 1;
    }
    let enc = (n * (k * shard) as u64) as f64 / started.elapsed().as_secs_f64() / 1e6;

    let mut decoder = ReedSolomonDecoder::new(k, m, shard).expect("a supported shape");
    let mut n = 0u64;
    let started = Instant::now();
    while started.elapsed() < budget || n == 0 {
        // The first m data shards are lost: the rest of the data and every parity shard rebuild them.
        for (i, d) in data.iter().enumerate().skip(m) {
            decoder.add_original_shard(i, d).expect("shard");
        }
        for (i, p) in parity.iter().enumerate() {
            decoder.add_recovery_shard(i, p).expect("shard");
        }
        let result = decoder.decode().expect("decode");
        if n == 0 {
            for (i, d) in data.iter().enumerate().take(m) {
                assert_eq!(result.restored_original(i).expect("restored"), &d[..], "shard {i} rebuilt wrong");
            }
        }
        n += 1;
    }
    let dec = (n * (k * shard) as u64) as f64 / started.elapsed().as_secs_f64() / 1e6;
    (enc, dec)
}
