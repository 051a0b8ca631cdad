#![no_main]
// Property: see keel::fuzzing::cluster_wire.
libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::cluster_wire(data));
