//! Replays every committed fuzz input (`fuzz/regressions/<target>/`) through the same property
//! the fuzz target checks, on stable, in every `cargo test`.

#[test]
fn committed_fuzz_inputs_hold_their_properties() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let mut replayed = 0;
    for (name, check) in keel::fuzzing::TARGETS {
        let dir = root.join(name);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            check(&data);
            replayed += 1;
        }
    }
    assert!(replayed >= keel::fuzzing::TARGETS.len(), "every target has at least one input");
}
