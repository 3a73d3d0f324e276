//! The Dockerfile, checked without a Docker engine: its build stage's copy set is a cargo package
//! that builds the binary (laid out in a scratch directory and read by `cargo metadata`), its
//! health check and command are latchkey subcommands, and the image runs as non-root.

use std::{collections::BTreeSet, path::Path, time::Duration};

use crate::helpers::{
    dockerfile::{
        compile_time_includes, copy_from_context, dockerignore, exec_form, ignored,
        lay_out_build_stage, read, repo, stages,
    },
    process::{latchkey, run, run_latchkey, text},
};

/// The subcommands `latchkey --help` lists.
async fn subcommands() -> BTreeSet<String> {
    let mut command = latchkey();
    command.arg("--help");
    let help = run_latchkey(command, "").await;
    let section = help
        .split_once("Commands:")
        .unwrap_or_else(|| panic!("no Commands: in latchkey --help:\n{help}"))
        .1;
    section
        .lines()
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_dockerfile_copies_only_what_exists_and_everything_the_build_reads() {
    // The Dockerfile copies only what exists and what .dockerignore lets into the context, and
    // everything a cargo build of the binary reads.
    let patterns = dockerignore();
    for excluded in ["target", ".venv-peers", "latchkey-data"] {
        assert!(
            patterns.iter().any(|p| p == excluded),
            ".dockerignore must exclude {excluded}: {patterns:?}"
        );
    }
    let mut copied = BTreeSet::new();
    for (from, instructions) in stages() {
        for (sources, _) in instructions.iter().filter_map(copy_from_context) {
            for source in sources {
                assert!(
                    repo(&source).exists(),
                    "{from}: COPY {source}, which does not exist"
                );
                assert!(
                    !ignored(&source, &patterns),
                    "{from}: COPY {source}, which .dockerignore excludes"
                );
                let source = source.trim_start_matches("./").trim_end_matches('/');
                copied.insert(source.to_owned());
            }
        }
    }
    let mut needed: BTreeSet<String> = ["Cargo.toml", "Cargo.lock", "build.rs", "src", "proto"]
        .map(String::from)
        .into();
    let top_level = |path: &Path| path.iter().next().map(|p| p.to_string_lossy().into_owned());
    needed.extend(compile_time_includes().iter().filter_map(|p| top_level(p)));
    for path in &needed {
        assert!(
            copied.contains(path),
            "the build needs {path}, which the Dockerfile does not COPY (copies {copied:?})"
        );
    }
}

/// `cargo ARGS` in `dir`, which must succeed; its standard output.
async fn cargo(dir: &Path, args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command.args(args).current_dir(dir);
    let output = run(command, "", Duration::from_secs(60)).await.unwrap();
    assert!(
        output.status.success(),
        "cargo {args:?} in the Dockerfile's copy set (as `docker build` would fail): {}",
        text(&output)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

#[tokio::test]
async fn the_build_stage_copy_set_is_a_cargo_package_with_everything_it_includes() {
    // Exactly what the build stage has copied when it runs cargo build. `cargo fetch` parses the
    // manifest as the build does (a bench or workspace member named but not copied fails it) and
    // checks the lockfile (`--locked`, as the build); `cargo metadata` would skip a missing target.
    let scratch = tempfile::tempdir().unwrap();
    let workdir = lay_out_build_stage(scratch.path());
    let version = cargo(&workdir, &["-vV"]).await;
    let host = version
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("cargo -vV names the host");
    cargo(
        &workdir,
        &["fetch", "--offline", "--locked", "--target", host],
    )
    .await;
    let metadata = [
        "metadata",
        "--offline",
        "--no-deps",
        "--format-version",
        "1",
    ];
    let metadata: serde_json::Value =
        serde_json::from_str(&cargo(&workdir, &metadata).await).unwrap();
    let targets = metadata["packages"][0]["targets"].as_array().unwrap();
    assert!(
        targets
            .iter()
            .any(|t| t["name"] == "latchkey" && t["kind"][0] == "bin"),
        "the copy set builds the latchkey binary: {targets:?}"
    );
    for include in compile_time_includes() {
        assert!(
            workdir.join(&include).is_file(),
            "src/ includes {}, which the Dockerfile does not copy",
            include.display()
        );
    }
}

#[tokio::test]
async fn the_image_health_check_and_command_are_latchkey_subcommands() {
    let subcommands = subcommands().await;
    let runtime = stages().pop().expect("a runtime stage").1;
    let find = |keyword: &str| {
        runtime
            .iter()
            .rfind(|i| i.keyword == keyword)
            .unwrap_or_else(|| panic!("the runtime stage has no {keyword}"))
    };

    assert_eq!(exec_form(&find("ENTRYPOINT").args), ["latchkey"]);
    let cmd = exec_form(&find("CMD").args);
    assert!(
        cmd.first().is_some_and(|c| subcommands.contains(c)),
        "CMD {cmd:?} is not a subcommand among {subcommands:?}"
    );
    // The binary is where the entrypoint finds it.
    assert!(
        runtime.iter().any(|i| i.keyword == "COPY"
            && i.args.starts_with("--from=")
            && i.args.ends_with("/usr/local/bin/latchkey")),
        "the runtime stage copies the binary to /usr/local/bin/latchkey"
    );

    let healthcheck = &find("HEALTHCHECK").args;
    let (options, command) = healthcheck
        .split_once("CMD")
        .unwrap_or_else(|| panic!("HEALTHCHECK {healthcheck}: expected [OPTIONS] CMD [...]"));
    assert!(
        options.split_whitespace().all(|o| o.starts_with("--")),
        "HEALTHCHECK options: {options}"
    );
    let command = exec_form(command);
    assert_eq!(
        command.first().map(String::as_str),
        Some("latchkey"),
        "HEALTHCHECK CMD {command:?}"
    );
    let check = command.get(1).expect("HEALTHCHECK CMD latchkey SUBCOMMAND");
    assert!(
        subcommands.contains(check),
        "HEALTHCHECK runs `latchkey {check}`, which is not among {subcommands:?}"
    );
}

#[tokio::test]
async fn the_image_is_built_with_a_recent_enough_rust_and_runs_as_non_root() {
    let stages = stages();
    assert!(stages.len() >= 2, "a multi-stage build");
    let (builder, build) = &stages[0];
    let version = builder
        .strip_prefix("rust:")
        .and_then(|rest| rest.split('-').next())
        .unwrap_or_else(|| panic!("builder FROM {builder}: expected rust:<version>-…"));
    let manifest = read("Cargo.toml");
    let required = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("Cargo.toml rust-version");
    let parse =
        |v: &str| -> Vec<u32> { v.split('.').map(|n| n.parse().expect("number")).collect() };
    assert!(
        parse(version) >= parse(required),
        "builder Rust {version} is older than rust-version {required}"
    );
    assert!(
        build
            .iter()
            .any(|i| i.keyword == "RUN" && i.args.contains("cargo build --release --locked")),
        "the builder runs cargo build --release --locked"
    );

    let (base, runtime) = stages.last().expect("runtime stage");
    assert!(
        base.starts_with("debian:bookworm-slim"),
        "runtime FROM {base}"
    );
    assert!(
        runtime
            .iter()
            .any(|i| i.keyword == "RUN" && i.args.contains("ca-certificates")),
        "the runtime image has ca-certificates"
    );
    let user = runtime
        .iter()
        .rfind(|i| i.keyword == "USER")
        .map(|i| i.args.clone())
        .unwrap_or_else(|| panic!("the runtime stage sets no USER: it would run as root"));
    let name = user.split(':').next().unwrap_or_default();
    assert!(
        !matches!(name, "root" | "0" | ""),
        "the runtime stage runs as USER {user}"
    );
    // The process starts as that user: the last USER comes before the ENTRYPOINT.
    let last_user = runtime.iter().rposition(|i| i.keyword == "USER").unwrap();
    let entry = runtime
        .iter()
        .rposition(|i| i.keyword == "ENTRYPOINT")
        .unwrap();
    assert!(last_user < entry, "USER comes before ENTRYPOINT");
}
