//! Run configs (`aekit::config::RunConfig::parse`) with one `--set key=value` override.
//!
//! Input: the TOML text, then optionally a NUL byte and the override (`key=value`); both are
//! read as UTF-8, invalid sequences replaced. A config that parses is validated again and
//! written back to TOML (what a run directory keeps), which must read back to the same config.
#![no_main]

use aekit::config::RunConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (text, overrides) = match data.iter().position(|&b| b == 0) {
        Some(at) => (
            &data[..at],
            vec![String::from_utf8_lossy(&data[at + 1..]).into_owned()],
        ),
        None => (data, Vec::new()),
    };
    let text = String::from_utf8_lossy(text);
    let Ok(config) = RunConfig::parse(&text, "fuzz.toml", &overrides) else {
        return;
    };
    config
        .validate("fuzz.toml")
        .expect("a parsed config validates");
    let written = config.to_toml();
    let again = RunConfig::parse(&written, "written.toml", &[])
        .unwrap_or_else(|e| panic!("the config written back does not parse: {e}\n{written}"));
    // Compared as text: a NaN (where a setting allows one) is not equal to itself.
    assert_eq!(
        again.to_toml(),
        written,
        "the config written back reads differently"
    );
});
