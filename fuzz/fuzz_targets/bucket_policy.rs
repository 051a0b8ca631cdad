#![no_main]
// Property: see keel::fuzzing::bucket_policy.
libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::bucket_policy(data));
