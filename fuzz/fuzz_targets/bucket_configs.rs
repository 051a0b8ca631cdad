#![no_main]
// Property: see keel::fuzzing::bucket_configs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::bucket_configs(data));
