//! The media list as any bytes: reading never panics, and every recipient it keeps has an
//! address and a unique key.
#![no_main]

use std::collections::HashSet;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pressroom::lang::LangTag;
use pressroom::media::MediaList;

fuzz_target!(|data: &[u8]| {
    let site = LangTag::parse("sv").expect("a valid literal tag");
    let (media, _diags) = MediaList::parse(Path::new("config/media.csv"), data, &site);
    let mut keys = HashSet::new();
    for r in &media.recipients {
        assert!(
            keys.insert(r.key()),
            "a duplicate address kept: {}",
            r.key()
        );
    }
});
