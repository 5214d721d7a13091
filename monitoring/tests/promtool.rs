//! `promtool` checks of the shipped Prometheus files: the scrape configuration (which also
//! loads the rule file), the alert rules, and the rules' unit tests (`alerts_test.yml`), which
//! show every alert firing on its condition and quiet just short of it.
//!
//! promtool comes with Debian's `prometheus` package (`/usr/bin/promtool`); set
//! `LANES_PROMTOOL_BIN` to use another. Without it these tests say so and pass.

use std::path::{Path, PathBuf};
use std::process::Command;

fn promtool() -> Option<PathBuf> {
    let path = std::env::var_os("LANES_PROMTOOL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/promtool"));
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: promtool not found at {} (apt-get install prometheus, or set \
             LANES_PROMTOOL_BIN); the Prometheus files were not checked",
            path.display()
        );
        None
    }
}

fn prometheus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("prometheus")
}

/// Runs promtool with `args` in the prometheus/ folder; returns its combined output and
/// panics with it if promtool fails.
fn run(promtool: &Path, args: &[&str]) -> String {
    let output = Command::new(promtool)
        .args(args)
        .current_dir(prometheus_dir())
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "promtool {} failed:\n{text}",
        args.join(" ")
    );
    text
}

/// Alert names in a rule file, from its `- alert: Name` lines.
fn alert_names(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|n| n.trim().to_owned())
        .collect()
}

#[test]
fn config_is_valid_and_loads_the_rules() {
    let Some(promtool) = promtool() else { return };
    let out = run(&promtool, &["check", "config", "prometheus.yml"]);
    assert!(out.contains("1 rule files found"), "{out}");
}

#[test]
fn rules_are_valid() {
    let Some(promtool) = promtool() else { return };
    let out = run(&promtool, &["check", "rules", "alerts.yml"]);
    let names = alert_names(lanes_monitoring::assets::ALERT_RULES_YAML);
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", names.len())),
        "{out}"
    );
}

#[test]
fn rule_unit_tests_pass() {
    let Some(promtool) = promtool() else { return };
    let out = run(&promtool, &["test", "rules", "alerts_test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn every_alert_is_unit_tested_and_the_required_ones_exist() {
    let names = alert_names(lanes_monitoring::assets::ALERT_RULES_YAML);
    for required in [
        "LanesNoNewBlock",
        "LanesBatchPostingLag",
        "LanesL1BalanceLow",
        "LanesRpcErrorRateHigh",
        "LanesMempoolNearFull",
        "LanesL1Unreachable",
    ] {
        assert!(names.iter().any(|n| n == required), "{required} missing");
    }
    let tests = lanes_monitoring::assets::ALERT_TESTS_YAML;
    for name in &names {
        assert!(
            tests.contains(&format!("alertname: {name}\n")),
            "alert {name} has no test in alerts_test.yml"
        );
        // Firing, not only staying quiet: some test of it expects alerts.
        let fires = tests
            .split("alertname: ")
            .skip(1)
            .any(|t| t.starts_with(&format!("{name}\n")) && t.contains("exp_labels"));
        assert!(fires, "no test shows {name} firing");
    }
}
