//! [`DevL1`]: a local anvil as the L1 of a dev node or a test.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use alloy::signers::local::{MnemonicBuilder, PrivateKeySigner};
use rustix::process::{Pid, Signal, kill_process};

use crate::error::{L1Error, L1Result};

/// The mnemonic anvil derives its prefunded accounts from (Foundry's and Hardhat's default).
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// Chain id of the dev L1.
pub const DEV_L1_CHAIN_ID: u64 = 31337;

/// Prefunded dev account `index` (`m/44'/60'/0'/0/index` of [`DEV_MNEMONIC`]); index 0 is
/// `0xf39F…2266`.
pub fn dev_account(index: u32) -> PrivateKeySigner {
    MnemonicBuilder::from_phrase_nth(DEV_MNEMONIC, index)
}

/// How to start a [`DevL1`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevL1Options {
    /// The anvil binary; `None` searches (see [`find_anvil`]).
    pub anvil_path: Option<PathBuf>,
    /// Port to listen on; 0 lets anvil pick a free one.
    pub port: u16,
    /// Interval mining; `None` mines one block per transaction (and on `anvil_mine`). Default:
    /// 1s, so deposits gain confirmations on an otherwise idle dev L1.
    pub block_time: Option<Duration>,
    /// Loads the chain from this file at start and dumps it there on [`DevL1::stop`], so a dev
    /// node restarted on the same data directory finds its L1 contracts and blocks again.
    pub state_file: Option<PathBuf>,
    /// Number of prefunded accounts.
    pub accounts: u32,
    /// Where anvil's output goes; `None` discards it.
    pub log_file: Option<PathBuf>,
    /// Longest wait for anvil to listen.
    pub startup_timeout: Duration,
    /// Run anvil under a small `sh` guard that holds a pipe from this process and sends anvil
    /// SIGTERM when the pipe closes: when [`DevL1::stop`] closes it, and when this process
    /// dies, even by SIGKILL, so a killed node does not leave its dev L1 running (SIGTERM lets
    /// anvil dump its state file). Default: off.
    pub die_with_parent: bool,
}

impl Default for DevL1Options {
    fn default() -> Self {
        Self {
            anvil_path: None,
            port: 0,
            block_time: Some(Duration::from_secs(1)),
            state_file: None,
            accounts: 10,
            log_file: None,
            startup_timeout: Duration::from_secs(20),
            die_with_parent: false,
        }
    }
}

/// A running anvil. Stopped when dropped (gracefully when it keeps a state file, so the state is
/// dumped).
#[derive(Debug)]
pub struct DevL1 {
    child: Option<Child>,
    options: DevL1Options,
    anvil: PathBuf,
    port: u16,
    url: String,
}

impl DevL1 {
    /// Starts anvil and waits until it listens.
    pub async fn start(options: DevL1Options) -> L1Result<Self> {
        tokio::task::spawn_blocking(move || Self::spawn(options))
            .await
            .map_err(|e| L1Error::Anvil(format!("start task failed: {e}")))?
    }

