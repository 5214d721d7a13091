//! Structure of the shipped Grafana dashboard and provisioning: importable as is, with a
//! Prometheus data source variable, the rows operators expect, and queries Grafana and
//! Prometheus can both read. Whether the queries return data is proven against a live node by
//! `sequencer/tests/e2e_monitoring.rs`.

use std::collections::BTreeSet;
use std::path::Path;

use lanes_monitoring::assets::{self, DASHBOARD_JSON};
use serde_json::Value;

const ROWS: [&str; 6] = [
    "Throughput",
    "Latency",
    "Executor parallelism",
    "Mempool",
    "L1 and batcher",
    "Storage",
];

fn dashboard() -> Value {
    serde_json::from_str(DASHBOARD_JSON).expect("lanes.json is JSON")
}

fn panels(d: &Value) -> Vec<&Value> {
    d["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| std::iter::once(p).chain(p["panels"].as_array().into_iter().flatten()))
        .collect()
}

#[test]
fn importable_with_a_prometheus_datasource_variable() {
    let d = dashboard();
    // Import assigns the id; a fixed uid keeps links stable across imports.
    assert!(d["id"].is_null(), "id must be null for import");
    assert_eq!(d["uid"], "lanes-sequencer");
    assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(d["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    let vars = d["templating"]["list"].as_array().expect("templating");
    let ds: Vec<&Value> = vars.iter().filter(|v| v["name"] == "datasource").collect();
    assert_eq!(ds.len(), 1, "one datasource variable");
    assert_eq!(ds[0]["type"], "datasource");
    assert_eq!(ds[0]["query"], "prometheus");
}

#[test]
fn rows_in_order() {
    let d = dashboard();
    let rows: Vec<&str> = panels(&d)
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    assert_eq!(rows, ROWS);
}

#[test]
fn panels_use_the_variable_and_fit_the_grid() {
    let d = dashboard();
    let mut ids = BTreeSet::new();
    for p in panels(&d) {
        let title = p["title"].as_str().unwrap_or_default();
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "duplicate id at {title}"
        );
        let grid = &p["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(
            x + w <= 24 && w > 0 && grid["h"].as_u64().unwrap() > 0,
            "{title}: {grid}"
        );
        if p["type"] == "row" {
            continue;
        }
        assert!(
            p["description"].as_str().is_some_and(|s| !s.is_empty()),
            "{title} has no description"
        );
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        assert_eq!(p["datasource"]["type"], "prometheus", "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        let mut refs = BTreeSet::new();
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            assert!(
                refs.insert(t["refId"].as_str().unwrap()),
                "{title}: refId twice"
            );
        }
    }
}

#[test]
fn queries_use_only_grafana_interval_variables_and_known_metrics() {
    let queries = assets::dashboard_queries(&dashboard());
    assert!(queries.len() >= 40, "{}", queries.len());
    for q in &queries {
        let expanded = assets::expand_grafana_variables(&q.expr, "1m");
        assert!(
            !expanded.contains('$'),
            "{:?}: only $__rate_interval/$__interval may appear: {}",
            q.panel,
            q.expr
        );
        for name in assets::metric_names(&q.expr) {
            assert!(
                name.starts_with("lanes_") || name.starts_with("process_"),
                "{:?} uses {name}, which is neither a lanes nor a process metric",
                q.panel
            );
        }
    }
    // Every row shows something.
    for row in ROWS {
        assert!(queries.iter().any(|q| q.row == row), "row {row} is empty");
    }
}

#[test]
fn provisioning_points_at_the_shipped_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let provider =
        std::fs::read_to_string(root.join("grafana/provisioning/dashboards/lanes.yml")).unwrap();
    let path = provider
        .lines()
        .find_map(|l| l.trim().strip_prefix("path:"))
        .expect("provider path")
        .trim();
    let relative = path
        .strip_prefix("${LANES_MONITORING_DIR}/")
        .expect("path under $LANES_MONITORING_DIR");
    assert!(
        root.join(relative).join("lanes.json").is_file(),
        "{path} does not hold lanes.json"
    );
    let datasource =
        std::fs::read_to_string(root.join("grafana/provisioning/datasources/lanes.yml")).unwrap();
    assert!(datasource.contains("type: prometheus"), "{datasource}");
    // The data source's scrape interval hint matches prometheus.yml.
    let interval = |text: &str, key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("{key} missing"))
    };
    assert_eq!(
        interval(&datasource, "timeInterval:"),
        interval(assets::PROMETHEUS_YAML, "scrape_interval:")
    );
}
