#![no_main]
// Property: see keel::fuzzing::list_query.
libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::list_query(data));
