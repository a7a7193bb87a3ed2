//! # keyway-e2e
//!
//! Harness for end-to-end tests: starts the real `keyway-server`, `keyway-controller` and
//! `keyway` (phone core CLI) binaries as processes talking over loopback sockets, on SQLite
//! or on PostgreSQL (`KEYWAY_TEST_PG_URL`). Nothing is mocked: the only simulated part is the
//! radio (the controller's simulated BLE hub), because this machine has no Bluetooth.
//!
//! The binaries come from the same target directory as the test (`cargo test --workspace`
//! builds them); run `cargo build -p keyway-server -p keyway-controller -p keyway-cli` before
//! `cargo test -p keyway-e2e` alone.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Where cargo put the binaries: the test executable lives in `<target>/debug/deps/`.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target/debug");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p keyway-server -p keyway-controller -p keyway-cli` first",
        path.display()
    );
    path
}

/// A free loopback TCP port (bound and released; the race is acceptable on a test machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Which database the server runs on.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite,
    Postgres(Arc<PgDatabase>),
}

/// A PostgreSQL database made for one test (`url`), dropped when the last `Db` naming it is,
/// so test runs against a developer's server do not pile up databases.
pub struct PgDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl std::fmt::Debug for PgDatabase {
    // The URLs hold the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDatabase")
            .field("name", &self.name)
            .finish()
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept test database {} of a failed test", self.name);
            return;
        }
        // Drop cannot await; a thread with its own runtime can, whichever runtime (if any)
        // this runs on. FORCE (PostgreSQL 13+) closes connections a killed server may have
        // left.
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || -> Result<()> {
            use sqlx::Connection;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            // The timer must be made inside the runtime.
            rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(30), async {
                    let mut conn = sqlx::PgConnection::connect(&url).await?;
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await?;
                    conn.close().await?;
                    Ok::<_, anyhow::Error>(())
                })
                .await
            })??;
            Ok(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

impl Db {
    /// SQLite always; PostgreSQL too when `KEYWAY_TEST_PG_URL` is set (a fresh database each).
    pub async fn all() -> Vec<Db> {
        let mut dbs = vec![Db::Sqlite];
        match std::env::var("KEYWAY_TEST_PG_URL") {
            Ok(url) => dbs.push(Db::Postgres(
                fresh_pg_database(&url).await.expect("create PG database"),
            )),
            Err(_) => eprintln!(
                "skipping the PostgreSQL run: set KEYWAY_TEST_PG_URL=postgres://... to enable"
            ),
        }
        dbs
    }
}

async fn fresh_pg_database(admin_url: &str) -> Result<Arc<PgDatabase>> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    let mut suffix = [0u8; 6];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut suffix)
        .map_err(|_| anyhow!("rng"))?;
    let name = format!("keyway_e2e_{}", hex::encode(suffix));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(admin_url);
    Ok(Arc::new(PgDatabase {
        url: format!("{base}/{name}"),
        admin_url: admin_url.to_owned(),
        name,
    }))
}

/// A child process killed when dropped.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    pub name: &'static str,
}

impl Proc {
    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (a name `kill` knows, like `HUP`).
    pub fn signal(&self, signal: &str) -> Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()?;
        if !status.success() {
            bail!("kill -{signal} {} failed", self.child.id());
        }
        Ok(())
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The demo seed the server prints with `serve --demo`.
#[derive(Debug, Clone)]
pub struct Seed {
    pub org: String,
    pub front_door: String,
    pub lab: String,
    pub provisioning_token: String,
    pub invite_code: String,
    pub raw: Value,
}

impl Seed {
    pub fn password(&self, email: &str) -> String {
        self.raw["users"]
            .as_array()
            .and_then(|u| u.iter().find(|u| u["email"] == email))
            .and_then(|u| u["password"].as_str())
            .unwrap_or_else(|| panic!("no demo user {email}"))
            .to_owned()
    }
}

/// A running `keyway-server`.
#[derive(Debug)]
pub struct Server {
    pub proc: Proc,
    /// `http://` or, when started with [`TestTls`], `https://`.
    pub url: String,
    pub seed: Seed,
    pub db: Db,
    /// The certificate files it serves, when it serves TLS.
    pub tls: Option<TestTls>,
    dir: PathBuf,
    listen: String,
}

/// A throwaway CA and a certificate it signed for `localhost` and 127.0.0.1, as PEM files.
#[derive(Debug, Clone)]
pub struct TestTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestTls {
    /// Makes fresh ones in `dir`, so no private key lives in the repository.
    pub fn generate(dir: &Path) -> Result<TestTls> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        std::fs::create_dir_all(dir)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Keyway test CA");
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate()?;
        let server_cert = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?
            .signed_by(&server_key, &issuer)?;
        let tls = TestTls {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        };
        std::fs::write(&tls.ca, ca_cert.pem())?;
        std::fs::write(&tls.cert, server_cert.pem())?;
        std::fs::write(&tls.key, server_key.serialize_pem())?;
        Ok(tls)
    }
}

