//! Any bytes as a webhook delivery: the signature check and the parser must answer, never panic.
//! The first byte picks the event name and splits off a signature header from the input.
#![no_main]

use anklet_core::github::webhook::{parse_delivery, verify_signature};
use anklet_core::secret::Secret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let event = ["workflow_job", "ping", "push"][usize::from(first) % 3];
    let cut = rest.len().min(usize::from(first) % 80);
    let (sig, body) = rest.split_at(cut);
    let header = String::from_utf8_lossy(sig);
    let _ = verify_signature(&Secret::new("fuzz-secret"), body, Some(&header));
    let _ = parse_delivery(event, body);
});
