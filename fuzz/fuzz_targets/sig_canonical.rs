#![no_main]
// Property: see keel::fuzzing::sig_canonical.
libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::sig_canonical(data));
