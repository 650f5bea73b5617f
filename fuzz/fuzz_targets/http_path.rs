//! The request path resolver, with any path: never panics, and whatever it resolves stays
//! inside the site folder and names nothing hidden.
#![no_main]

use std::path::Component;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return; // hyper hands us a valid URI path, which is ASCII.
    };
    if let Some(resolved) = pressroom::http::resolve(path) {
        for c in resolved.relative.components() {
            match c {
                Component::Normal(name) => {
                    let name = name.to_str().expect("UTF-8");
                    assert!(!name.starts_with('.'), "a hidden name: {path}");
                    assert!(!name.contains('\0') && !name.contains('\\'), "{path}");
                }
                other => panic!("{path} resolved to a {other:?} component"),
            }
        }
    }
});
