//! Generates the gRPC code and the reflection descriptor set from `proto/` with `protox`, a pure-Rust
//! protobuf compiler, so that a fresh machine needs nothing but cargo (no system `protoc`).

use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/latchkey/v1/auth.proto",
        "proto/latchkey/v1/admin.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(protos, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out.join("latchkey_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
