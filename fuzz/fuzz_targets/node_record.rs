#![no_main]
// Property: see keel::fuzzing::node_record.
libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::node_record(data));
