#![no_main]
// Property: see keel::fuzzing::xml_complete_multipart.
libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::xml_complete_multipart(data));
