//! TOML run configuration (`config.toml` of a run, `cilp train --config`): any text must
//! parse to a `TrainConfig` or give an error, never a panic; `validate` must not panic; a
//! config that parses and validates must survive a TOML round trip unchanged.
#![no_main]

use cilp_train::TrainConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = toml::from_str::<TrainConfig>(text) else {
        return;
    };
    if cfg.validate().is_err() {
        return;
    }
    let again = toml::to_string(&cfg).expect("a parsed config serialises");
    let back: TrainConfig = toml::from_str(&again)
        .unwrap_or_else(|e| panic!("re-parsing a serialised config failed: {e}\n{again}"));
    assert_eq!(back, cfg, "round trip changed the config:\n{again}");
    assert!(back.validate().is_ok());
});
