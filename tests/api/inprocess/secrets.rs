//! Secrets at rest: the files of the data directory are private, and the master key leaves no copy
//! in memory.

use std::os::unix::fs::PermissionsExt;

use crate::helpers::app::spawn_app;

#[tokio::test]
async fn the_files_of_the_data_directory_are_private_to_their_owner() {
    let app = spawn_app().await;
    app.alice().await;
    let files: Vec<_> = std::fs::read_dir(app.data_dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert!(files.iter().any(|f| f.ends_with("master.key")), "{files:?}");
    for file in files {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}

#[test]
fn the_master_key_is_wiped_from_memory_when_dropped() {
    use std::mem::{ManuallyDrop, size_of};

    use base64::Engine;
    use latchkey::crypto::seal::MasterKey;

    let pattern = [0xA5_u8; 32];
    let encoded = base64::engine::general_purpose::STANDARD.encode(pattern);
    let mut key = ManuallyDrop::new(MasterKey::from_base64(&encoded).unwrap());
    let start = (&raw const key).cast::<u8>();
    // SAFETY: the bytes of `key` itself, which stays allocated (ManuallyDrop) until this function
    // returns; a `MasterKey` holds its 32 bytes inline, and any byte is a valid `u8`.
    let bytes = || unsafe { std::slice::from_raw_parts(start, size_of::<MasterKey>()) }.to_vec();
    let holds_key = |bytes: Vec<u8>| bytes.windows(32).any(|w| w == pattern);
    assert!(holds_key(bytes()), "the key lives inline");
    // SAFETY: dropped once; afterwards only its bytes are read, never the key.
    unsafe { ManuallyDrop::drop(&mut key) };
    assert!(!holds_key(bytes()), "the key is still in memory");
}
