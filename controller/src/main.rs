//! `keyway-controller`: provision, run and inspect a door-controller emulator.

use anyhow::Context;
use clap::{Parser, Subcommand};
use keyway_controller::run::{Controller, Radio, RunOptions};
use keyway_controller::{CoreOptions, identity, status};
use keyway_protocol::Id;
use keyway_sim_radio::{HubConfig, Position};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "keyway-controller",
    version,
    about = "Keyway door-controller emulator"
)]
struct Cli {
    /// Log as JSON lines (structured logs for collectors) instead of text.
    #[arg(long, global = true, env = "KEYWAY_LOG_JSON")]
    log_json: bool,
    /// PEM CA certificates to trust beside the system's, for an https:// server with a
    /// private CA or a self-signed certificate (give it to `provision` and `run` alike).
    #[arg(long, global = true, env = "KEYWAY_CA_FILE")]
    ca_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate the controller key and register it with the server.
    Provision {
        /// Server base URL, e.g. http://127.0.0.1:8080 or https://keyway.example
        #[arg(long, env = "KEYWAY_SERVER")]
        server: String,
        /// One-time provisioning token from `POST /orgs/{org}/controllers`.
        #[arg(long, env = "KEYWAY_PROVISIONING_TOKEN")]
        token: String,
        #[arg(long, env = "KEYWAY_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Serve the configured doors.
    Run {
        #[arg(long, env = "KEYWAY_DATA_DIR")]
        data_dir: PathBuf,
        /// `sim:127.0.0.1:PORT` (simulated radio hub), `bluez` or `bluez:hciN`, or `none`.
        #[arg(long, default_value = "sim:127.0.0.1:7878")]
        radio: String,
        /// Door position on the simulated floor plan: `LOCK_ID=x,y` (metres), repeatable.
        #[arg(long = "position")]
        positions: Vec<String>,
        /// Path-loss exponent of the simulated radio.
        #[arg(long, default_value_t = 2.0)]
        path_loss_exponent: f64,
        /// Shadowing noise of the simulated radio, dB.
        #[arg(long, default_value_t = 4.0)]
        shadowing_db: f64,
        /// Advertising interval, ms (20 or more; simulated radio default 30, so phones find
        /// the door sooner and walk-up hears it ~20-30 times a second). On BlueZ it is set as
        /// the advertisement's MinInterval/MaxInterval only when given, and BlueZ 5.66 honours
        /// those only when bluetoothd runs with --experimental (else its default, 1.28 s);
        /// BlueZ 5.82 honours them without.
        #[arg(long, value_parser = clap::value_parser!(u64).range(20..))]
        advertising_interval_ms: Option<u64>,
        /// Connection interval of the simulated radio, ms (0: no link timing model).
        #[arg(long, default_value_t = 0)]
        connection_interval_ms: u64,
        /// Seed of the simulated radio noise.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Simulated radio only: the doors range (as UWB or Channel Sounding would) with this
        /// error σ, metres: to connected phones, deciding walk-up by the distance, and to
        /// scanning phones within 6 m five times a second, for the phone's own walk-up.
        #[arg(long)]
        sim_ranging_sigma_m: Option<f64>,
        /// Simulate a person walking through after every unlock (door sensor events).
        #[arg(long)]
        simulate_entry: bool,
        /// Seconds a door may stay open before a held-open event.
        #[arg(long, default_value_t = 30)]
        held_open_secs: u64,
    },
    /// Show doors, relay and connection state, config age and pending events.
    Status {
        #[arg(long, env = "KEYWAY_DATA_DIR")]
        data_dir: PathBuf,
    },
}

fn parse_position(s: &str) -> anyhow::Result<(Id, Position)> {
    let (lock, xy) = s
        .split_once('=')
        .context("position must look like LOCK_ID=x,y")?;
    let (x, y) = xy
        .split_once(',')
        .context("position must look like LOCK_ID=x,y")?;
    let lock = Id::parse(lock).context("position: bad lock id")?;
    Ok((
        lock,
        Position {
            x: x.trim().parse().context("position: bad x")?,
            y: y.trim().parse().context("position: bad y")?,
        },
    ))
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        // The cause chain on one line (never a backtrace), skipping causes whose text the
        // message already includes.
        let mut text = e.to_string();
        for cause in e.chain().skip(1) {
            let c = cause.to_string();
            if !text.contains(&c) {
                text = format!("{text}: {c}");
            }
        }
        eprintln!("error: {text}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    match cli.command {
        Command::Provision {
            server,
            token,
            data_dir,
        } => {
            let id =
                identity::provision(&server, &token, &data_dir, cli.ca_file.as_deref()).await?;
            println!(
                "provisioned controller {} for organization {} in {}",
                id.controller_id,
                id.org_id,
                data_dir.display()
            );
        }
        Command::Run {
            data_dir,
            radio,
            positions,
            path_loss_exponent,
            shadowing_db,
            advertising_interval_ms,
            connection_interval_ms,
            seed,
            sim_ranging_sigma_m,
            simulate_entry,
            held_open_secs,
        } => {
            let radio = if let Some(addr) = radio.strip_prefix("sim:") {
                let mut hub = HubConfig {
                    seed,
                    advertising_interval_ms: advertising_interval_ms.unwrap_or(30),
                    connection_interval_ms,
                    ranging_sigma_m: sim_ranging_sigma_m,
                    ..HubConfig::default()
                };
                hub.model.exponent = path_loss_exponent;
                hub.model.shadowing_sigma_db = shadowing_db;
                Radio::Sim {
                    addr: addr.parse().context("--radio sim:ADDR needs an IP:PORT")?,
                    hub,
                }
            } else if radio == "bluez" {
                Radio::Bluez {
                    adapter: None,
                    advertising_interval: advertising_interval_ms.map(Duration::from_millis),
                }
            } else if let Some(adapter) = radio.strip_prefix("bluez:") {
                Radio::Bluez {
                    adapter: Some(adapter.to_string()),
                    advertising_interval: advertising_interval_ms.map(Duration::from_millis),
                }
            } else if radio == "none" {
                Radio::None
            } else {
                anyhow::bail!("--radio must be sim:IP:PORT, bluez, bluez:hciN or none");
            };
            let mut opts = RunOptions::new(data_dir, radio);
            opts.ca_file = cli.ca_file;
            opts.positions = positions
                .iter()
                .map(|p| parse_position(p))
                .collect::<anyhow::Result<HashMap<_, _>>>()?;
            opts.core = CoreOptions {
                simulate_entry,
                held_open_ms: held_open_secs * 1000,
                ..CoreOptions::default()
            };
            let controller = Controller::start(opts).await?;
            if let Some(addr) = controller.radio_addr() {
                println!("radio sim:{addr}");
            }
            tokio::signal::ctrl_c().await?;
            controller.shutdown().await;
        }
        Command::Status { data_dir } => {
            print!("{}", status::render(&data_dir)?);
        }
    }
    Ok(())
}
