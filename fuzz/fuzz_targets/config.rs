//! The config file as any text: parsing never panics (errors are diagnostics).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pressroom::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Config::parse(
        text,
        Path::new("config/pressroom.toml"),
        Path::new("/nonexistent"),
    );
});
