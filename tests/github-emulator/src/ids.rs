//! Random identifiers and credentials: delivery GUIDs, tokens in GitHub's formats, session ids.
//! Tokens come from the OS-seeded thread RNG so two emulators never issue the same one.

use rand::RngExt;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

fn pick(alphabet: &[u8], n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| {
            let i = rng.random_range(0..alphabet.len());
            char::from(alphabet.get(i).copied().unwrap_or(b'A'))
        })
        .collect()
}

/// A GUID like GitHub's `X-GitHub-Delivery` (version 4 UUID text).
pub fn guid() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// An installation access token (`ghs_` prefix, like GitHub's server-to-server tokens).
pub fn installation_token() -> String {
    format!("ghs_{}", pick(ALNUM, 36))
}

/// A registration or remove token (29 upper-case characters, as in GitHub's examples).
pub fn runner_token() -> String {
    pick(UPPER_ALNUM, 29)
}

/// A runner session credential handed out inside JIT configs.
pub fn session_token() -> String {
    format!("emu_rs_{}", pick(ALNUM, 40))
}

/// A runner-service session id (not a secret: it only names a session).
pub fn session_id() -> String {
    guid()
}

/// A request id for `x-github-request-id`.
pub fn request_id() -> String {
    pick(UPPER_ALNUM, 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let g = guid();
        assert_eq!(g.len(), 36);
        assert_eq!(g.as_bytes()[14], b'4');
        assert!(installation_token().starts_with("ghs_"));
        assert_eq!(runner_token().len(), 29);
        assert_ne!(session_token(), session_token());
    }
}