    /// Blocking form of [`DevL1::start`].
    pub fn spawn(options: DevL1Options) -> L1Result<Self> {
        let anvil = find_anvil(options.anvil_path.as_deref())?;
        let (child, port) = launch(&anvil, &options, options.port)?;
        Ok(Self {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}"),
            options,
            anvil,
            port,
        })
    }

    /// JSON-RPC URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port anvil listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The anvil binary in use.
    pub fn anvil_path(&self) -> &Path {
        &self.anvil
    }

    /// Process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The prefunded accounts, by index.
    pub fn accounts(&self) -> Vec<PrivateKeySigner> {
        (0..self.options.accounts).map(dev_account).collect()
    }

    /// Account 0: deploys the contracts and owns the rollup in dev mode.
    pub fn deployer(&self) -> PrivateKeySigner {
        dev_account(0)
    }

    /// Account 1: the dev batcher (sequencer) key.
    pub fn sequencer(&self) -> PrivateKeySigner {
        dev_account(1)
    }

    /// Stops anvil: SIGTERM and a bounded wait when it has a state file to dump, SIGKILL
    /// otherwise. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if self.options.die_with_parent {
            // Closing the guard's pipe makes it SIGTERM anvil and wait for it.
            drop(child.stdin.take());
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            tracing::warn!("anvil did not stop within 10s of closing its guard pipe");
        }
        if self.options.state_file.is_some() {
            let pid = i32::try_from(child.id()).ok().and_then(Pid::from_raw);
            if let Some(pid) = pid
                && kill_process(pid, Signal::TERM).is_ok()
            {
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                tracing::warn!("anvil ignored SIGTERM for 10s; killing it");
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills anvil at once (SIGKILL): a crashed or unplugged L1. Its state file is not updated.
    /// (Under a [`DevL1Options::die_with_parent`] guard this is [`DevL1::stop`]: killing the
    /// guard would leave anvil running.)
    pub fn kill(&mut self) {
        if self.options.die_with_parent {
            return self.stop();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts anvil again on the same port with the same options (after [`DevL1::stop`] or
    /// [`DevL1::kill`]; stops it first otherwise).
    pub async fn restart(&mut self) -> L1Result<()> {
        self.stop();
        let anvil = self.anvil.clone();
        let options = self.options.clone();
        let port = self.port;
        let (child, _) = tokio::task::spawn_blocking(move || launch(&anvil, &options, port))
            .await
            .map_err(|e| L1Error::Anvil(format!("start task failed: {e}")))??;
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for DevL1 {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Finds the anvil binary: `explicit` if given (it must exist), else `anvil` on `PATH`, else in
/// `$LANES_TOOLS_BIN`, else in the repository's `.tools/bin` (where `make tools` puts it).
pub fn find_anvil(explicit: Option<&Path>) -> L1Result<PathBuf> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_owned())
        } else {
            Err(L1Error::AnvilNotFound {
                searched: path.display().to_string(),
            })
        };
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("anvil"))
                .collect()
        })
        .unwrap_or_default();
    if let Some(dir) = std::env::var_os("LANES_TOOLS_BIN").filter(|d| !d.is_empty()) {
        candidates.push(PathBuf::from(dir).join("anvil"));
    }
    // The checkout this crate was built from: `cargo run` and tests find `make tools`' anvil.
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(".tools")
            .join("bin")
            .join("anvil"),
    );
    candidates.push(PathBuf::from(".tools/bin/anvil"));
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    Err(L1Error::AnvilNotFound {
        searched:
            "anvil on PATH, $LANES_TOOLS_BIN/anvil, <repo>/.tools/bin/anvil, ./.tools/bin/anvil"
                .into(),
    })
}

/// Spawns anvil on `port` and waits for its "Listening on" line; returns the child and the port
/// it listens on.
/// The guard of [`DevL1Options::die_with_parent`]: anvil in the background (stdin from
/// /dev/null), then wait for the parent's pipe on stdin to close, then SIGTERM anvil and wait.
const GUARD_SCRIPT: &str =
    r#""$0" "$@" & p=$!; cat >/dev/null; kill -TERM "$p" 2>/dev/null; wait "$p""#;

fn launch(anvil: &Path, options: &DevL1Options, port: u16) -> L1Result<(Child, u16)> {
    let mut command = if options.die_with_parent {
        let mut guard = Command::new("sh");
        guard.arg("-c").arg(GUARD_SCRIPT).arg(anvil);
        guard
    } else {
        Command::new(anvil)
    };
    command
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--chain-id", &DEV_L1_CHAIN_ID.to_string()])
        .args(["--mnemonic", DEV_MNEMONIC])
        .args(["--accounts", &options.accounts.to_string()])
        .stdin(if options.die_with_parent {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(block_time) = options.block_time {
        command.args(["--block-time", &format!("{}", block_time.as_secs_f64())]);
    }
    if let Some(state) = &options.state_file {
        command.arg("--state").arg(state);
    }
    let mut child = command
        .spawn()
        .map_err(|e| L1Error::Anvil(format!("{}: {e}", anvil.display())))?;

    let open_log = || -> L1Result<Option<std::fs::File>> {
        options
            .log_file
            .as_ref()
            .map(|path| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| L1Error::Anvil(format!("log file {}: {e}", path.display())))
            })
            .transpose()
    };
    let (stdout_log, stderr_log) = (open_log()?, open_log()?);

    // anvil logs every request: its pipes are drained for its whole life, or it would block on
    // a full pipe.
    let (listening_tx, listening_rx) = mpsc::channel::<Result<u16, String>>();
    let stdout = child.stdout.take().expect("stdout is piped");
    std::thread::Builder::new()
        .name("anvil-stdout".into())
        .spawn(move || drain_stdout(stdout, stdout_log, listening_tx))
        .map_err(|e| L1Error::Anvil(format!("cannot spawn reader thread: {e}")))?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let (stderr_tx, stderr_rx) = mpsc::channel::<String>();
    std::thread::Builder::new()
        .name("anvil-stderr".into())
        .spawn(move || drain_stderr(stderr, stderr_log, stderr_tx))
        .map_err(|e| L1Error::Anvil(format!("cannot spawn reader thread: {e}")))?;

    match listening_rx.recv_timeout(options.startup_timeout) {
        Ok(Ok(port)) => Ok((child, port)),
        outcome => {
            let _ = child.kill();
            let _ = child.wait();
            let stderr: Vec<String> = stderr_rx.try_iter().collect();
            let why = match outcome {
                Ok(Err(stdout_tail)) => format!("exited early; output: {stdout_tail}"),
                _ => format!("not listening after {:?}", options.startup_timeout),
            };
            Err(L1Error::Anvil(format!(
                "{} {why} {}",
                anvil.display(),
                stderr.join("\n")
            )))
        }
    }
}

