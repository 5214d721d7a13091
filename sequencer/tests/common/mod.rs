//! Shared helpers for integration tests that run the real `lanes` binary and
//! Foundry's own tools against it.
//!
//! Use it from a test file in `sequencer/tests/` with `mod common;`.
//!
//! * [`Node`] / [`NodeBuilder`]: spawn `lanes node --dev` on free ports in a
//!   temporary directory, wait until it answers JSON-RPC, SIGKILL or SIGTERM
//!   it, restart it on the same data directory. Its output goes to a log file
//!   that is printed when a test panics while the node is alive.
//! * [`cast`], [`forge`], [`run`]: run tools from `.tools/bin` (installed by
//!   `make tools`) with a bounded run time.
//! * [`DEV_ACCOUNTS`]: the prefunded accounts of `--dev` mode.
//!
//! Every wait here is bounded: a test never hangs on a dead node.
//!
//! Environment:
//! * `LANES_TOOLS_BIN`: folder with `cast`, `forge`, `anvil`, `solc`
//!   (default `<repo>/.tools/bin`; the Makefile sets it).
//! * `LANES_CONTRACTS_DIR`: the Foundry project (default `<repo>/contracts`).
//! * `LANES_BIN`: the `lanes` binary to run (default: the one Cargo built).
//! * `LANES_TEST_KEEP=1`: keep each node's temporary directory (data, config,
//!   log) and print where it is.
#![allow(dead_code)] // Each test binary uses a different subset.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Dev chain constants
// ---------------------------------------------------------------------------

/// Chain id of `lanes node --dev`.
pub const CHAIN_ID: u64 = 42069;

/// Mnemonic whose first ten accounts (`m/44'/60'/0'/0/i`) are prefunded in
/// `--dev` mode; the same one anvil and Hardhat use.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// Starting balance of every dev account: 10,000 ETH, in wei.
pub const DEV_BALANCE_WEI: u128 = 10_000 * ONE_ETHER;

/// One ether in wei.
pub const ONE_ETHER: u128 = 1_000_000_000_000_000_000;

/// A prefunded dev account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevAccount {
    /// Checksummed address.
    pub address: &'static str,
    /// `0x`-prefixed secp256k1 private key.
    pub private_key: &'static str,
}

