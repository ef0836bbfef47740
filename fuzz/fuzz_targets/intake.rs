//! Any byte string given to intake ends in facts or a bad-input error: never a panic that
//! escapes, a hang, an internal error or an unbounded allocation.
#![no_main]

use aqiqat_intake::{AudioStream, Limits};
use libfuzzer_sys::fuzz_target;
use std::sync::Once;

static QUIET: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    // Intake contains decoder panics and reports them as corrupt input, so by default they are
    // not crashes; a panic that escapes intake still aborts (it unwinds into C). With
    // AQIQAT_FUZZ_STRICT=1 libFuzzer's own hook stays and every contained panic is a finding
    // too: the way to collect inputs that crash third-party decoders for regression tests.
    QUIET.call_once(|| {
        if std::env::var_os("AQIQAT_FUZZ_STRICT").is_none() {
            std::panic::set_hook(Box::new(|_| {}));
        }
    });
    let limits = Limits {
        max_duration_s: 600.0,
        ..Limits::default()
    };
    if let Err(err) = aqiqat_intake::probe_bytes("fuzz", data.to_vec(), &limits) {
        assert!(err.is_bad_input(), "internal error on fuzz input: {err}");
    }
    if let Ok(mut stream) = AudioStream::from_bytes("fuzz", data.to_vec(), Some(16_000), &limits) {
        while let Ok(Some(_)) = stream.next_chunk() {}
    }
});
