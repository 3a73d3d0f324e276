//! The master key's file, `<data dir>/master.key`: the key in base64 on one line, mode 0600. The
//! key opens every sealed value of the deployment, so a file that group or others may read (or
//! change) is refused, with the fix in the message, rather than used.

use std::{
    fs::{self, File},
    io::{ErrorKind, Read, Write},
    path::Path,
};

use anyhow::{Context, bail};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use super::seal::MasterKey;

impl MasterKey {
    /// The key in `path`; `None` when there is no such file.
    pub fn load(path: &Path) -> anyhow::Result<Option<Self>> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        refuse_shared(path, &file)?;
        let mut text = Zeroizing::new(String::new());
        file.read_to_string(&mut text)
            .with_context(|| format!("reading {}", path.display()))?;
        let key = Self::from_base64(&text)
            .with_context(|| format!("master key file {}", path.display()))?;
        Ok(Some(key))
    }

    /// Reads `path`, or creates it (mode 0600) with a new key. `Ok((key, true))` when generated.
    pub fn load_or_generate(path: &Path) -> anyhow::Result<(Self, bool)> {
        if let Some(key) = Self::load(path)? {
            return Ok((key, false));
        }
        // Written whole to a file of our own, then linked into place: another process never reads
        // a half-written key, and a crash never leaves an empty one.
        let key = Self::generate()?;
        let mut suffix = [0u8; 8];
        SystemRandom::new()
            .fill(&mut suffix)
            .map_err(|_| anyhow::anyhow!("no randomness"))?;
        let staging = path.with_extension(format!("tmp-{}", URL_SAFE_NO_PAD.encode(suffix)));
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&staging).and_then(|mut file| {
            writeln!(file, "{}", key.to_base64().as_str())?;
            file.sync_all()
        });
        let linked = written.and_then(|()| fs::hard_link(&staging, path));
        let _ = fs::remove_file(&staging);
        match linked {
            Ok(()) => Ok((key, true)),
            // Another process created it first: use theirs.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Self::load(path)?
                .map(|key| (key, false))
                .with_context(|| format!("{} vanished", path.display())),
            Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
        }
    }
}

/// Refuses a key file with any permission for group or others.
#[cfg(unix)]
fn refuse_shared(path: &Path, file: &File) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "master key file {path} has mode {mode:04o}, open to group or others: \
             run `chmod 600 {path}`",
            path = path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_shared(_: &Path, _: &File) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_file_is_read_back_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        assert!(MasterKey::load(&path).unwrap().is_none());
        let (a, generated) = MasterKey::load_or_generate(&path).unwrap();
        assert!(generated);
        let (b, generated) = MasterKey::load_or_generate(&path).unwrap();
        assert!(!generated);
        assert_eq!(a.to_base64(), b.to_base64());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_may_read_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        MasterKey::load_or_generate(&path).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            for error in [
                MasterKey::load(&path).unwrap_err(),
                MasterKey::load_or_generate(&path).unwrap_err(),
            ] {
                let error = format!("{error:#}");
                let fix = format!("run `chmod 600 {}`", path.display());
                assert!(error.contains(&fix), "{mode:o}: {error}");
                assert!(error.contains(&format!("{mode:04o}")), "{error}");
            }
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(
            MasterKey::load(&path).unwrap().is_some(),
            "stricter is fine"
        );
    }
}