/// The ten dev accounts derived from [`DEV_MNEMONIC`], checked with
/// `cast wallet private-key "<mnemonic>" <i>` and `cast wallet address`.
pub const DEV_ACCOUNTS: [DevAccount; 10] = [
    DevAccount {
        address: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        private_key: "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    },
    DevAccount {
        address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        private_key: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    },
    DevAccount {
        address: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        private_key: "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    },
    DevAccount {
        address: "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        private_key: "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    },
    DevAccount {
        address: "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
        private_key: "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    },
    DevAccount {
        address: "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
        private_key: "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    },
    DevAccount {
        address: "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
        private_key: "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    },
    DevAccount {
        address: "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
        private_key: "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    },
    DevAccount {
        address: "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
        private_key: "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    },
    DevAccount {
        address: "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
        private_key: "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
    },
];

// ---------------------------------------------------------------------------
// Paths and tools
// ---------------------------------------------------------------------------

/// Default bound on one tool invocation (`cast`, `forge`, ...).
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// The repository root (the workspace directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("sequencer crate has a parent")
        .to_path_buf()
}

/// Folder holding `cast`, `forge`, `anvil` and `solc`: `$LANES_TOOLS_BIN`, or
/// `<repo>/.tools/bin`. Panics with a hint to run `make tools` if `cast` is
/// not there.
pub fn tools_bin() -> PathBuf {
    let dir = std::env::var_os("LANES_TOOLS_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".tools").join("bin"));
    let cast = dir.join("cast");
    assert!(
        cast.is_file(),
        "Foundry tools not found: {} does not exist; run `make tools` (or set LANES_TOOLS_BIN)",
        cast.display()
    );
    dir
}

/// Like [`tools_bin`] but `None` instead of panicking when the folder is missing.
fn soft_tools_bin() -> Option<PathBuf> {
    let dir = std::env::var_os("LANES_TOOLS_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".tools").join("bin"));
    dir.is_dir().then_some(dir)
}

/// Path of one tool in [`tools_bin`], e.g. `tool("forge")`.
pub fn tool(name: &str) -> PathBuf {
    let path = tools_bin().join(name);
    assert!(
        path.exists(),
        "{} does not exist; run `make tools`",
        path.display()
    );
    path
}

/// The Foundry project: `$LANES_CONTRACTS_DIR`, or `<repo>/contracts`.
pub fn contracts_dir() -> PathBuf {
    std::env::var_os("LANES_CONTRACTS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("contracts"))
}

/// The `lanes` binary Cargo built for this test run, or `$LANES_BIN` (a copy kept aside
/// when several checkouts share one target directory and overwrite each other's binary).
pub fn lanes_bin() -> PathBuf {
    std::env::var_os("LANES_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lanes")))
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read the
/// port, release it), and never one this process was given before.
pub fn free_port() -> u16 {
    // The kernel can hand a port it just released out again: the RPC, metrics and admin
    // ports of one node then collide and the node refuses its config.
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind 127.0.0.1:0");
        if GIVEN.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return port;
        }
    }
}

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// The command line, for messages.
    pub command: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl CmdOutput {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics (showing both streams) unless the command succeeded; returns
    /// the trimmed standard output.
    #[track_caller]
    pub fn ok(&self) -> String {
        assert!(
            self.success(),
            "command failed ({}): {}\n{}",
            self.status,
            self.command,
            self.streams()
        );
        self.stdout.trim().to_owned()
    }

    /// Panics unless the command failed; returns standard error.
    #[track_caller]
    pub fn err(&self) -> String {
        assert!(
            !self.success(),
            "command unexpectedly succeeded: {}\n{}",
            self.command,
            self.streams()
        );
        self.stderr.clone()
    }

    /// Both streams, labelled, for assertion messages.
    pub fn streams(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }

    /// Standard output parsed as JSON (from its first `{` or `[`, so a
    /// leading progress line is skipped). Panics if it is not JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        let out = self.ok();
        let start = out.find(['{', '[']).unwrap_or(0);
        serde_json::from_str(&out[start..]).unwrap_or_else(|e| {
            panic!(
                "output of {} is not JSON ({e}):\n{}",
                self.command,
                self.streams()
            )
        })
    }
}

/// Runs `cmd` to completion with no stdin, capturing both streams; kills it
/// and panics if it runs longer than `timeout`.
#[track_caller]
pub fn run(cmd: &mut Command, timeout: Duration) -> CmdOutput {
    let command = describe_command(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let status = match wait_timeout(&mut child, timeout) {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let (out, err) = (join_drain(stdout), join_drain(stderr));
            panic!(
                "{command} did not finish within {timeout:?}; killed\n--- stdout ---\n{out}\n--- stderr ---\n{err}"
            );
        }
    };
    CmdOutput {
        command,
        status,
        stdout: join_drain(stdout),
        stderr: join_drain(stderr),
    }
}

/// Runs `cast` from [`tools_bin`] with `args` (bounded by [`TOOL_TIMEOUT`]).
#[track_caller]
pub fn cast<I, S>(args: I) -> CmdOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = tool_command("cast");
    cmd.args(args);
    run(&mut cmd, TOOL_TIMEOUT)
}

/// Runs `forge` from [`tools_bin`] in directory `dir` with `args`, adding
/// `--offline --use <tools>/solc` after the subcommand for those that compile
/// (`build`, `test`, `create`) unless `--use` is already given. Bounded by
/// [`TOOL_TIMEOUT`].
#[track_caller]
pub fn forge<I, S>(dir: &Path, args: I) -> CmdOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let compiles = args
        .first()
        .is_some_and(|a| a == "build" || a == "test" || a == "create");
    if compiles && !args.iter().any(|a| a == "--use") {
        // Right after the subcommand: a trailing variadic option such as
        // `--constructor-args` would swallow flags appended at the end.
        let solc = tool("solc").into_os_string();
        args.splice(1..1, ["--offline".into(), "--use".into(), solc]);
    }
    let mut cmd = tool_command("forge");
    cmd.current_dir(dir).args(&args);
    run(&mut cmd, TOOL_TIMEOUT)
}

/// `forge create` of the Foundry project's `LanesToken` (name "Lanes", symbol "LNS",
/// `supply` base units to `deployer`) on `node`, compiled into the node's own directory so
/// parallel tests don't share forge's out/ and cache/. Returns forge's JSON answer
/// (`deployedTo`, `deployer`, `transactionHash`).
#[track_caller]
pub fn forge_create_token(node: &Node, deployer: &DevAccount, supply: &str) -> serde_json::Value {
    let out_dir = node.dir().join("forge-out");
    let cache_dir = node.dir().join("forge-cache");
    forge(
        &contracts_dir(),
        [
            "create",
            "src/LanesToken.sol:LanesToken",
            "--broadcast",
            "--json",
            "--private-key",
            deployer.private_key,
            "--rpc-url",
            &node.rpc_url(),
            "--out",
            out_dir.to_str().expect("utf-8 temp path"),
            "--cache-path",
            cache_dir.to_str().expect("utf-8 temp path"),
            "--constructor-args",
            "Lanes",
            "LNS",
            supply,
        ],
    )
    .json()
}

/// A `Command` for a tool in [`tools_bin`], with colour off and the tools
/// folder first on `PATH` (so forge finds the solc wrapper's `node`, etc.).
pub fn tool_command(name: &str) -> Command {
    let bin = tools_bin();
    let mut cmd = Command::new(bin.join(name));
    let mut path = OsString::from(&bin);
    if let Some(old) = std::env::var_os("PATH") {
        path.push(":");
        path.push(old);
    }
    cmd.env("PATH", path)
        .env("NO_COLOR", "1")
        .env("FOUNDRY_DISABLE_NIGHTLY_WARNING", "1");
    cmd
}

fn describe_command(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn drain<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn join_drain(h: thread::JoinHandle<String>) -> String {
    h.join().unwrap_or_default()
}

/// Polls `child` until it exits or `timeout` passes (then `None`).
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for child {}: {e}", child.id()),
        }
    }
}

// ---------------------------------------------------------------------------
// Minimal HTTP / JSON-RPC client (std only, bounded)
// ---------------------------------------------------------------------------

/// Bound on one HTTP exchange with the node.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed JSON-RPC call.
#[derive(Debug, Clone, PartialEq)]
pub enum RpcError {
    /// No valid JSON-RPC response: connection refused, timeout, bad HTTP or
    /// JSON, or neither `result` nor `error`.
    Transport(String),
    /// A JSON-RPC error object.
    Rpc {
        /// `error.code`.
        code: i64,
        /// `error.message`.
        message: String,
        /// `error.data`, if any.
        data: Option<Value>,
    },
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcError::Transport(e) => write!(f, "transport error: {e}"),
            RpcError::Rpc {
                code,
                message,
                data,
            } => {
                write!(f, "JSON-RPC error {code}: {message}")?;
                if let Some(d) = data {
                    write!(f, " ({d})")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for RpcError {}

/// One HTTP/1.1 request to `127.0.0.1:port`; returns status and body.
/// Reads exactly the response (Content-Length, chunked, or to EOF).
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    timeout: Duration,
) -> io::Result<(u16, Vec<u8>)> {
    let deadline = Instant::now() + timeout;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    let remaining = |d: Instant| {
        d.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    stream.set_write_timeout(Some(remaining(deadline)))?;

    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes())?;
    if let Some(b) = body {
        stream.write_all(b)?;
    }
    stream.flush()?;

    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "HTTP response timed out");
    let mut read_more = |stream: &mut TcpStream, buf: &mut Vec<u8>| -> io::Result<bool> {
        if Instant::now() >= deadline {
            return Err(timed_out());
        }
        stream.set_read_timeout(Some(remaining(deadline)))?;
        match stream.read(&mut chunk) {
            Ok(0) => Ok(false),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(timed_out())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(e),
        }
    };

    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_owned());
    let header_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if !read_more(&mut stream, &mut buf)? {
            return Err(bad("connection closed before the end of the HTTP headers"));
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("malformed HTTP status line"))?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                content_length = v.parse::<usize>().ok();
            } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
    }
    let body_start = header_end + 4;
    let body = if chunked {
        loop {
            if let Some(body) = decode_chunked(&buf[body_start..]).map_err(|e| bad(&e))? {
                break body;
            }
            if !read_more(&mut stream, &mut buf)? {
                return Err(bad("connection closed inside a chunked body"));
            }
        }
    } else if let Some(len) = content_length {
        while buf.len() < body_start + len {
            if !read_more(&mut stream, &mut buf)? {
                return Err(bad("connection closed before Content-Length bytes"));
            }
        }
        buf[body_start..body_start + len].to_vec()
    } else {
        while read_more(&mut stream, &mut buf)? {}
        buf[body_start..].to_vec()
    };
    Ok((status, body))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `Ok(None)` while the chunked body is incomplete.
