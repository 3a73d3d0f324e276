//! The data directory: where the default SQLite file and the generated master key live. Only
//! `serve` and `migrate` set up a new deployment ([`DataDir::bootstrap`]); every other command
//! opens an existing one ([`DataDir::master_key`]) and refuses when it is not there: run in the
//! wrong folder, `latchkey keys list` would otherwise create an empty deployment whose fresh
//! master key matches no server's.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tracing::warn;

use crate::crypto::seal::MasterKey;

const KEY_FILE: &str = "master.key";

#[derive(Debug, Clone)]
pub struct DataDir {
    path: PathBuf,
    /// `LATCHKEY_MASTER_KEY`, when set: then no key file is read or written.
    configured_key: Option<MasterKey>,
    /// Whether the database is the default SQLite file in this directory.
    holds_database: bool,
}

impl DataDir {
    pub fn new(
        path: impl Into<PathBuf>,
        configured_key: Option<MasterKey>,
        holds_database: bool,
    ) -> Self {
        Self {
            path: path.into(),
            configured_key,
            holds_database,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether anything of this deployment lives in the directory.
    fn needed(&self) -> bool {
        self.holds_database || self.configured_key.is_none()
    }

    /// For `serve` and `migrate`: creates the directory and generates the master key file, when
    /// this deployment keeps them here and they do not exist yet.
    pub fn bootstrap(&self) -> anyhow::Result<()> {
        if !self.needed() {
            return Ok(());
        }
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        // Only its owner may enter it: it holds the database and the master key.
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&self.path)
            .with_context(|| format!("creating the data directory {}", self.path.display()))?;
        if self.configured_key.is_none() {
            let path = self.path.join(KEY_FILE);
            let (_, generated) = MasterKey::load_or_generate(&path)?;
            if generated {
                warn!(path = %path.display(), "generated a new master key: back it up, and give every replica the same LATCHKEY_MASTER_KEY");
            }
        }
        Ok(())
    }

    /// The master key of an existing deployment: `LATCHKEY_MASTER_KEY`, or the key file. Refuses
    /// when the directory or the key file this deployment needs is missing.
    pub fn master_key(&self) -> anyhow::Result<MasterKey> {
        let first = "run `latchkey serve` or `latchkey migrate` first";
        if self.needed() && !self.path.is_dir() {
            bail!(
                "no data directory at {}: {first}, or set LATCHKEY_DATA_DIR",
                self.path.display()
            );
        }
        if let Some(key) = &self.configured_key {
            return Ok(key.clone());
        }
        let path = self.path.join(KEY_FILE);
        match MasterKey::load(&path)? {
            Some(key) => Ok(key),
            None => bail!(
                "no master key at {}: {first}, or set LATCHKEY_MASTER_KEY",
                path.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap()
    }

    #[test]
    fn other_commands_refuse_a_missing_directory_and_create_nothing() {
        let root = tempfile::tempdir().unwrap();
        let dir = DataDir::new(root.path().join("latchkey-data"), None, true);
        let error = format!("{:#}", dir.master_key().unwrap_err());
        assert!(
            error.contains("no data directory at") && error.contains("LATCHKEY_DATA_DIR"),
            "{error}"
        );
        assert!(
            error.contains("`latchkey serve` or `latchkey migrate`"),
            "{error}"
        );
        assert!(!dir.path().exists());
    }

    #[test]
    fn other_commands_refuse_a_missing_key_file_unless_the_key_is_configured() {
        let root = tempfile::tempdir().unwrap();
        let error = format!(
            "{:#}",
            DataDir::new(root.path(), None, true)
                .master_key()
                .unwrap_err()
        );
        assert!(
            error.contains("no master key at") && error.contains("LATCHKEY_MASTER_KEY"),
            "{error}"
        );
        assert!(!root.path().join(KEY_FILE).exists());
        assert!(
            DataDir::new(root.path(), Some(key()), true)
                .master_key()
                .is_ok()
        );
    }

    #[test]
    fn a_deployment_keeping_nothing_there_needs_no_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = DataDir::new(root.path().join("absent"), Some(key()), false);
        dir.bootstrap().unwrap();
        assert!(dir.master_key().is_ok());
        assert!(!dir.path().exists());
    }

    #[test]
    fn bootstrap_creates_the_directory_and_one_key_that_later_opens_find() {
        let root = tempfile::tempdir().unwrap();
        let dir = DataDir::new(root.path().join("a").join("latchkey-data"), None, true);
        dir.bootstrap().unwrap();
        let key_file = dir.path().join(KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(dir.path()), 0o700);
            assert_eq!(mode(&key_file), 0o600);
        }
        let written = std::fs::read_to_string(&key_file).unwrap();
        dir.bootstrap().unwrap();
        assert_eq!(std::fs::read_to_string(&key_file).unwrap(), written);
        let sealed = dir.master_key().unwrap().sealer("test").seal(b"x", b"ctx");
        let again = DataDir::new(dir.path(), None, true).master_key().unwrap();
        let opened = again.sealer("test").open(&sealed.unwrap(), b"ctx");
        assert_eq!(opened.unwrap(), b"x");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_may_read_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = DataDir::new(root.path(), None, true);
        dir.bootstrap().unwrap();
        let key_file = root.path().join(KEY_FILE);
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let fix = format!("run `chmod 600 {}`", key_file.display());
        for error in [dir.master_key().unwrap_err(), dir.bootstrap().unwrap_err()] {
            let error = format!("{error:#}");
            assert!(error.contains(&fix), "{error}");
        }
    }
}
