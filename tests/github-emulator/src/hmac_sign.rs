//! `X-Hub-Signature-256`: HMAC-SHA256 of the exact body bytes with the hook's secret, as
//! `sha256=<lower-case hex>` (GitHub's scheme, research/github.md §1.2).

use hmac::{KeyInit, Mac};

/// The header value for `body` signed with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return "sha256=".to_owned(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn githubs_test_vector() {
        assert_eq!(
            super::signature("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