fn decode_chunked(mut data: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = find(data, b"\r\n") else {
            return Ok(None);
        };
        let size_str = String::from_utf8_lossy(&data[..eol]);
        let size_str = size_str.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_str, 16)
            .map_err(|_| format!("bad chunk size {size_str:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(Some(out)); // trailers, if any, are ignored
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// One JSON-RPC 2.0 call over HTTP to `127.0.0.1:port`.
pub fn rpc_call(port: u16, method: &str, params: Value) -> Result<Value, RpcError> {
    let req = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    let body = serde_json::to_vec(&req).expect("serialize request");
    let (status, body) = http_request(port, "POST", "/", Some(&body), HTTP_TIMEOUT)
        .map_err(|e| RpcError::Transport(format!("{method}: {e}")))?;
    let resp: Value = serde_json::from_slice(&body).map_err(|e| {
        RpcError::Transport(format!(
            "{method}: HTTP {status}, body is not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        ))
    })?;
    if let Some(err) = resp.get("error").filter(|e| !e.is_null()) {
        return Err(RpcError::Rpc {
            code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            data: err.get("data").cloned(),
        });
    }
    match resp.get("result") {
        Some(r) => Ok(r.clone()),
        None => Err(RpcError::Transport(format!(
            "{method}: HTTP {status}, no result or error: {resp}"
        ))),
    }
}

/// Parses a `0x` hex quantity (or a decimal string) as `u128`.
#[track_caller]
pub fn parse_u128(s: &str) -> u128 {
    let s = s.trim().trim_matches('"');
    let parsed = match s.strip_prefix("0x") {
        Some(hex) => u128::from_str_radix(hex, 16),
        // cast prints e.g. "1000000 [1e6]": take the first word.
        None => s.split_whitespace().next().unwrap_or("").parse(),
    };
    parsed.unwrap_or_else(|e| panic!("not a number: {s:?} ({e})"))
}

// ---------------------------------------------------------------------------
// The node
// ---------------------------------------------------------------------------

/// Bound on how long a node may take to answer `eth_chainId` after spawning.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on a graceful shutdown after SIGTERM in [`Node::terminate`].
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// How many times a start is tried again after a port the harness picked was taken by
/// someone else between [`free_port`] releasing it and the node binding it.
const PORT_RETRIES: u32 = 4;

/// What the kernel says when a port is taken (`EADDRINUSE`).
const PORT_TAKEN: &str = "Address already in use";

/// Settings for a [`Node`]; build with [`Node::builder`].
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    config: BTreeMap<String, BTreeMap<String, String>>,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    log_format: Option<String>,
    startup_timeout: Duration,
}

impl Default for NodeBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeBuilder {
    /// Defaults: `--dev`, `[sequencer] block_time = "200ms"`, and (unless
    /// set) `[batcher] admin_port` = a free port. The process gets
    /// `.tools/bin` first on `PATH` (anvil for a dev L1).
    pub fn new() -> Self {
        Self {
            config: BTreeMap::new(),
            args: Vec::new(),
            envs: Vec::new(),
            log_format: None,
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
        }
        .block_time("200ms")
    }

    /// Batches close after a second and count as safe at one L1 confirmation, and a block
    /// is made every slot so the chain grows even without transactions.
    pub fn fast_batching(self) -> Self {
        self.config_str("batcher", "max_batch_age", "1s")
            .config_str("batcher", "poll_interval", "200ms")
            .config_str("batcher", "data_availability", "calldata")
            .config("batcher", "confirmations", "1")
            .config_str("sequencer", "empty_block_interval", "200ms")
    }

    /// `[sequencer] block_time`, a humantime duration such as `"200ms"`.
    pub fn block_time(self, duration: &str) -> Self {
        self.config_str("sequencer", "block_time", duration)
    }

    /// Sets `[section] key = <toml_literal>` in the generated config file;
    /// `toml_literal` is written as is (`"10"`, `"true"`, `"\"zstd\""`).
    pub fn config(mut self, section: &str, key: &str, toml_literal: impl Into<String>) -> Self {
        self.config
            .entry(section.to_owned())
            .or_default()
            .insert(key.to_owned(), toml_literal.into());
        self
    }

    /// Sets `[section] key = "<value>"` (a TOML string).
    pub fn config_str(self, section: &str, key: &str, value: &str) -> Self {
        let quoted = toml_string(value);
        self.config(section, key, quoted)
    }

    /// Removes a key set earlier (e.g. the default block time).
    pub fn unset_config(mut self, section: &str, key: &str) -> Self {
        if let Some(s) = self.config.get_mut(section) {
            s.remove(key);
        }
        self
    }

    /// An extra command-line argument after the standard ones.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// An environment variable for the node process.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// `--log.format` (e.g. `"json"`); default: the binary's own.
    pub fn log_format(mut self, format: &str) -> Self {
        self.log_format = Some(format.to_owned());
        self
    }

    /// How long [`NodeBuilder::spawn`] waits for `eth_chainId` to answer.
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// The config file this builder would write.
    pub fn config_toml(&self) -> String {
        let mut s = String::from("# Written by sequencer/tests/common for one test node.\n");
        for (section, keys) in &self.config {
            if keys.is_empty() {
                continue;
            }
            s.push_str(&format!("\n[{section}]\n"));
            for (k, v) in keys {
                s.push_str(&format!("{k} = {v}\n"));
            }
        }
        s
    }

    /// Spawns the node and waits until it answers `eth_chainId`. Panics
    /// (printing the node's log) if it exits or does not answer in time.
    ///
    /// A port [`free_port`] handed out can be taken before the node binds it (by another
    /// test's process, or as the local end of any outgoing connection: both draw from the
    /// same ephemeral range). Such a start is thrown away whole, directory and log included,
    /// and tried again on fresh ports, so a test sees one clean first start.
    #[track_caller]
    pub fn spawn(self) -> Node {
        // Fixed default ports would collide between nodes of parallel tests.
        let pick_admin_port = !self
            .config
            .get("batcher")
            .is_some_and(|b| b.contains_key("admin_port"));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut builder = self.clone();
            if pick_admin_port {
                builder = builder.config("batcher", "admin_port", free_port().to_string());
            }
            let dir = tempfile::Builder::new()
                .prefix("lanes-test-")
                .tempdir()
                .expect("create temp dir");
            let config_path = dir.path().join("lanes.toml");
            std::fs::write(&config_path, builder.config_toml()).expect("write config file");
            let mut node = Node {
                child: None,
                rpc_port: free_port(),
                metrics_port: free_port(),
                datadir: dir.path().join("data"),
                config_path,
                log_path: dir.path().join("node.log"),
                dir: Some(dir),
                builder,
                starts: 0,
                log_shown: false,
            };
            match node.try_start() {
                Ok(()) => return node,
                Err(e) if attempt <= PORT_RETRIES && node.log().contains(PORT_TAKEN) => {
                    eprintln!(
                        "a port picked for the node was taken before it started; \
                         trying again on fresh ports ({e})\n{}",
                        node.log_tail(5)
                    );
                    node.log_shown = true;
                }
                Err(e) => node.fail_start(&e),
            }
        }
    }
}

/// Quotes `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A running `lanes node --dev` in its own temporary directory (data dir
/// `data/`, config `lanes.toml`, log `node.log`), on free ports.
///
/// Dropping it SIGKILLs the process; if the test is panicking, the log is
/// printed to stderr first.
#[derive(Debug)]
pub struct Node {
    child: Option<Child>,
    rpc_port: u16,
    metrics_port: u16,
    datadir: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    dir: Option<tempfile::TempDir>,
    builder: NodeBuilder,
    starts: u32,
    log_shown: bool,
}

impl Node {
    /// A node with default settings (see [`NodeBuilder::new`]).
    #[track_caller]
    pub fn start() -> Node {
        NodeBuilder::new().spawn()
    }

    /// Settings for a node.
    pub fn builder() -> NodeBuilder {
        NodeBuilder::new()
    }

    /// `http://127.0.0.1:<rpc port>`.
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc_port)
    }

    /// `ws://127.0.0.1:<rpc port>` (if the node serves WebSocket on the
    /// same port).
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.rpc_port)
    }

    /// `http://127.0.0.1:<metrics port>/metrics`.
    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.metrics_port)
    }

    /// The JSON-RPC port.
    pub fn rpc_port(&self) -> u16 {
        self.rpc_port
    }

    /// The metrics port.
    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    /// The `--datadir`.
    pub fn datadir(&self) -> &Path {
        &self.datadir
    }

    /// The generated `--config` file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The temporary directory holding data dir, config and log.
    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("temp dir present while the node exists")
            .path()
    }

    /// The file receiving the node's stdout and stderr (appended across
    /// restarts).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the node has logged so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still alive (reaps it if it exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Exit status if the process has exited, without waiting.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// One JSON-RPC call to this node (raw HTTP, bounded by
    /// [`HTTP_TIMEOUT`]).
    pub fn rpc(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        rpc_call(self.rpc_port, method, params)
    }

    /// Like [`Node::rpc`] but panics (with the node's log tail) on error.
    #[track_caller]
    pub fn rpc_ok(&self, method: &str, params: Value) -> Value {
        self.rpc(method, params)
            .unwrap_or_else(|e| panic!("{method} failed: {e}\n{}", self.log_tail(60)))
    }

    /// `GET /metrics` on the metrics port: status and body.
    pub fn metrics(&self) -> io::Result<(u16, String)> {
        http_request(self.metrics_port, "GET", "/metrics", None, HTTP_TIMEOUT)
            .map(|(s, b)| (s, String::from_utf8_lossy(&b).into_owned()))
    }

    /// `eth_blockNumber`.
    #[track_caller]
    pub fn block_number(&self) -> u64 {
        parse_u128(
            self.rpc_ok("eth_blockNumber", json!([]))
                .as_str()
                .expect("hex string"),
        ) as u64
    }

    /// Waits (bounded) until the head block is at least `number`.
    #[track_caller]
    pub fn wait_for_block(&self, number: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(n) = self.rpc("eth_blockNumber", json!([]))
                && n.as_str().is_some_and(|s| parse_u128(s) as u64 >= number)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "block {number} not reached within {timeout:?}\n{}",
                self.log_tail(60)
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `eth_chainId` answers; `Err` with a reason if the process
    /// exits first or `timeout` passes.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit_status() {
                return Err(format!("node exited during startup with {status}"));
            }
            let last_err = match self.rpc("eth_chainId", json!([])) {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "eth_chainId did not answer within {timeout:?}; last error: {last_err}"
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILLs the process and reaps it (no-op if not running).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits up to [`DEFAULT_SHUTDOWN_TIMEOUT`] for the exit
    /// status. Panics (after SIGKILL) if the node does not exit in time.
    #[track_caller]
    pub fn terminate(&mut self) -> ExitStatus {
        self.terminate_timeout(DEFAULT_SHUTDOWN_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.log_tail(100)))
    }

    /// SIGTERM, then waits up to `timeout`; on time-out SIGKILLs and returns
    /// `Err`. Panics if the node is not running.
    pub fn terminate_timeout(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let mut child = self.child.take().expect("terminate: node is not running");
        if let Ok(Some(status)) = child.try_wait() {
            return Ok(status);
        }
        // `kill` from procps/coreutils: std has no SIGTERM and the workspace
        // forbids unsafe code (so no libc::kill).
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(sent, Ok(s) if s.success()) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "could not send SIGTERM to {} ({sent:?}); killed",
                child.id()
            ));
        }
        match wait_timeout(&mut child, timeout) {
            Some(status) => Ok(status),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "node did not exit within {timeout:?} of SIGTERM; killed"
                ))
            }
        }
    }

    /// Starts the process again on the same data dir, config and ports (after
    /// [`Node::kill`] or [`Node::terminate`]; kills a running one first) and
    /// waits until it answers.
    #[track_caller]
    pub fn restart(&mut self) {
        self.kill();
        self.start_process();
    }

    /// The log from byte `from` on.
    fn log_since(&self, from: usize) -> String {
        let log = std::fs::read(&self.log_path).unwrap_or_default();
        String::from_utf8_lossy(log.get(from..).unwrap_or_default()).into_owned()
    }

    /// Panics with the reason and the log tail, the node killed.
    #[track_caller]
    fn fail_start(&mut self, reason: &str) -> ! {
        let tail = self.log_tail(200);
        self.kill();
        self.log_shown = true;
        panic!("lanes node did not become ready: {reason}\n{tail}");
    }

    /// The last `lines` lines of the log, labelled, for messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        let from = all.len().saturating_sub(lines);
        format!(
            "--- node log ({}, last {} of {} lines) ---\n{}\n--- end of node log ---",
            self.log_path.display(),
            all.len() - from,
            all.len(),
            all[from..].join("\n")
        )
    }

    /// The command line the node is started with.
    pub fn command(&self) -> Command {
        let b = &self.builder;
        let mut cmd = Command::new(lanes_bin());
        cmd.arg("node")
            .arg("--dev")
            .arg("--datadir")
            .arg(&self.datadir)
            .arg("--rpc.addr")
            .arg("127.0.0.1")
            .arg("--rpc.port")
            .arg(self.rpc_port.to_string())
            .arg("--metrics.port")
            .arg(self.metrics_port.to_string())
            .arg("--config")
            .arg(&self.config_path);
        if let Some(f) = &b.log_format {
            cmd.arg("--log.format").arg(f);
        }
        cmd.args(&b.args);
        // Hermetic: configuration keys from the caller's environment
        // (`LANES_SECTION__KEY`) must not leak into test nodes.
        for (k, _) in std::env::vars_os() {
            let name = k.to_string_lossy();
            if name.starts_with("LANES_") && name.contains("__") {
                cmd.env_remove(&k);
            }
        }
        // `.tools/bin` first on PATH: a dev node that starts its own L1 finds the pinned anvil.
        if let Some(bin) = soft_tools_bin() {
            let mut path = OsString::from(bin);
            if let Some(old) = std::env::var_os("PATH") {
                path.push(":");
                path.push(old);
            }
            cmd.env("PATH", path);
        }
        for (k, v) in &b.envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts the process on this node's ports and waits until it answers; a start that
    /// found one of its ports taken (see [`NodeBuilder::spawn`]) is tried again on the same
    /// ports after a pause, its lines cut from the log so that the log holds one start per
    /// [`Node::restart`].
    #[track_caller]
    fn start_process(&mut self) {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let from = std::fs::metadata(&self.log_path).map_or(0, |m| m.len());
            let Err(e) = self.try_start() else { return };
            let failed = self.log_since(from as usize);
            if attempt > PORT_RETRIES || !failed.contains(PORT_TAKEN) {
                self.fail_start(&e);
            }
            eprintln!(
                "a port of the node was taken when it restarted; trying again ({e}):\n{failed}"
            );
            if let Ok(log) = OpenOptions::new().write(true).open(&self.log_path) {
                let _ = log.set_len(from);
            }
            self.starts -= 1;
            thread::sleep(Duration::from_millis(500));
        }
    }

    /// One start: spawn, then wait until it answers or exits; killed on failure.
    fn try_start(&mut self) -> Result<(), String> {
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open node log file");
        let mut cmd = self.command();
        let _ = writeln!(
            log,
            "=== start #{}: {} ===",
            self.starts,
            describe_command(&cmd)
        );
        let err_log: File = log.try_clone().expect("clone log handle");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err_log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", lanes_bin().display()));
        self.child = Some(child);
        let result = self.wait_ready(self.builder.startup_timeout);
        if result.is_err() {
            self.kill();
        }
        result
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() && !self.log_shown {
            eprintln!("{}", self.log_tail(300));
        }
        if std::env::var_os("LANES_TEST_KEEP").is_some_and(|v| !v.is_empty() && v != "0")
            && let Some(dir) = self.dir.take()
        {
            let path = dir.keep();
            eprintln!("LANES_TEST_KEEP: node files kept in {}", path.display());
        }
        if let Some(dir) = self.dir.take() {
            remove_when_quiet(dir);
        }
    }
}

