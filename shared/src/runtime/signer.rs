//! Device keys: a software P-256 key stored in the data directory by default; shells with
//! secure hardware supply their own [`DeviceSigner`].

use keyway_protocol::keys::DeviceSigner;
use keyway_protocol::{CryptoError, PublicKey, Signature, SigningKey};
use ring::rand::SystemRandom;
use std::path::Path;

/// A device signer the runtime can share across tasks.
pub type SharedSigner = std::sync::Arc<dyn DeviceSigner + Send + Sync>;

/// A software key persisted as PKCS#8 (file mode 0600 on Unix).
#[derive(Debug)]
pub struct SoftwareSigner {
    key: SigningKey,
    rng: SystemRandom,
}

impl SoftwareSigner {
    pub fn generate() -> Result<Self, CryptoError> {
        let rng = SystemRandom::new();
        let (key, _) = SigningKey::generate(&rng)?;
        Ok(Self { key, rng })
    }

    /// Loads the key at `path`, creating it on first use.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        let rng = SystemRandom::new();
        let invalid = |e: CryptoError| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        if let Ok(pkcs8) = std::fs::read(path) {
            let key = SigningKey::from_pkcs8(&pkcs8, &rng).map_err(invalid)?;
            return Ok(Self { key, rng });
        }
        let (key, pkcs8) = SigningKey::generate(&rng).map_err(invalid)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        std::io::Write::write_all(&mut opts.open(path)?, &pkcs8)?;
        Ok(Self { key, rng })
    }
}

impl DeviceSigner for SoftwareSigner {
    fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    fn sign(&self, msg: &[u8]) -> Result<Signature, CryptoError> {
        self.key.sign(&self.rng, msg)
    }
}
