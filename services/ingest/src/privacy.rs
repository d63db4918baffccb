//! Keyed hashing of applicant IDs (CCCD numbers, tax codes).
//!
//! The raw ID never leaves this module: rows carry HMAC-SHA256(key, id), which
//! still lets analysts count distinct applicants and join across events, but
//! cannot be reversed by enumerating the 10^12 possible CCCD numbers without
//! the key. The key comes from a file or the environment; there is no default.

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The shortest key accepted, in bytes.
const MIN_KEY_BYTES: usize = 16;

#[derive(Clone)]
pub struct ApplicantHasher {
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for ApplicantHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApplicantHasher(<key>)")
    }
}

impl ApplicantHasher {
    pub fn new(key: &[u8]) -> Result<ApplicantHasher> {
        ensure!(
            key.len() >= MIN_KEY_BYTES,
            "the applicant HMAC key has {} bytes; use at least {MIN_KEY_BYTES} random bytes",
            key.len()
        );
        let keyed = Hmac::<Sha256>::new_from_slice(key).context("HMAC key")?;
        Ok(ApplicantHasher { keyed })
    }

    /// From `--applicant-key-file` or `--applicant-key`; refuses to run
    /// without one, since storing IDs unhashed is not an option.
    pub fn from_sources(file: Option<&Path>, inline: Option<&str>) -> Result<ApplicantHasher> {
        match (file, inline) {
            (Some(path), _) => {
                let text = std::fs::read(path)
                    .with_context(|| format!("reading the applicant HMAC key file {}", path.display()))?;
                ApplicantHasher::new(text.trim_ascii())
            }
            (None, Some(key)) => ApplicantHasher::new(key.trim().as_bytes()),
            (None, None) => bail!(
                "no applicant HMAC key: set DVC_APPLICANT_KEY_FILE (or --applicant-key-file) to a file of at least \
                 {MIN_KEY_BYTES} random bytes, e.g. `head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > key`; \
                 keep it secret and stable, or hashes will not match across restarts"
            ),
        }
    }

    pub fn hash(&self, applicant_id: &str) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(applicant_id.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc4231_test_case_2() {
        // RFC 4231 §4.3 uses a 4-byte key, below our minimum; check the
        // primitive directly, then our wrapper on a long key.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let h = ApplicantHasher::new(&[7u8; 32]).unwrap();
        assert_eq!(h.hash("079123456789"), h.hash("079123456789"));
        assert_ne!(h.hash("079123456789"), h.hash("079123456788"));
        assert_ne!(ApplicantHasher::new(&[8u8; 32]).unwrap().hash("079123456789"), h.hash("079123456789"));
    }

    #[test]
    fn refuses_short_or_missing_keys() {
        assert!(ApplicantHasher::new(b"short").is_err());
        let err = ApplicantHasher::from_sources(None, None).unwrap_err().to_string();
        assert!(err.contains("DVC_APPLICANT_KEY_FILE"), "{err}");
    }

    #[test]
    fn debug_hides_the_key() {
        let h = ApplicantHasher::new(b"0123456789abcdef-secret").unwrap();
        assert!(!format!("{h:?}").contains("secret"));
    }
}
