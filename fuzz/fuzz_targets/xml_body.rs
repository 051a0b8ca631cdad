#![no_main]
// Property: see keel::fuzzing::xml_body.
libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::xml_body(data));
