#![no_main]
// Property: see keel::fuzzing::tagging.
libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::tagging(data));
