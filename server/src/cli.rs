//! Command line: `serve`, `create-org`, `seed-demo`. Flags also read `KEYWAY_*` env vars.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

use crate::state::{AppState, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "keyway-server",
    version,
    about = "Keyway companion cloud service"
)]
pub struct Cli {
    /// `sqlite:...` or `postgres://...`; default: a SQLite file in --data-dir.
    #[arg(
        long,
        env = "KEYWAY_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Directory for the SQLite database.
    #[arg(
        long,
        env = "KEYWAY_DATA_DIR",
        default_value = "./keyway-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// 64 hex digits: encrypts organization signing keys at rest (AES-256-GCM).
    #[arg(
        long,
        env = "KEYWAY_KEY_ENCRYPTION_KEY",
        global = true,
        hide_env_values = true
    )]
    pub key_encryption_key: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API and the controller channel.
    Serve {
        #[arg(long, env = "KEYWAY_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Seed the demo organization first (idempotent).
        #[arg(long)]
        demo: bool,
        /// Base URL used in invite links.
        #[arg(long, env = "KEYWAY_PUBLIC_URL")]
        public_url: Option<String>,
        /// How long a cloud unlock waits for the controller, in milliseconds.
        #[arg(long, env = "KEYWAY_UNLOCK_TIMEOUT_MS", default_value_t = 5000)]
        unlock_timeout_ms: u64,
        /// Cloud unlocks allowed per user per 10 seconds.
        #[arg(long, env = "KEYWAY_UNLOCKS_PER_WINDOW", default_value_t = 100)]
        unlocks_per_window: u32,
        /// Authenticated requests per caller per second.
        #[arg(long, env = "KEYWAY_REQUESTS_PER_SECOND", default_value_t = 200)]
        requests_per_second: u32,
        /// Let webhooks reach loopback and private-network addresses (development only:
        /// otherwise an admin could make the server call its own network).
        #[arg(long, env = "KEYWAY_WEBHOOK_ALLOW_PRIVATE")]
        webhook_allow_private: bool,
        /// Serve HTTPS (and WSS for controllers) with this PEM certificate chain, leaf first.
        /// Without it the server speaks plain HTTP, for loopback or behind a TLS proxy.
        /// SIGHUP re-reads both files (after a renewal) without dropping connections.
        #[arg(long, env = "KEYWAY_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, env = "KEYWAY_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Create an organization and its owner account.
    CreateOrg {
        #[arg(long)]
        name: String,
        #[arg(long)]
        owner_email: String,
        #[arg(long, env = "KEYWAY_OWNER_PASSWORD", hide_env_values = true)]
        owner_password: String,
    },
    /// Create the demo organization "Acme" and print its logins (idempotent).
    SeedDemo,
}

impl Cli {
    fn base_settings(&self) -> anyhow::Result<Settings> {
        let key_encryption_key = match &self.key_encryption_key {
            Some(h) => {
                let mut k = [0u8; 32];
                hex::decode_to_slice(h.trim(), &mut k)
                    .map_err(|_| anyhow::anyhow!("--key-encryption-key must be 64 hex digits"))?;
                Some(k)
            }
            None => None,
        };
        Ok(Settings {
            key_encryption_key,
            ..Settings::default()
        })
    }

    pub fn database_url(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        std::fs::create_dir_all(&self.data_dir)?;
        let dir = std::fs::canonicalize(&self.data_dir)?;
        Ok(crate::db::sqlite_url(&dir))
    }
}

/// SIGHUP re-reads the TLS certificate and key (after a renewal); a bad pair is logged and
/// the one in use stays.
async fn reload_on_hangup(certs: std::sync::Arc<crate::tls::CertStore>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: the TLS certificate will not be reloaded");
        return;
    };
    while hangups.recv().await.is_some() {
        match certs.reload() {
            Ok(()) => tracing::info!("TLS certificate reloaded"),
            Err(e) => tracing::error!(error = %format!("{e:#}"), "TLS certificate not reloaded"),
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let db = crate::db::connect(&cli.database_url()?).await?;
    let base = cli.base_settings()?;
    match cli.command {
        Command::Serve {
            listen,
            demo,
            public_url,
            unlock_timeout_ms,
            unlocks_per_window,
            requests_per_second,
            webhook_allow_private,
            tls_cert,
            tls_key,
        } => {
            // Read before anything else starts, so a bad certificate fails fast.
            let certs = match (&tls_cert, &tls_key) {
                (Some(cert), Some(key)) => Some(crate::tls::CertStore::load(cert, key)?),
                _ => None,
            };
            let tls = certs.as_ref().map(|c| c.server_config()).transpose()?;
            if let Some(certs) = certs {
                tokio::spawn(reload_on_hangup(certs));
            }
            let scheme = if tls.is_some() { "https" } else { "http" };
            let mut settings = Settings {
                unlock_timeout: Duration::from_millis(unlock_timeout_ms),
                unlocks_per_window,
                requests_per_second,
                webhook_allow_private,
                ..base
            };
            settings.public_url = public_url.unwrap_or_else(|| format!("{scheme}://{listen}"));
            let state = AppState::new(db, settings);
            if demo {
                let seed = crate::seed::seed_demo(&state).await?;
                println!("{}", seed.describe());
            }
            let running = crate::serve_with(state, &listen, tls).await?;
            println!("keyway-server listening on {scheme}://{}", running.addr);
            tokio::select! {
                _ = running.handle => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Command::CreateOrg {
            name,
            owner_email,
            owner_password,
        } => {
            let state = AppState::new(db, base);
            let org =
                crate::seed::create_org_with_owner(&state, &name, &owner_email, &owner_password)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
            println!("created organization {name} ({org}) owned by {owner_email}");
        }
        Command::SeedDemo => {
            let state = AppState::new(db, base);
            let seed = crate::seed::seed_demo(&state).await?;
            println!("{}", seed.describe());
        }
    }
    Ok(())
}
