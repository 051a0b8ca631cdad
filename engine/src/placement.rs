//! Placement: highest-random-weight (rendezvous) hashing of `bucket/key` over the mountpaths.
//! Adding a mountpath moves only the objects that now weigh highest on it.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Returns the index of the mountpath that owns `bucket/key`, given each mountpath's stable id.
/// Panics if `mountpath_ids` is empty (a store always has at least one mountpath).
pub fn owner(mountpath_ids: &[u64], bucket: &str, key: &[u8]) -> usize {
    assert!(!mountpath_ids.is_empty(), "placement over no mountpaths");
    let base = name_hash(bucket, key);
    let mut best = 0;
    let mut best_weight = 0u64;
    for (i, id) in mountpath_ids.iter().enumerate() {
        let w = mix(base ^ id.rotate_left(17));
        if i == 0 || w > best_weight {
            best = i;
            best_weight = w;
        }
    }
    best
}

/// The mountpaths in `bucket/key`'s HRW order (the owner first): where its copies go.
pub fn order(mountpath_ids: &[u64], bucket: &str, key: &[u8]) -> Vec<usize> {
    let base = name_hash(bucket, key);
    let mut weighted: Vec<(u64, usize)> =
        mountpath_ids.iter().enumerate().map(|(i, id)| (mix(base ^ id.rotate_left(17)), i)).collect();
    // Heaviest first; equal weights (never in practice) keep the lower index first, as `owner`.
    weighted.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    weighted.into_iter().map(|(_, i)| i).collect()
}

fn name_hash(bucket: &str, key: &[u8]) -> u64 {
    // The bucket name never holds '/', so "bucket/key" is unambiguous.
    let h = xxh3_64_with_seed(bucket.as_bytes(), 0x6b65_656c);
    xxh3_64_with_seed(key, h)
}

/// A full-avalanche 64-bit mixer (splitmix64's finaliser).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_evenly_and_moves_little() {
        let ids: Vec<u64> = (1..=4u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
        let mut counts = [0usize; 5];
        let mut moved = 0;
        let mut ids5 = ids.clone();
        ids5.push(0x1234_5678_9abc_def0);
        let n = 20_000;
        for k in 0..n {
            let key = format!("obj-{k}");
            let a = owner(&ids, "b", key.as_bytes());
            counts[a] += 1;
            let b = owner(&ids5, "b", key.as_bytes());
            if b != a {
                assert_eq!(b, 4, "adding a mountpath moves objects only onto it");
                moved += 1;
            }
        }
        for c in &counts[..4] {
            assert!((*c as f64 - n as f64 / 4.0).abs() < n as f64 * 0.03, "uneven spread {counts:?}");
        }
        assert!((moved as f64 - n as f64 / 5.0).abs() < n as f64 * 0.03, "moved {moved}");
    }

    #[test]
    fn the_order_starts_with_the_owner_and_names_each_mountpath_once() {
        let ids: Vec<u64> = (1..=5u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
        let mut second = [0usize; 5];
        for k in 0..5_000 {
            let key = format!("obj-{k}");
            let o = order(&ids, "b", key.as_bytes());
            assert_eq!(o[0], owner(&ids, "b", key.as_bytes()));
            let mut sorted = o.clone();
            sorted.sort();
            assert_eq!(sorted, vec![0, 1, 2, 3, 4]);
            second[o[1]] += 1;
        }
        // Second copies spread over every mountpath too.
        assert!(second.iter().all(|c| *c > 800), "{second:?}");
    }

    #[test]
    fn single_mountpath_owns_everything() {
        assert_eq!(owner(&[9], "bucket", b"anything"), 0);
    }
}