/// Removes a node's directory. A killed node's dev anvil outlives it briefly (its guard
/// SIGTERMs it when the node's pipe closes, and anvil then dumps its state into `data/l1`), so a
/// plain `TempDir` drop races those writes, fails half-way and leaks the whole directory.
fn remove_when_quiet(dir: tempfile::TempDir) {
    let path = dir.keep();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match std::fs::remove_dir_all(&path) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) if Instant::now() >= deadline => {
                eprintln!("could not remove {}: {e}", path.display());
                return;
            }
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The node's L1 URL, from its start-up log.
pub fn dev_l1_url(node: &Node) -> String {
    let log = node.log();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("dev L1 (anvil) running"))
        .unwrap_or_else(|| panic!("the dev node did not start anvil\n{}", node.log_tail(40)));
    let at = line.find("http://127.0.0.1:").unwrap();
    let url: String = line[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || ":/.".contains(*c))
        .collect();
    url
}

/// Runs `lanes derive` into a fresh directory; (head, hash, state root) as printed.
#[track_caller]
pub fn derive(l1_url: &str, rollup: &str, dir: &Path) -> (u64, String, String) {
    let out = run(
        std::process::Command::new(lanes_bin())
            .args([
                "derive",
                "--l1-rpc",
                l1_url,
                "--rollup",
                rollup,
                "--datadir",
            ])
            .arg(dir.join("derived"))
            .env("RUST_LOG", "warn"),
        Duration::from_secs(120),
    );
    let stdout = out.ok();
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {name} in `lanes derive` output:\n{stdout}"))
    };
    (
        field("head").parse().unwrap(),
        field("hash"),
        field("state root"),
    )
}

/// `text` without ANSI colour sequences (the log may be coloured).
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip up to and including the final letter of the sequence.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
