//! Random bearer secrets (session cookies, API tokens, the setup link) and the digest that is all
//! the database keeps of them.

use sha2::{Digest, Sha256};

/// A new random secret: 32 bytes from the operating system, as 64 hex digits.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the database stores of a secret. A secret is 256 random bits, so a plain SHA-256 is
/// enough (no salt or stretching needed, unlike a password).
pub fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_random_hex_and_digests_are_stable() {
        let (a, b) = (super::generate(), super::generate());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(super::digest(&a), super::digest(&a));
        assert_ne!(super::digest(&a), super::digest(&b));
    }
}
