use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .json()
        .with_writer(std::io::stderr)
        .init();
    keyway_server::cli::run(keyway_server::cli::Cli::parse()).await
}
