#![no_main]
// Property: see keel::fuzzing::aws_chunked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::aws_chunked(data));
