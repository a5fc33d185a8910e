//! Where `keysmith login` keeps the key: the operating system's credential store
//! (Secret Service on Linux desktops, through keyring-core), or, only when the user
//! asks for it, a file that only they can read. Never a world-readable config file.
//!
//! A small profile (`profile.json`, no secret) remembers the server and where its key
//! lives, so `status` and `doctor` can say so.

use anyhow::{Context, Result, bail};
use keysmith_core::SecretString;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;

/// The keyring service name; the entry's user is the server URL.
const SERVICE: &str = "keysmith";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// The operating system's credential store.
    Keyring,
    /// A file in the user's config directory, mode 0600.
    File,
}

#[derive(Debug, Serialize, Deserialize)]
struct Profile {
    host: String,
    storage: Storage,
}

#[derive(Serialize, Deserialize)]
struct FileCredential {
    host: String,
    key: String,
}

/// The user's Keysmith config directory: `$XDG_CONFIG_HOME/keysmith` or
/// `~/.config/keysmith`.
pub fn config_dir() -> PathBuf {
    match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("keysmith"),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".config/keysmith"),
    }
}

/// The stored credentials of one config directory.
pub struct Credentials {
    dir: PathBuf,
}

impl Default for Credentials {
    fn default() -> Self {
        Self { dir: config_dir() }
    }
}

impl Credentials {
    pub fn credentials_file(&self) -> PathBuf {
        self.dir.join("credentials.json")
    }

    fn profile_file(&self) -> PathBuf {
        self.dir.join("profile.json")
    }
}

