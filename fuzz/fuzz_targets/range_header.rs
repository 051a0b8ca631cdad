#![no_main]
// Property: see keel::fuzzing::range_header.
libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::range_header(data));
