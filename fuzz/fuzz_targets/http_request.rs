#![no_main]
// Property: see keel::fuzzing::http_request.
libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::http_request(data));