/// Writes `contents` to `path`, readable and writable by the owner only, replacing
/// the file atomically so a crash leaves either the old file or the new one.
fn write_private(path: &PathBuf, contents: &[u8]) -> Result<()> {
    let dir = path.parent().context("no config directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Makes the platform's credential store the default, where there is one.
fn platform_store() -> Result<(), String> {
    if keyring_core::get_default_store().is_some() {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    {
        let store = zbus_secret_service_keyring_store::Store::new().map_err(|e| e.to_string())?;
        keyring_core::set_default_store(store);
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err("this build has no credential store for this operating system".into())
    }
}

/// Whether the operating system's credential store can be used here, asked before a
/// key is read. The error is a plain sentence (no D-Bus error text): what is missing.
pub fn keyring_available() -> Result<(), String> {
    off_runtime(platform_store).map_err(|_| no_keyring_reason())
}

/// Why there is no credential store, in words a person can act on.
fn no_keyring_reason() -> String {
    #[cfg(target_os = "linux")]
    {
        let bus_address = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").filter(|v| !v.is_empty());
        let bus_socket = std::env::var_os("XDG_RUNTIME_DIR")
            .map(|dir| PathBuf::from(dir).join("bus"))
            .is_some_and(|p| p.exists());
        if bus_address.is_none() && !bus_socket {
            "This machine has no desktop session (no D-Bus session bus), so there is no operating-system \
             credential store here"
                .into()
        } else {
            "The desktop's credential store (the Secret Service of GNOME Keyring or KWallet) did not answer".into()
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        "This build has no credential store for this operating system".into()
    }
}

/// `path` with the home directory shown as `~`.
pub fn shown_path(path: &std::path::Path) -> String {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    match home.as_deref().and_then(|h| path.strip_prefix(h).ok()) {
        Some(rest) => format!("~/{}", rest.display()),
        None => path.display().to_string(),
    }
}

fn keyring_entry(host: &str) -> Result<keyring_core::Entry, String> {
    platform_store()?;
    keyring_core::Entry::new(SERVICE, host).map_err(|e| e.to_string())
}

/// Runs a credential-store call on a thread of its own: the Secret Service store
/// drives its D-Bus calls with its own blocking runtime, which must not run inside
/// the command's async runtime.
fn off_runtime<T: Send>(call: impl FnOnce() -> Result<T, String> + Send) -> Result<T, String> {
    std::thread::scope(|s| s.spawn(call).join()).unwrap_or_else(|_| Err("the credential store failed".into()))
}

impl Credentials {
    /// Stores `key` for `host`; returns a sentence that says where.
    pub fn save(&self, host: &str, key: &SecretString, storage: Storage) -> Result<String> {
        let place = match storage {
            Storage::Keyring => {
                let stored = off_runtime(|| {
                    keyring_entry(host).and_then(|e| e.set_password(key.expose()).map_err(|e| e.to_string()))
                });
                if stored.is_err() {
                    bail!(
                        "the operating system's credential store did not take the key. Run `keysmith login --store file` \
                         to keep the key in {} (readable only by you), or keep the key in KEYSMITH_API_KEY instead.",
                        self.credentials_file().display()
                    );
                }
                "the operating system's credential store".to_owned()
            }
            Storage::File => {
                let body = serde_json::to_vec(&FileCredential {
                    host: host.to_owned(),
                    key: key.expose().to_owned(),
                })?;
                write_private(&self.credentials_file(), &body)?;
                format!("{} (mode 0600)", self.credentials_file().display())
            }
        };
        write_private(
            &self.profile_file(),
            &serde_json::to_vec_pretty(&Profile {
                host: host.to_owned(),
                storage,
            })?,
        )?;
        Ok(place)
    }

    /// The stored server, key and where the key came from, if `login` stored one.
    pub fn load(&self) -> Option<(String, SecretString, String)> {
        let profile: Profile = serde_json::from_slice(&std::fs::read(self.profile_file()).ok()?).ok()?;
        match profile.storage {
            Storage::Keyring => {
                let host = profile.host.clone();
                let key = off_runtime(move || keyring_entry(&host)?.get_password().map_err(|e| e.to_string())).ok()?;
                Some((
                    profile.host,
                    SecretString::new(key),
                    "the operating system's credential store".into(),
                ))
            }
            Storage::File => {
                let path = self.credentials_file();
                let stored: FileCredential = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
                (stored.host == profile.host)
                    .then(|| (stored.host, SecretString::new(stored.key), path.display().to_string()))
            }
        }
    }

    /// The stored server, without touching the key.
    pub fn stored_host(&self) -> Option<String> {
        let profile: Profile = serde_json::from_slice(&std::fs::read(self.profile_file()).ok()?).ok()?;
        Some(profile.host)
    }

    /// Forgets the stored key wherever it is; returns whether there was one.
    pub fn remove(&self) -> Result<bool> {
        let Some(profile) = std::fs::read(self.profile_file())
            .ok()
            .and_then(|b| serde_json::from_slice::<Profile>(&b).ok())
        else {
            return Ok(false);
        };
        if profile.storage == Storage::Keyring {
            let host = profile.host.clone();
            let removed = off_runtime(move || match keyring_entry(&host)?.delete_credential() {
                Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
                Err(e) => Err(e.to_string()),
            });
            if let Err(e) = removed {
                eprintln!("warning: cannot remove the key from the credential store ({e}); remove it there by hand");
            }
        }
        for path in [self.credentials_file(), self.profile_file()] {
            if path.exists() {
                std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test: the environment and the default store are process-wide.
    #[test]
    fn keys_round_trip_through_the_keyring_and_the_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let c = Credentials {
            dir: dir.path().join("keysmith"),
        };
        keyring_core::set_default_store(keyring_core::mock::Store::new().unwrap());
        let key = SecretString::new("wandb_v1_test".into());

        let place = c.save("https://keys.example.com", &key, Storage::Keyring).unwrap();
        assert!(place.contains("credential store"));
        let (host, loaded, from) = c.load().unwrap();
        assert_eq!(
            (host.as_str(), loaded.expose()),
            ("https://keys.example.com", "wandb_v1_test")
        );
        assert!(from.contains("credential store"));
        assert!(!c.credentials_file().exists(), "the keyring path writes no key file");
        let profile = std::fs::read_to_string(c.profile_file()).unwrap();
        assert!(!profile.contains("wandb_v1_test"), "the profile holds no secret");
        assert!(c.remove().unwrap());
        assert!(c.load().is_none());

        c.save("http://127.0.0.1:1", &key, Storage::File).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(c.credentials_file()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(c.load().unwrap().1.expose(), "wandb_v1_test");
        assert!(c.remove().unwrap());
        assert!(!c.credentials_file().exists());
        assert!(!c.remove().unwrap());
    }
}
