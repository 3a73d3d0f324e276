//! The command line: `serve`, `migrate`, `user …`, `keys …`. Every setting is a global flag with a
//! `LATCHKEY_*` variable (see `config`).

mod healthcheck;

use std::{io::Read, sync::Arc};

use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand};

use crate::{
    app::{self, App},
    config::{Config, ConfigArgs},
    domain::types::{Password, Scope, Username},
    service::{Admin, ServiceError, SystemClock, UserRef},
};

#[derive(Debug, Parser)]
#[command(
    name = "latchkey",
    version,
    about = "Authentication for service-to-service calls over gRPC"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (SQLite under ./latchkey-data/ when nothing is configured).
    Serve,
    /// Apply the schema to the configured database and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Ask the server at the configured address for its health: exit 0 when SERVING, 1 otherwise
    /// (for container health checks). Over HTTPS (`/readyz`) when TLS is configured.
    Healthcheck,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; prints the new user id.
    Add {
        name: String,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// A scope the user holds (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// Change a user's password and revoke all their sessions.
    SetPassword {
        name: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Stop a user from logging in and revoke all their sessions.
    Disable { name: String },
    /// Let a disabled user log in again.
    Enable { name: String },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a new signing key; running servers sign with it within seconds.
    Rotate,
    /// List signing keys and their state.
    List,
}

fn read_password() -> anyhow::Result<Password> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("reading the password from standard input")?;
    // A trailing newline from `echo` or a terminal is not part of the password.
    let trimmed = password.strip_suffix('\n').unwrap_or(&password);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned();
    if trimmed.is_empty() {
        bail!("no password on standard input");
    }
    Ok(Password::parse(trimmed)?)
}

impl Cli {
    /// The settings this command line gives, over the file and the defaults, checked (see
    /// [`Config::resolve`]).
    pub fn resolve_config(&self) -> anyhow::Result<Config> {
        Config::resolve(self.config.clone())
    }

    /// Runs the command. Only `serve` (in [`App::run`]) and `migrate` set up a new data directory
    /// and master key; the others refuse to (see [`crate::data_dir`]).
    pub async fn run(self, config: Config) -> anyhow::Result<()> {
        let clock = Arc::new(SystemClock);
        if matches!(self.command, Command::Migrate) {
            config.data_dir.bootstrap()?;
        }
        match self.command {
            Command::Serve => {
                let app = App::build(&config, clock).await?;
                app.run(shutdown_signal()).await
            }
            Command::Healthcheck => healthcheck::healthcheck(&config).await,
            Command::Migrate => {
                app::migrate(&config).await?;
                println!("schema is up to date");
                Ok(())
            }
            Command::User(command) => {
                let service = app::open_service(&config, clock).await?;
                let admin = Admin::command_line();
                match command {
                    UserCommand::Add { name, scopes, .. } => {
                        let username = Username::parse(&name)?;
                        let password = read_password()?;
                        let scopes = scopes
                            .into_iter()
                            .map(Scope::parse)
                            .collect::<Result<_, _>>()?;
                        let created = service.create_user(&username, password, scopes, &admin);
                        println!("{}", created.await.map_err(named(&name))?.user_id);
                    }
                    UserCommand::SetPassword { name, .. } => {
                        let user = UserRef::Name(Username::parse(&name)?);
                        let password = read_password()?;
                        let changed = service.set_password(&user, password, &admin).await;
                        let revoked = changed.map_err(named(&name))?.revoked_sessions;
                        println!("password changed; {revoked} session(s) revoked");
                    }
                    UserCommand::Disable { name } => {
                        let user = UserRef::Name(Username::parse(&name)?);
                        let changed = service.set_disabled(&user, true, &admin).await;
                        let revoked = changed.map_err(named(&name))?.revoked_sessions;
                        println!("disabled; {revoked} session(s) revoked");
                    }
                    UserCommand::Enable { name } => {
                        let user = UserRef::Name(Username::parse(&name)?);
                        let enabled = service.set_disabled(&user, false, &admin).await;
                        enabled.map_err(named(&name))?;
                        println!("enabled");
                    }
                }
                Ok(())
            }
            Command::Keys(command) => {
                let service = app::open_service(&config, clock).await?;
                match command {
                    KeysCommand::Rotate => println!("{}", service.rotate_keys().await?),
                    KeysCommand::List => {
                        for key in service.list_keys()? {
                            println!(
                                "{}\t{}\t{}\t{}",
                                key.kid,
                                key.alg,
                                key.created_at / 1000,
                                key.status.as_str()
                            );
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// The service's refusal of a change to user `name`, naming the user as the operator typed it.
fn named(name: &str) -> impl Fn(ServiceError) -> anyhow::Error + '_ {
    move |e| match e {
        ServiceError::UserNotFound => anyhow!("no user named {name:?}"),
        ServiceError::UsernameTaken => anyhow!("a user named {name:?} already exists"),
        e => e.into(),
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
