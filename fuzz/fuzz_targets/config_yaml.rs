//! Any bytes as `config.yml`, with a small env map: loading must return a config or errors,
//! never panic, and rendering a loaded config must never panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let mut env = BTreeMap::new();
    env.insert("ANKLET_GLOBAL_DATABASE_PORT".to_owned(), "6379".to_owned());
    if let Ok(loaded) = anklet_core::config::load("fuzz.yml", data, &env) {
        let _ = anklet_core::config::render(&loaded.config);
    }
});
