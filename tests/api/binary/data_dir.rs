//! The data directory a fresh `latchkey migrate` leaves behind is private: the directory `0700`,
//! every file in it (the database, its WAL files, the master key) `0600`; and a master key file that
//! group or others may read is refused by every command, with the fix in the message.

use std::{os::unix::fs::PermissionsExt, path::Path, time::Duration};

use crate::helpers::process::{latchkey_in, run, text};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `latchkey migrate` in a new data directory under `root`; the directory.
async fn migrated(root: &Path) -> std::path::PathBuf {
    let data = root.join("new").join("latchkey-data");
    let mut migrate = latchkey_in(&data);
    migrate.arg("migrate");
    let out = run(migrate, "", Duration::from_secs(30)).await.unwrap();
    assert!(out.status.success(), "{}", text(&out));
    data
}

#[tokio::test]
async fn migrate_creates_a_data_directory_only_its_owner_can_read() {
    let root = tempfile::tempdir().unwrap();
    let data = migrated(root.path()).await;
    assert_eq!(mode(&data), 0o700);
    let files: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    for name in ["latchkey.db", "master.key"] {
        assert!(files.contains(&data.join(name)), "{name} in {files:?}");
    }
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
}

#[tokio::test]
async fn a_master_key_others_may_read_is_refused_with_the_fix() {
    let root = tempfile::tempdir().unwrap();
    let data = migrated(root.path()).await;
    let key = data.join("master.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let fix = format!("chmod 600 {}", key.display());
    for args in [
        &["serve"][..],
        &["user", "disable", "alice"],
        &["keys", "list"],
    ] {
        let mut command = latchkey_in(&data);
        command.args(args);
        let out = run(command, "", Duration::from_secs(30)).await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            stderr.contains(&fix) && stderr.contains("master key file"),
            "{args:?}: {stderr}"
        );
    }
}

#[tokio::test]
async fn the_user_commands_name_the_user_they_cannot_find_or_create() {
    let root = tempfile::tempdir().unwrap();
    let data = migrated(root.path()).await;
    let user = |args: &'static [&'static str]| {
        let mut command = latchkey_in(&data);
        command.arg("user").args(args);
        run(command, "a long passphrase\n", Duration::from_secs(30))
    };
    let added = user(&["add", "alice", "--password-stdin"]).await.unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    for (args, expected) in [
        (
            &["add", "alice", "--password-stdin"][..],
            r#"a user named "alice" already exists"#,
        ),
        (&["disable", "bob"], r#"no user named "bob""#),
        (
            &["set-password", "bob", "--password-stdin"],
            r#"no user named "bob""#,
        ),
    ] {
        let out = user(args).await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
}
