#![no_main]
// Property: see keel::fuzzing::meta_decode.
libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::meta_decode(data));
