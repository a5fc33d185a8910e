//! Throwaway services for tests and benches: PostgreSQL clusters, and a JWT issuer
//! on loopback ([`issuer`]).
//!
//! [`PgCluster::start`] runs `initdb` and `pg_ctl` from Debian's `postgresql` package in
//! a temporary directory, on a free loopback port, and stops the cluster on drop. A
//! watchdog process also stops it when the test process dies without dropping (a
//! `static` cluster, a killed test), so no cluster outlives its tests.
//!
//! `initdb` and `postgres` refuse to run as root; as root, the cluster runs as the
//! `postgres` user (`runuser -u postgres`) in a directory that user owns.
//!
//! Tests never skip when PostgreSQL is missing: [`PgCluster::start`] fails with a
//! message that says what to install.

pub mod issuer;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A running throwaway cluster.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

static DATABASES: AtomicU32 = AtomicU32::new(0);

impl PgCluster {
    /// Starts a cluster tuned for tests (no fsync: a test cluster need not survive
    /// a power cut).
    pub fn start() -> Result<Self, String> {
        Self::start_with(&[
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ])
    }

    /// Starts a cluster with PostgreSQL's durable defaults, for crash-safety tests.
    pub fn start_durable() -> Result<Self, String> {
        Self::start_with(&[])
    }

    fn start_with(settings: &[&str]) -> Result<Self, String> {
        let bin = find_bindir()?;
        let as_postgres_user = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("keysmith-pg-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        if as_postgres_user {
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()))?;
        }
        let data = dir.path().join("data");
        let port = free_port()?;
        let cluster = Self {
            dir,
            bin,
            port,
            as_postgres_user,
        };
        cluster.run_pg(
            "initdb",
            &[
                "-D",
                &path_str(&data)?,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        )?;
        let mut options = format!("-p {port} -h 127.0.0.1 -k {}", path_str(cluster.dir.path())?);
        for s in settings {
            options.push(' ');
            options.push_str(s);
        }
        let log = cluster.dir.path().join("postgres.log");
        cluster.run_pg(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                &path_str(&data)?,
                "-l",
                &path_str(&log)?,
                "-o",
                &options,
            ],
        )?;
        cluster.spawn_watchdog(&data)?;
        Ok(cluster)
    }

    /// The port the cluster listens on (127.0.0.1).
    /// The cluster's data directory (tables and write-ahead log), for tests that
    /// search what PostgreSQL wrote.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` in this cluster.
    /// The directory of the PostgreSQL programs the cluster runs (`pg_dump`, …).
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates a fresh, empty database and returns its URL.
    pub fn create_database(&self) -> Result<String, String> {
        let name = format!("test_{}", DATABASES.fetch_add(1, Ordering::Relaxed));
        let port = self.port.to_string();
        self.run_pg("createdb", &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", &name])?;
        Ok(self.url(&name))
    }

    /// Runs `psql -c <sql>` against database `db`, for tests that need to reach past
    /// the store (terminating connections, inspecting rows).
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let port = self.port.to_string();
        self.run_pg(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                db,
                "-At",
                "-c",
                sql,
            ],
        )
    }

    fn run_pg(&self, program: &str, args: &[&str]) -> Result<String, String> {
        let program = self.bin.join(program);
        let mut cmd = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        cmd.args(args).current_dir(self.dir.path());
        run(&mut cmd)
    }

    /// A detached shell that stops the cluster once this process is gone.
    fn spawn_watchdog(&self, data: &Path) -> Result<(), String> {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = format!(
            "{} {} -D {} stop -m immediate",
            if self.as_postgres_user {
                "runuser -u postgres --"
            } else {
                ""
            },
            path_str(&pg_ctl)?,
            path_str(data)?
        );
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            dir = path_str(self.dir.path())?
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the cluster watchdog: {e}"))?;
        Ok(())
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        if let Ok(data) = path_str(&data) {
            let _ = self.run_pg("pg_ctl", &["stop", "-m", "immediate", "-D", &data]);
        }
    }
}

fn path_str(p: &Path) -> Result<String, String> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("path is not UTF-8: {}", p.display()))
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{:?} failed ({}): {}{}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// `KEYSMITH_PG_BINDIR`, else the newest `/usr/lib/postgresql/<version>/bin`, else the
/// directory of `initdb` on `PATH`.
fn find_bindir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("KEYSMITH_PG_BINDIR") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").exists() && dir.join("pg_ctl").exists() {
                return Ok(dir);
            }
        }
    }
    Err("PostgreSQL is not installed: tests need initdb and pg_ctl \
         (Debian: apt-get install postgresql; or set KEYSMITH_PG_BINDIR)"
        .into())
}
