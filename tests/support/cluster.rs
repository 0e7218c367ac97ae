//! A PostgreSQL cluster of a test's own, for what cannot be done to the shared server:
//! restoring a dump into another cluster, stopping it, resetting its transaction ids. Made
//! with the server's own programs in a temp dir, on a free port; stopped and removed when
//! dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::TempDir;

/// Where the server's programs are, when `ANNALS_PG_BINDIR` does not say.
const BIN_DIRS: &str = "/usr/lib/postgresql";

/// A running cluster of its own. The server's programs refuse to run as root, so as root
/// they run as the `postgres` user, who then owns the directory.
pub struct Cluster {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    /// Creates and starts a cluster whose superuser is `postgres`, trusted on 127.0.0.1.
    ///
    /// Panics, saying what to install, when the server's programs are not on this machine:
    /// the tests that need one never skip.
    pub fn start() -> Self {
        let bin = bin_dir();
        let as_postgres = output(Command::new("id").arg("-u")).trim() == "0";
        let dir = TempDir::new("annals-cluster");
        if as_postgres {
            output(
                Command::new("chown")
                    .args(["-R", "postgres:"])
                    .arg(dir.path()),
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let cluster = Self {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = cluster.data();
        cluster.server_tool(
            "initdb",
            &[
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ],
            &data,
        );
        cluster.start_again();
        cluster
    }

    /// A URL of the cluster's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The cluster's temp dir, for files of the test's own.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Stops the server (fast shutdown: connections end, the data is consistent).
    pub fn stop(&self) {
        self.server_tool("pg_ctl", &["-m", "fast", "-w", "stop", "-D"], &self.data());
    }

    /// Starts the stopped server.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let log = log.to_string_lossy();
        self.server_tool(
            "pg_ctl",
            &["-w", "-l", &log, "-o", &options, "start", "-D"],
            &self.data(),
        );
    }

    /// Runs the server program `tool` with `args`, then the data directory, as its owner.
    pub fn server_tool(&self, tool: &str, args: &[&str], data: &Path) -> String {
        output(self.as_owner(tool).args(args).arg(data))
    }

    /// The server program `tool`, to run as the owner of the data directory.
    fn as_owner(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    /// Runs the client program `tool` (`pg_dump`, `psql`) of the same release with `args`.
    pub fn client_tool(&self, tool: &str, args: &[&str]) -> String {
        output(Command::new(self.bin.join(tool)).args(args))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Immediate: nothing of a throwaway cluster needs to reach its disk.
        let _ = self
            .as_owner("pg_ctl")
            .args(["-m", "immediate", "-w", "stop", "-D"])
            .arg(self.data())
            .output();
    }
}

/// The directory of the server's programs: `ANNALS_PG_BINDIR`, or the newest release under
/// [`BIN_DIRS`] that has `initdb`.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ANNALS_PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let mut releases: Vec<(u32, PathBuf)> = std::fs::read_dir(BIN_DIRS)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let release = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((release, bin))
        })
        .collect();
    releases.sort();
    match releases.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "this test needs the PostgreSQL server programs (initdb, pg_ctl, pg_resetwal, \
             pg_dump, psql), found in neither ANNALS_PG_BINDIR nor {BIN_DIRS}/*/bin: install \
             them (Debian, Ubuntu: `apt install postgresql`) or set ANNALS_PG_BINDIR to their \
             directory"
        ),
    }
}

/// Runs `command`, and returns its standard output; panics with its output if it fails.
fn output(command: &mut Command) -> String {
    let shown = format!("{command:?}");
    let done = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        done.status.success(),
        "{shown} failed ({}):\n{}{}",
        done.status,
        String::from_utf8_lossy(&done.stdout),
        String::from_utf8_lossy(&done.stderr)
    );
    String::from_utf8_lossy(&done.stdout).into_owned()
}
