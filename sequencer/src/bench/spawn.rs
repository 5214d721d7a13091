//! `--spawn-dev`: a fresh `lanes node --dev` from this executable, on free ports in a
//! temporary directory, stopped (SIGTERM, then SIGKILL) when the run ends.

use super::BenchError;
use std::{
    net::{Ipv4Addr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A running dev node.
#[derive(Debug)]
pub struct DevNode {
    child: Option<Child>,
    /// HTTP/WebSocket JSON-RPC URL.
    pub rpc_url: String,
    /// Prometheus metrics URL.
    pub metrics_url: String,
    log: PathBuf,
    // Keeps the data directory alive for the node's lifetime.
    _dir: tempfile::TempDir,
}

/// What the kernel says when a port is taken (`EADDRINUSE`), in the node's start-up error.
const PORT_TAKEN: &str = "Address already in use";

/// Why one start failed: a taken port is worth another try, anything else is not.
enum SpawnFailure {
    /// The node exited because a port it was given was taken; its log.
    PortTaken(String),
    /// Anything else.
    Other(BenchError),
}

impl<E: Into<BenchError>> From<E> for SpawnFailure {
    fn from(e: E) -> Self {
        Self::Other(e.into())
    }
}

/// Two distinct ports free a moment ago: both are bound at once, since the kernel can hand
/// a port it just released out again.
fn free_ports() -> Result<(u16, u16), BenchError> {
    let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let second = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok((first.local_addr()?.port(), second.local_addr()?.port()))
}

/// Starts tried before giving up when a picked port turns out taken.
const PORT_ATTEMPTS: u32 = 4;

impl DevNode {
    /// Starts `<this executable> node --dev` with `extra` arguments (e.g. `--config FILE`)
    /// and waits until it answers JSON-RPC.
    ///
    /// The ports are free when picked but released before the node binds them, and any
    /// outgoing connection may take one meanwhile (both draw on the same ephemeral range):
    /// a node that exits because a port is taken is started again on fresh ports.
    pub async fn spawn(extra: &[String], timeout: Duration) -> Result<Self, BenchError> {
        let mut attempt = 1;
        loop {
            match Self::spawn_once(extra, timeout).await {
                Err(SpawnFailure::PortTaken(_)) if attempt < PORT_ATTEMPTS => {
                    eprintln!("lanes bench: a port picked for the dev node was taken; new ports");
                    attempt += 1;
                }
                Err(SpawnFailure::PortTaken(log)) => {
                    return Err(BenchError::Spawn(format!(
                        "the dev node found its ports taken {PORT_ATTEMPTS} times; its log:\n{log}"
                    )));
                }
                Err(SpawnFailure::Other(e)) => return Err(e),
                Ok(node) => return Ok(node),
            }
        }
    }

    async fn spawn_once(extra: &[String], timeout: Duration) -> Result<Self, SpawnFailure> {
        let dir = tempfile::Builder::new().prefix("lanes-bench-").tempdir()?;
        let exe = std::env::current_exe()?;
        let (rpc_port, metrics_port) = free_ports()?;
        let log = dir.path().join("node.log");
        let log_file = std::fs::File::create(&log)?;
        let child = Command::new(&exe)
            .arg("node")
            .arg("--dev")
            .arg("--datadir")
            .arg(dir.path().join("data"))
            .arg("--rpc.port")
            .arg(rpc_port.to_string())
            .arg("--metrics.port")
            .arg(metrics_port.to_string())
            .args(extra)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| BenchError::Spawn(format!("starting {}: {e}", exe.display())))?;
        let mut node = Self {
            child: Some(child),
            rpc_url: format!("http://127.0.0.1:{rpc_port}"),
            metrics_url: format!("http://127.0.0.1:{metrics_port}/metrics"),
            log,
            _dir: dir,
        };
        node.wait_ready(timeout).await?;
        Ok(node)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<(), SpawnFailure> {
        let client = super::rpc::RpcClient::new(&self.rpc_url, Duration::from_secs(2))?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().map_err(BenchError::from)?
            {
                // The whole log: a backtrace after the error can push it out of the tail.
                let whole = std::fs::read_to_string(&self.log).unwrap_or_default();
                if whole.contains(PORT_TAKEN) {
                    return Err(SpawnFailure::PortTaken(self.log_tail()));
                }
                return Err(BenchError::Spawn(format!(
                    "the dev node exited with {status}; its log:\n{}",
                    self.log_tail()
                ))
                .into());
            }
            if client
                .call::<serde_json::Value>("eth_blockNumber", serde_json::json!([]))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BenchError::Spawn(format!(
                    "the dev node did not answer within {timeout:?}; its log:\n{}",
                    self.log_tail()
                ))
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The node's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last lines of the node's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}