fn drain_stdout(
    stdout: impl Read,
    mut log: Option<std::fs::File>,
    listening: mpsc::Sender<Result<u16, String>>,
) {
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    let mut seen = String::new();
    let mut reported = false;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if let Some(log) = log.as_mut() {
            let _ = log.write_all(line.as_bytes());
        }
        if !reported {
            if let Some(port) = line
                .trim()
                .strip_prefix("Listening on ")
                .and_then(|addr| addr.rsplit(':').next())
                .and_then(|p| p.parse().ok())
            {
                let _ = listening.send(Ok(port));
                reported = true;
            } else if seen.len() < 4096 {
                seen.push_str(&line);
            }
        }
    }
    if !reported {
        let _ = listening.send(Err(seen));
    }
}

fn drain_stderr(stderr: impl Read, mut log: Option<std::fs::File>, lines: mpsc::Sender<String>) {
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if let Some(log) = log.as_mut() {
            let _ = writeln!(log, "{line}");
        }
        let _ = lines.send(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::address;

    #[test]
    fn dev_accounts_are_anvils() {
        assert_eq!(
            dev_account(0).address(),
            address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
        );
        assert_eq!(
            dev_account(1).address(),
            address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
        );
    }

    /// Under the guard, closing the pipe (stop, or this process dying) takes anvil down too.
    #[test]
    fn guarded_anvil_stops_with_its_pipe() {
        let Ok(anvil) = find_anvil(None) else {
            eprintln!("SKIPPED: no anvil (run `make tools`)");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let mut l1 = DevL1::spawn(DevL1Options {
            anvil_path: Some(anvil),
            state_file: Some(dir.path().join("state.json")),
            die_with_parent: true,
            ..DevL1Options::default()
        })
        .unwrap();
        let guard = l1.pid().unwrap();
        // The guard's child is anvil, listening on the reported port.
        let children = std::fs::read_to_string(format!("/proc/{guard}/task/{guard}/children"))
            .unwrap_or_default();
        let anvil_pid: u32 = children
            .split_whitespace()
            .find_map(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                String::from_utf8_lossy(&cmdline)
                    .contains("--mnemonic")
                    .then(|| pid.parse().ok())?
            })
            .expect("anvil runs under the guard");
        assert!(std::net::TcpStream::connect(("127.0.0.1", l1.port())).is_ok());
        // Past the first 1 s block, so there is state to dump.
        std::thread::sleep(Duration::from_millis(1500));
        l1.stop();
        assert!(
            !Path::new(&format!("/proc/{anvil_pid}")).exists(),
            "anvil stopped"
        );
        assert!(
            dir.path().join("state.json").is_file(),
            "SIGTERM let anvil dump its state"
        );
    }

    #[test]
    fn missing_explicit_anvil_is_reported() {
        let err = find_anvil(Some(Path::new("/nonexistent/anvil"))).unwrap_err();
        assert!(matches!(err, L1Error::AnvilNotFound { .. }));
        assert!(err.to_string().contains("/nonexistent/anvil"), "{err}");
        assert!(!err.is_retryable());
    }
}
