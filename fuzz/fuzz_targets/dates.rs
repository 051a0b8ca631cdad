#![no_main]
// Property: see keel::fuzzing::dates.
libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::dates(data));