impl Server {
    /// Starts the server on `db` with the demo organization seeded.
    pub fn start(db: &Db, dir: &Path) -> Result<Server> {
        Self::start_on(db, dir, "127.0.0.1:0", None)
    }

    /// [`Server::start`], serving HTTPS and WSS itself with `tls`'s certificate.
    pub fn start_tls(db: &Db, dir: &Path, tls: &TestTls) -> Result<Server> {
        Self::start_on(db, dir, "127.0.0.1:0", Some(tls.clone()))
    }

    fn start_on(db: &Db, dir: &Path, listen: &str, tls: Option<TestTls>) -> Result<Server> {
        std::fs::create_dir_all(dir)?;
        let mut cmd = Command::new(bin("keyway-server"));
        cmd.arg("--data-dir").arg(dir);
        if let Db::Postgres(pg) = db {
            cmd.arg("--database-url").arg(&pg.url);
        }
        cmd.args([
            "serve",
            "--demo",
            "--listen",
            listen,
            "--unlock-timeout-ms",
            "3000",
            // Journey 5's webhook receiver listens on loopback.
            "--webhook-allow-private",
        ]);
        if let Some(tls) = &tls {
            cmd.arg("--tls-cert").arg(&tls.cert);
            cmd.arg("--tls-key").arg(&tls.key);
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(dir.join("server.log"))?));
        let mut child = cmd.spawn().context("spawn keyway-server")?;
        let stdout = child.stdout.take().unwrap();
        let mut proc = Proc {
            child,
            name: "keyway-server",
        };
        let mut seed_text = String::new();
        let mut url = None;
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            if let Some(rest) = line.strip_prefix("keyway-server listening on ") {
                url = Some(rest.trim().to_owned());
                break;
            }
            seed_text.push_str(&line);
            seed_text.push('\n');
        }
        let Some(url) = url else {
            proc.kill();
            bail!(
                "keyway-server exited early; log: {}",
                std::fs::read_to_string(dir.join("server.log"))?
            );
        };
        let raw: Value = serde_json::from_str(&seed_text).context("demo seed JSON")?;
        let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let seed = Seed {
            org: s(&raw["org_id"]),
            front_door: s(&raw["locks"]["Front door"]),
            lab: s(&raw["locks"]["Lab"]),
            provisioning_token: s(&raw["provisioning_token"]),
            invite_code: s(&raw["visitor_invite_code"]),
            raw,
        };
        let listen = url
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .to_owned();
        Ok(Server {
            proc,
            url,
            seed,
            db: db.clone(),
            dir: dir.to_owned(),
            listen,
            tls,
        })
    }

    /// The CA that signed the server's certificate, for clients of an `https://` server.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|t| t.ca.clone())
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Kills the server (no graceful shutdown, like a crash).
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts it again on the same address and database.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Self::start_on(&self.db, &self.dir, &self.listen, self.tls.clone()) {
                Ok(s) => {
                    *self = s;
                    return Ok(());
                }
                Err(e) if Instant::now() < deadline => {
                    eprintln!("restart retry: {e:#}");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A running `keyway-controller` on the simulated radio.
#[derive(Debug)]
pub struct Controller {
    pub proc: Option<Proc>,
    pub dir: PathBuf,
    pub radio: String,
    positions: Vec<(String, f64, f64)>,
    /// More `keyway-controller run` arguments.
    extra: Vec<String>,
}

impl Controller {
    /// Provisions a controller with the seed's token and runs it with doors at `positions`.
    pub fn provision_and_run(
        server: &Server,
        dir: &Path,
        positions: &[(&str, f64, f64)],
    ) -> Result<Controller> {
        Self::provision_and_run_with(server, dir, positions, &[])
    }

    /// [`Self::provision_and_run`], passing `extra` to `keyway-controller run`.
    pub fn provision_and_run_with(
        server: &Server,
        dir: &Path,
        positions: &[(&str, f64, f64)],
        extra: &[&str],
    ) -> Result<Controller> {
        let trust: Vec<String> = match server.ca_file() {
            Some(ca) => vec!["--ca-file".into(), ca.display().to_string()],
            None => Vec::new(),
        };
        let out = Command::new(bin("keyway-controller"))
            .args(&trust)
            .args([
                "provision",
                "--server",
                &server.url,
                "--token",
                &server.seed.provisioning_token,
                "--data-dir",
            ])
            .arg(dir)
            .output()?;
        if !out.status.success() {
            bail!("provision failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let mut c = Controller {
            proc: None,
            dir: dir.to_owned(),
            radio: format!("127.0.0.1:{}", free_port()),
            positions: positions
                .iter()
                .map(|(l, x, y)| (l.to_string(), *x, *y))
                .collect(),
            extra: extra.iter().map(|a| a.to_string()).chain(trust).collect(),
        };
        c.start()?;
        Ok(c)
    }

    /// Starts (or restarts) the controller process and waits for its radio hub.
    pub fn start(&mut self) -> Result<()> {
        self.stop();
        let mut cmd = Command::new(bin("keyway-controller"));
        cmd.arg("run")
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("--radio")
            .arg(format!("sim:{}", self.radio));
        for (lock, x, y) in &self.positions {
            cmd.arg("--position").arg(format!("{lock}={x},{y}"));
        }
        cmd.args(&self.extra);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("controller.log"))?;
        cmd.stdout(Stdio::null()).stderr(Stdio::from(log));
        self.proc = Some(Proc {
            child: cmd.spawn()?,
            name: "keyway-controller",
        });
        wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(&self.radio).is_ok()
        })
        .context("controller radio hub did not come up")
    }

    /// Kills the controller (like pulling its power).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("controller.log")).unwrap_or_default()
    }
}

