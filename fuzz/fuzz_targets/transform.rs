#![no_main]
#![forbid(unsafe_code)]
// A panic inside sequoia/mail-parser that the transform catches is handled
// by design (the original message goes out); see docs/FUZZING.md.
libfuzzer_sys::fuzz_target!(
    init: popcrypt::fuzzing::tolerate_caught_dependency_panics(),
    |data: &[u8]| popcrypt::fuzzing::transform(data)
);
