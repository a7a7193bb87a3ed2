//! Device keys: a software P-256 key stored in the data directory by default; shells with
//! secure hardware supply their own [`DeviceKey`] (any [`DeviceSigner`] is one).

use super::files;
use keyway_protocol::keys::DeviceSigner;
use keyway_protocol::{CryptoError, PublicKey, Signature, SigningKey};
use ring::rand::SystemRandom;
use std::path::Path;

/// The device key as the runtime uses it. Every [`DeviceSigner`] is one; a platform key
/// implements it itself so that its failures reach the app in its own words (a
/// [`CryptoError`] has no room for them).
pub trait DeviceKey: Send + Sync {
    /// The 65-byte uncompressed P-256 public key.
    fn device_public_key(&self) -> PublicKey;
    /// Signs `msg`; may block (a platform key may wait for the user's presence).
    fn device_sign(&self, msg: &[u8]) -> Result<Signature, String>;
}

impl<T: DeviceSigner + Send + Sync + ?Sized> DeviceKey for T {
    fn device_public_key(&self) -> PublicKey {
        self.public_key()
    }

    fn device_sign(&self, msg: &[u8]) -> Result<Signature, String> {
        self.sign(msg).map_err(|e| e.to_string())
    }
}

/// A device key the runtime can share across tasks.
pub type SharedSigner = std::sync::Arc<dyn DeviceKey>;

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

    /// Loads the key at `path`, creating it on first use (only when there is no file: any
    /// other read error is returned). A new key is written whole or not at all, and when two
    /// processes create one at once both end up with the one that landed first. Errors name
    /// the file.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        let rng = SystemRandom::new();
        match Self::load(path, &rng) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            loaded => return loaded,
        }
        let (key, pkcs8) = SigningKey::generate(&rng)
            .map_err(|e| std::io::Error::other(format!("generate a device key: {e}")))?;
        files::create_dir(files::parent(path))?;
        if files::create_new(path, &pkcs8)? {
            Ok(Self { key, rng })
        } else {
            // Another process created the key meanwhile: use that one.
            Self::load(path, &rng)
        }
    }

    fn load(path: &Path, rng: &SystemRandom) -> std::io::Result<Self> {
        let pkcs8 = std::fs::read(path).map_err(|e| files::context(e, "read device key", path))?;
        let key = SigningKey::from_pkcs8(&pkcs8, rng).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "device key {} ({} bytes) is not a PKCS#8 P-256 key ({e}); \
                     move it aside to create a new one",
                    path.display(),
                    pkcs8.len()
                ),
            )
        })?;
        Ok(Self {
            key,
            rng: rng.clone(),
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_and_loaded_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("device_key.pk8");
        let a = SoftwareSigner::load_or_create(&path).unwrap();
        let b = SoftwareSigner::load_or_create(&path).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["device_key.pk8"], "no temporary left behind");
    }

    #[test]
    fn concurrent_first_starts_share_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device_key.pk8");
        let keys: Vec<PublicKey> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| SoftwareSigner::load_or_create(&path).unwrap()))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().public_key())
                .collect()
        });
        assert!(keys.iter().all(|k| *k == keys[0]));
    }

    #[test]
    fn a_damaged_key_is_named_and_not_replaced() {
        // What a crash between creating and writing the file used to leave.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device_key.pk8");
        std::fs::write(&path, b"").unwrap();
        let err = SoftwareSigner::load_or_create(&path).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }

    #[cfg(unix)]
    #[test]
    fn an_unreadable_key_is_an_error_not_a_new_key() {
        // A directory where the key should be: reading fails with something other than
        // NotFound, and no key is made in its place.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device_key.pk8");
        std::fs::create_dir(&path).unwrap();
        let err = SoftwareSigner::load_or_create(&path).unwrap_err();
        assert_ne!(err.kind(), std::io::ErrorKind::NotFound);
        assert!(err.to_string().contains("read device key"), "{err}");
        assert!(path.is_dir());
    }

    #[cfg(unix)]
    #[test]
    #[ignore = "run by the_key_file_is_private_under_umask_022 in a child process"]
    fn the_key_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new").join("device_key.pk8");
        SoftwareSigner::load_or_create(&path).unwrap();
        assert_eq!(files::tests::mode(&path), 0o600);
        assert_eq!(files::tests::mode(path.parent().unwrap()), 0o700);
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_private_under_umask_022() {
        files::tests::run_under_umask_022("runtime::signer::tests::the_key_file_is_private");
    }
}
