//! `lanes bench` end to end: it starts its own dev node, deploys the ERC-20, funds its
//! senders, sends at a fixed rate, follows the blocks, and writes a report whose numbers
//! must add up (everything sent was accepted and included, latencies are ordered).

use serde_json::Value;
use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

#[test]
fn bench_spawn_dev_erc20_report_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let chart = dir.path().join("chart.svg");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lanes"))
        .args([
            "bench",
            "--spawn-dev",
            "--workload",
            "erc20",
            "--rate",
            "200",
        ])
        .args(["--duration", "3", "--senders", "100"])
        .arg("--report")
        .arg(&report)
        .arg("--chart")
        .arg(&chart)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("lanes bench did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        status.success(),
        "lanes bench failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("[   1s] sent"),
        "no progress line:\n{stderr}"
    );
    assert!(stdout.contains("latency ms"), "no summary:\n{stdout}");

    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["workload"], "erc20");
    assert_eq!(r["duration_s"], 3.0);
    let sent = r["sent"].as_u64().unwrap();
    // 200 tx/s for 3 s, released on a clock: all 600 go out.
    assert_eq!(sent, 600, "{r}");
    assert_eq!(r["accepted"], sent);
    assert_eq!(r["included"], sent, "not everything was included: {r}");
    assert_eq!(r["failed"], 0);
    assert_eq!(r["errors"].as_object().unwrap().len(), 0, "{}", r["errors"]);
    let tps = r["included_tps"].as_f64().unwrap();
    assert!(tps > 100.0 && tps <= 600.0, "included_tps {tps}");
    // ERC-20 transfers to fresh recipients cost at least 21,000 + a new slot each.
    assert!(r["gas_per_s"].as_f64().unwrap() > tps * 40_000.0, "{r}");

    let l = &r["latency_ms"];
    let (p50, p90, p99, max) = (
        l["p50"].as_f64().unwrap(),
        l["p90"].as_f64().unwrap(),
        l["p99"].as_f64().unwrap(),
        l["max"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0, "{l}");
    assert!(p50 <= p90 && p90 <= p99 && p99 <= max, "{l}");
    assert_eq!(l["count"], sent);

    let series = r["series"].as_array().unwrap();
    assert!(series.len() >= 3, "{series:?}");
    let series_sent: u64 = series.iter().map(|p| p["sent"].as_u64().unwrap()).sum();
    assert_eq!(series_sent, sent);
    let series_included: u64 = series.iter().map(|p| p["included"].as_u64().unwrap()).sum();
    assert_eq!(series_included, sent);
    // The dev node serves txpool_status.
    assert!(series[0]["pool_pending"].is_u64(), "{}", series[0]);
    let blocks = r["blocks"].as_array().unwrap();
    let ours: u64 = blocks.iter().map(|b| b["ours"].as_u64().unwrap()).sum();
    assert_eq!(ours, sent);
    // Stage times came from the spawned node's metrics.
    let stages = r["node_profile"]["stage_us_per_tx"].as_object().unwrap();
    assert!(stages.contains_key("execution"), "{stages:?}");

    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("throughput") && svg.contains("<polyline"));
}

#[test]
fn bench_refuses_a_bad_key_without_echoing_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_lanes"))
        .args(["bench", "--rpc", "http://127.0.0.1:1", "--duration", "1"])
        .env("LANES_BENCH_KEY", "0xdeadbeefnothex")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("funding key"), "{stderr}");
    assert!(!stderr.contains("deadbeef"), "the key leaked: {stderr}");
}
