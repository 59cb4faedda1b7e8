//! Context tokens: the short signed reference to a handoff's context that
//! travels in SIP User-to-User, screen-pop URLs and webhooks.
//!
//! Layout before base64url: version (1) ‖ handoff id (16, a UUID) ‖ purpose
//! (1) ‖ expiry in Unix seconds (4, big endian) ‖ HMAC-SHA256 of the former,
//! truncated to 16 bytes. 38 bytes, 51 characters: it fits a 64-byte budget,
//! so its hex form fits the 128-byte User-to-User limit.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

const VERSION: u8 = 1;
const MAC_BYTES: usize = 16;
const BODY_BYTES: usize = 1 + 16 + 1 + 4;
const KEY_BYTES: usize = 32;

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Purpose {
    /// Read the context (JSON or screen-pop page).
    ReadContext = 1,
}

/// Why a token was refused. Deliberately coarse: the caller learns nothing
/// about which part was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the context token is not valid for this handoff")]
pub struct InvalidToken;

/// Signs and verifies context tokens with one secret key.
#[derive(Clone)]
pub struct TokenSigner {
    key: [u8; KEY_BYTES],
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner { key: <redacted> }")
    }
}

impl TokenSigner {
    pub fn new(key: [u8; KEY_BYTES]) -> Self {
        Self { key }
    }

    /// Reads the key from `path`, creating a random one (mode 0600) when the
    /// file does not exist, so that tokens stay valid across restarts.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; KEY_BYTES] = bytes.as_slice().try_into().map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{} must hold exactly {KEY_BYTES} bytes", path.display()),
                    )
                })?;
                Ok(Self::new(key))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; KEY_BYTES] = rand::random();
                write_private(path, &key)?;
                Ok(Self::new(key))
            }
            Err(error) => Err(error),
        }
    }

    fn mac(&self, body: &[u8]) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// A token for `handoff_id` and `purpose`, valid until `expires_unix`.
    pub fn sign(&self, handoff_id: Uuid, purpose: Purpose, expires_unix: u32) -> String {
        let mut bytes = Vec::with_capacity(BODY_BYTES + MAC_BYTES);
        bytes.push(VERSION);
        bytes.extend_from_slice(handoff_id.as_bytes());
        bytes.push(purpose as u8);
        bytes.extend_from_slice(&expires_unix.to_be_bytes());
        let mac = self.mac(&bytes);
        bytes.extend_from_slice(&mac[..MAC_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Checks that `token` was signed by this key for exactly this handoff
    /// and purpose, and has not expired at `now_unix`.
    pub fn verify(
        &self,
        token: &str,
        handoff_id: Uuid,
        purpose: Purpose,
        now_unix: u64,
    ) -> Result<(), InvalidToken> {
        if token.len() > 128 {
            return Err(InvalidToken);
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| InvalidToken)?;
        if bytes.len() != BODY_BYTES + MAC_BYTES {
            return Err(InvalidToken);
        }
        let (body, mac) = bytes.split_at(BODY_BYTES);
        let expected = self.mac(body);
        // Constant-time comparison, so that timing reveals nothing of the MAC.
        let difference = mac
            .iter()
            .zip(&expected[..MAC_BYTES])
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if difference != 0
            || body[0] != VERSION
            || body[1..17] != handoff_id.as_bytes()[..]
            || body[17] != purpose as u8
        {
            return Err(InvalidToken);
        }
        let expires = u32::from_be_bytes([body[18], body[19], body[20], body[21]]);
        if u64::from(expires) < now_unix {
            return Err(InvalidToken);
        }
        Ok(())
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_only_its_own_handoff_until_it_expires() {
        let signer = TokenSigner::new([7; KEY_BYTES]);
        let id = Uuid::now_v7();
        let token = signer.sign(id, Purpose::ReadContext, 1_000);
        assert!(token.len() <= 64, "{}", token.len());
        assert_eq!(signer.verify(&token, id, Purpose::ReadContext, 999), Ok(()));
        assert_eq!(
            signer.verify(&token, id, Purpose::ReadContext, 1_001),
            Err(InvalidToken)
        );
        assert_eq!(
            signer.verify(&token, Uuid::now_v7(), Purpose::ReadContext, 999),
            Err(InvalidToken)
        );
        let other_key = TokenSigner::new([8; KEY_BYTES]);
        assert_eq!(
            other_key.verify(&token, id, Purpose::ReadContext, 999),
            Err(InvalidToken)
        );
    }

    #[test]
    fn an_altered_token_is_refused() {
        let signer = TokenSigner::new([7; KEY_BYTES]);
        let id = Uuid::now_v7();
        let token = signer.sign(id, Purpose::ReadContext, u32::MAX);
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64");
        for i in 0..bytes.len() {
            bytes[i] ^= 1;
            let altered = URL_SAFE_NO_PAD.encode(&bytes);
            assert_eq!(
                signer.verify(&altered, id, Purpose::ReadContext, 0),
                Err(InvalidToken),
                "byte {i}"
            );
            bytes[i] ^= 1;
        }
        assert_eq!(
            signer.verify("not a token", id, Purpose::ReadContext, 0),
            Err(InvalidToken)
        );
        assert_eq!(
            signer.verify("", id, Purpose::ReadContext, 0),
            Err(InvalidToken)
        );
    }

    #[test]
    fn the_key_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token.key");
        let first = TokenSigner::load_or_create(&path).expect("create");
        let second = TokenSigner::load_or_create(&path).expect("load");
        assert_eq!(first.key, second.key);
    }
}
