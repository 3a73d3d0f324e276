//! Generates, with `protox` (a pure-Rust protobuf compiler: no system `protoc`), into `OUT_DIR`:
//!
//! - `client/latchkey.v1.rs`: latchkey's messages and AuthService client, which the library uses;
//! - `server/latchkey.v1.rs`: the messages and AuthService server, for the stand-in latchkey that
//!   the tests and benchmarks run (never compiled into the library);
//! - `latchkey.example.v1.rs` and `greeter_descriptor.bin`: the example's Greeter service (client
//!   and server) and its descriptor set for reflection, included by the example alone.

use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../proto/latchkey/v1/auth.proto");
    println!("cargo:rerun-if-changed=proto");
    let out = PathBuf::from(env::var("OUT_DIR")?);

    let auth = protox::compile(["latchkey/v1/auth.proto"], ["../proto"])?;
    for (dir, client, server) in [("client", true, false), ("server", false, true)] {
        fs::create_dir_all(out.join(dir))?;
        tonic_prost_build::configure()
            .build_client(client)
            .build_server(server)
            .out_dir(out.join(dir))
            .compile_fds(auth.clone())?;
    }

    let greeter = protox::compile(["latchkey/example/v1/greeter.proto"], ["proto"])?;
    fs::write(
        out.join("greeter_descriptor.bin"),
        prost::Message::encode_to_vec(&greeter),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(greeter)?;
    Ok(())
}
