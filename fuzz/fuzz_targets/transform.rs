#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| popcrypt::fuzzing::transform(data));
