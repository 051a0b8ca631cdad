#![no_main]
// Property: see keel::fuzzing::chunked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::chunked(data));
