#![no_main]
// Property: see keel::fuzzing::post_form.
libfuzzer_sys::fuzz_target!(|data: &[u8]| keel::fuzzing::post_form(data));
