//! KeyValue in files: one file per key under a directory, written atomically (temp + rename).

use crux_kv::{KeyValueError, KeyValueOperation, KeyValueResponse, KeyValueResult, value::Value};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

/// Keys become file names: `/` and other unsafe bytes are %-escaped.
fn file_name(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' && !out.is_empty() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn key_name(file: &str) -> Option<String> {
    let bytes = file.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let h = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl FileStore {
    pub fn new(dir: impl AsRef<Path>) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.as_ref())?;
        Ok(Self {
            dir: dir.as_ref().to_path_buf(),
        })
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(file_name(key))
    }

    pub fn get(&self, key: &str) -> std::io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.path(key)) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn set(&self, key: &str, value: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
        let previous = self.get(key)?;
        let tmp = self.dir.join(format!(".tmp-{}", file_name(key)));
        std::fs::write(&tmp, value)?;
        std::fs::rename(&tmp, self.path(key))?;
        Ok(previous)
    }

    pub fn delete(&self, key: &str) -> std::io::Result<Option<Vec<u8>>> {
        let previous = self.get(key)?;
        if previous.is_some() {
            std::fs::remove_file(self.path(key))?;
        }
        Ok(previous)
    }

    pub fn keys(&self, prefix: &str) -> std::io::Result<Vec<String>> {
        let mut keys = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                continue;
            }
            if let Some(k) = key_name(&name)
                && k.starts_with(prefix)
            {
                keys.push(k);
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Executes one crux KeyValue operation.
    pub fn execute(&self, op: &KeyValueOperation) -> KeyValueResult {
        let io = |e: std::io::Error| KeyValueResult::Err {
            error: KeyValueError::Io {
                message: e.to_string(),
            },
        };
        let value = |v: Option<Vec<u8>>| v.map_or(Value::None, Value::Bytes);
        let response = match op {
            KeyValueOperation::Get { key } => match self.get(key) {
                Ok(v) => KeyValueResponse::Get { value: value(v) },
                Err(e) => return io(e),
            },
            KeyValueOperation::Set { key, value: v } => match self.set(key, v) {
                Ok(p) => KeyValueResponse::Set { previous: value(p) },
                Err(e) => return io(e),
            },
            KeyValueOperation::Delete { key } => match self.delete(key) {
                Ok(p) => KeyValueResponse::Delete { previous: value(p) },
                Err(e) => return io(e),
            },
            KeyValueOperation::Exists { key } => match self.get(key) {
                Ok(v) => KeyValueResponse::Exists {
                    is_present: v.is_some(),
                },
                Err(e) => return io(e),
            },
            KeyValueOperation::ListKeys { prefix, cursor } => match self.keys(prefix) {
                Ok(keys) => {
                    let start = (*cursor as usize).min(keys.len());
                    KeyValueResponse::ListKeys {
                        keys: keys[start..].to_vec(),
                        next_cursor: 0,
                    }
                }
                Err(e) => return io(e),
            },
        };
        KeyValueResult::Ok { response }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_delete_list_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStore::new(dir.path()).unwrap();
        assert_eq!(s.get("cache/org-1").unwrap(), None);
        assert_eq!(s.set("cache/org-1", b"x").unwrap(), None);
        assert_eq!(s.set("cache/org-1", b"y").unwrap(), Some(b"x".to_vec()));
        s.set("session", b"s").unwrap();
        assert_eq!(s.keys("cache/").unwrap(), vec!["cache/org-1".to_owned()]);
        assert_eq!(s.delete("cache/org-1").unwrap(), Some(b"y".to_vec()));
        assert_eq!(s.get("cache/org-1").unwrap(), None);
        assert_eq!(
            key_name(&file_name("../etc/passwd")).unwrap(),
            "../etc/passwd"
        );
        assert!(!file_name("../x").contains('/'));
    }
}
