//! The installation's Ed25519 signing key: created on first use, stored owner-only, and its
//! public half exported as PEM (SubjectPublicKeyInfo) so that others can pin it.

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::EvidenceError;

/// File name of the private key inside the key folder.
pub const SIGNING_KEY_FILE: &str = "signing-key.pem";
/// File name of the exported public key inside the key folder.
pub const PUBLIC_KEY_FILE: &str = "public-key.pem";

/// The signer of records and tree heads. Clones share nothing but the key bytes.
#[derive(Clone)]
pub struct Signer25519 {
    key: SigningKey,
}

impl Signer25519 {
    /// Loads the key in `dir`, creating it (and `dir`) when absent. The private key file is
    /// written with mode 0600 in a folder with mode 0700, created exclusively so that two
    /// processes starting at once cannot end up with two different keys.
    pub fn load_or_create(dir: &Path) -> Result<Self, EvidenceError> {
        let path = dir.join(SIGNING_KEY_FILE);
        match fs::read_to_string(&path) {
            Ok(pem) => Self::from_pem(&pem, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(dir),
            Err(e) => Err(EvidenceError::io(&path, e)),
        }
    }

    fn create(dir: &Path) -> Result<Self, EvidenceError> {
        create_private_dir(dir)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| EvidenceError::Internal(e.to_string()))?;
        let key = SigningKey::from_bytes(&seed);
        let pem = key
            .to_pkcs8_pem(Default::default())
            .map_err(|e| EvidenceError::Internal(e.to_string()))?;
        let path = dir.join(SIGNING_KEY_FILE);
        let tmp = dir.join(format!(".{SIGNING_KEY_FILE}.{}", std::process::id()));
        {
            let mut f = private_file(&tmp)?;
            f.write_all(pem.as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| EvidenceError::io(&tmp, e))?;
        }
        // hard_link fails if another process won the race; then use its key.
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Self::load_or_create(dir);
            }
            Err(e) => return Err(EvidenceError::io(&path, e)),
        }
        let signer = Self { key };
        fs::write(dir.join(PUBLIC_KEY_FILE), signer.public().to_pem())
            .map_err(|e| EvidenceError::io(&dir.join(PUBLIC_KEY_FILE), e))?;
        Ok(signer)
    }

    fn from_pem(pem: &str, path: &Path) -> Result<Self, EvidenceError> {
        check_private_mode(path)?;
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|e| {
            EvidenceError::Internal(format!(
                "{}: not an Ed25519 private key ({e})",
                path.display()
            ))
        })?;
        Ok(Self { key })
    }

    /// A key held only in memory (tests, benchmarks).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

/// An Ed25519 public key, identified by the SHA-256 of its 32 raw bytes (its key id).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

impl PublicKey {
    pub fn from_raw(bytes: &[u8]) -> Option<Self> {
        let bytes: [u8; 32] = bytes.try_into().ok()?;
        VerifyingKey::from_bytes(&bytes).ok().map(Self)
    }

    /// Reads a PEM SubjectPublicKeyInfo, or a bare base64 of the 32 raw bytes.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            return VerifyingKey::from_public_key_pem(text).ok().map(Self);
        }
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        Self::from_raw(&raw)
    }

    pub fn raw(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn to_pem(&self) -> String {
        self.0
            .to_public_key_pem(Default::default())
            .expect("an Ed25519 public key always encodes")
    }

    pub fn key_id(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    /// Strict verification (RFC 8032 with the non-malleability checks).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = <[u8; 64]>::try_from(signature) else {
            return false;
        };
        let sig = Signature::from_bytes(&sig);
        self.0.verify_strict(message, &sig).is_ok() && self.0.verify(message, &sig).is_ok()
    }
}

/// Creates `dir` (and its parents) owner-only (0700).
pub fn create_private_dir(dir: &Path) -> Result<(), EvidenceError> {
    aqiqat_store::private::create_dir(dir).map_err(|e| EvidenceError::io(dir, e))
}

/// Creates `path` exclusively, owner-only (0600): fails if it exists.
pub fn private_file(path: &Path) -> Result<fs::File, EvidenceError> {
    aqiqat_store::private::create_file(path).map_err(|e| EvidenceError::io(path, e))
}

/// Refuses a private key that others can read: someone may already have copied it.
pub fn check_private_mode(path: &Path) -> Result<(), EvidenceError> {
    match aqiqat_store::private::open_to_others(path) {
        Ok(None) => Ok(()),
        Ok(Some(mode)) => Err(EvidenceError::Internal(format!(
            "{}: the signing key is readable by others (mode {mode:o}); restrict it with `chmod \
             600` and consider the key compromised",
            path.display()
        ))),
        Err(e) => Err(EvidenceError::io(path, e)),
    }
}

/// Where keys live inside a data directory.
pub fn key_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}