/// A phone: the `keyway` CLI over the mobile core runtime, with its own state directory.
#[derive(Debug)]
pub struct Phone {
    pub home: TempDir,
    pub server: String,
    pub radio: String,
    /// The server's test CA, passed as `--ca-file`.
    pub ca_file: Option<PathBuf>,
}

impl Phone {
    pub fn new(server: &Server, controller: &Controller) -> Phone {
        Phone {
            home: TempDir::new().unwrap(),
            server: server.url.clone(),
            radio: format!("sim:{}", controller.radio),
            ca_file: server.ca_file(),
        }
    }

    /// The same phone cut off from the server (its state copied, pointed at a closed port):
    /// it can only use what it cached, like a phone without network at the door.
    pub fn offline_copy(&self) -> Phone {
        let home = TempDir::new().unwrap();
        let status = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", self.home.path().display()))
            .arg(home.path())
            .status()
            .expect("cp");
        assert!(status.success());
        Phone {
            home,
            server: format!("http://127.0.0.1:{}", free_port()),
            radio: self.radio.clone(),
            ca_file: self.ca_file.clone(),
        }
    }

    /// Runs `keyway --json ARGS`; returns (success, parsed stdout or the raw text, stderr).
    pub fn run(&self, args: &[&str]) -> (bool, Value, String) {
        let mut cmd = Command::new(bin("keyway"));
        cmd.arg("--data-dir").arg(self.home.path()).args([
            "--server",
            &self.server,
            "--radio",
            &self.radio,
            "--json",
        ]);
        if let Some(ca) = &self.ca_file {
            cmd.arg("--ca-file").arg(ca);
        }
        let out = cmd.args(args).output().expect("run keyway");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let value = serde_json::from_str(stdout.trim()).unwrap_or(Value::String(stdout));
        (
            out.status.success(),
            value,
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    /// Runs and requires success.
    pub fn ok(&self, args: &[&str]) -> Value {
        let (ok, v, err) = self.run(args);
        assert!(ok, "keyway {args:?} failed: {v} {err}");
        v
    }

    pub fn login(&self, email: &str, password: &str) -> Value {
        self.ok(&["login", "--email", email, "--password", password])
    }
}

/// Polls `f` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("condition not met within {timeout:?}")
}

/// A REST client with a bearer token.
#[derive(Debug, Clone)]
pub struct Api {
    pub base: String,
    pub token: String,
    http: reqwest::Client,
}

impl Api {
    pub async fn login(server: &Server, email: &str, password: &str) -> Result<Api> {
        // reqwest is built without a TLS crypto provider; ring is the workspace's.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut http = reqwest::Client::builder();
        if let Some(ca) = server.ca_file() {
            let pem = std::fs::read(ca)?;
            http = http.tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem)?);
        }
        let http = http.build()?;
        let res = http
            .post(format!("{}/api/v1/logins", server.url))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?;
        let status = res.status();
        let body: Value = res.json().await?;
        if !status.is_success() {
            bail!("login {email}: {status} {body}");
        }
        let token = body["token"].as_str().context("token")?.to_owned();
        Ok(Api {
            base: format!("{}/api/v1", server.url),
            token,
            http,
        })
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let text = res.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        let (status, v) = self.call(reqwest::Method::GET, path, None).await?;
        if status >= 300 {
            bail!("GET {path}: {status} {v}");
        }
        Ok(v)
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<(u16, Value)> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}
