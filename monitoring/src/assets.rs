//! The shipped Grafana dashboard and Prometheus files, embedded, and the
//! PromQL plumbing the tests use to prove them against a live node.
//!
//! The files live next to this crate (`monitoring/grafana/...`,
//! `monitoring/prometheus/...`) so Grafana and Prometheus read them in
//! place; they are embedded here so tests in any crate check exactly the
//! text that ships.

use std::collections::BTreeSet;

/// The Grafana dashboard (`grafana/dashboards/lanes.json`), importable as is.
pub const DASHBOARD_JSON: &str = include_str!("../grafana/dashboards/lanes.json");
/// The Prometheus alert rules (`prometheus/alerts.yml`).
pub const ALERT_RULES_YAML: &str = include_str!("../prometheus/alerts.yml");
/// Unit tests of the alert rules for `promtool test rules`
/// (`prometheus/alerts_test.yml`).
pub const ALERT_TESTS_YAML: &str = include_str!("../prometheus/alerts_test.yml");
/// Prometheus scrape configuration for a local node (`prometheus/prometheus.yml`).
pub const PROMETHEUS_YAML: &str = include_str!("../prometheus/prometheus.yml");

/// Grafana's built-in interval variables and what the tests put in their place.
const GRAFANA_INTERVALS: [&str; 4] = [
    "${__rate_interval}",
    "$__rate_interval",
    "${__interval}",
    "$__interval",
];

/// One query of one dashboard panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelQuery {
    /// Title of the row the panel sits in (empty above the first row).
    pub row: String,
    /// The panel's title.
    pub panel: String,
    /// The target's `refId` (`A`, `B`, ...).
    pub ref_id: String,
    /// The PromQL, with Grafana variables as written in the dashboard.
    pub expr: String,
}

/// Every query of every panel in `dashboard` (a parsed dashboard JSON), in
/// display order, including panels nested in collapsed rows.
pub fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<PanelQuery> {
    let mut out = Vec::new();
    let mut row = String::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        if panel["type"] == "row" {
            row = title(panel);
            // A collapsed row carries its panels inside it.
            for nested in panel["panels"].as_array().into_iter().flatten() {
                push_targets(&mut out, &row, nested);
            }
        } else {
            push_targets(&mut out, &row, panel);
        }
    }
    out
}

fn title(panel: &serde_json::Value) -> String {
    panel["title"].as_str().unwrap_or_default().to_owned()
}

fn push_targets(out: &mut Vec<PanelQuery>, row: &str, panel: &serde_json::Value) {
    for target in panel["targets"].as_array().into_iter().flatten() {
        if let Some(expr) = target["expr"].as_str() {
            out.push(PanelQuery {
                row: row.to_owned(),
                panel: title(panel),
                ref_id: target["refId"].as_str().unwrap_or_default().to_owned(),
                expr: expr.to_owned(),
            });
        }
    }
}

/// `expr` with Grafana's interval variables (`$__rate_interval`,
/// `$__interval`) replaced by `window` (a PromQL duration such as `1m`), so
/// Prometheus itself can evaluate it.
pub fn expand_grafana_variables(expr: &str, window: &str) -> String {
    GRAFANA_INTERVALS
        .iter()
        .fold(expr.to_owned(), |e, var| e.replace(var, window))
}

/// The metric names a PromQL expression selects, as written (histogram
/// series keep their `_bucket`/`_sum`/`_count` suffix).
///
/// A small lexer, not a parser: it skips string literals, label matchers
/// (`{...}`), range and offset durations (`[...]`), number literals, label
/// lists after `by`/`without`/`on`/`ignoring`/`group_left`/`group_right`,
/// function names (an identifier followed by `(`) and keywords. What is left
/// are metric names. Good enough for the queries we write; Prometheus
/// checks the syntax.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    // Aggregations can be followed by `by (...)` rather than `(`.
    const KEYWORDS: [&str; 20] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
        "atan2",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_next_parens = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                i += 1;
                while i < chars.len() && chars[i] != close {
                    if chars[i] == '"' {
                        i += 1;
                        while i < chars.len() && chars[i] != '"' {
                            if chars[i] == '\\' {
                                i += 1;
                            }
                            i += 1;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' if skip_next_parens => {
                skip_next_parens = false;
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace());
                let lower = word.to_ascii_lowercase();
                if LABEL_LISTS.contains(&lower.as_str()) {
                    skip_next_parens = true;
                } else if next != Some(&'(') && !KEYWORDS.contains(&lower.as_str()) {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// `name` without a histogram series suffix (`_bucket`, `_sum`, `_count`),
/// i.e. the metric family a series belongs to, if `is_family` says the
/// shortened name is one.
pub fn family_of(name: &str, is_family: impl Fn(&str) -> bool) -> &str {
    if is_family(name) {
        return name;
    }
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix).filter(|base| is_family(base)))
        .unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(expr: &str) -> Vec<String> {
        metric_names(expr).into_iter().collect()
    }

    #[test]
    fn metric_names_skip_functions_labels_and_literals() {
        assert_eq!(
            names(
                r#"histogram_quantile(0.99, sum by (le, stage) (rate(lanes_block_stage_duration_seconds_bucket{stage!="x"}[$__rate_interval])))"#
            ),
            ["lanes_block_stage_duration_seconds_bucket"]
        );
        assert_eq!(
            names(
                "sum(rate(lanes_rpc_errors_total[5m])) / sum(rate(lanes_rpc_requests_total[5m])) > 0.1 and sum(rate(lanes_rpc_requests_total[5m])) > 1e-1"
            ),
            ["lanes_rpc_errors_total", "lanes_rpc_requests_total"]
        );
        assert_eq!(
            names(
                r#"lanes_mempool_transactions / on (pool) group_left lanes_mempool_capacity_transactions"#
            ),
            [
                "lanes_mempool_capacity_transactions",
                "lanes_mempool_transactions"
            ]
        );
        assert_eq!(
            names(r#"lanes_l1_account_balance_wei{account=~"batcher|sequencer"} < 1e17"#),
            ["lanes_l1_account_balance_wei"]
        );
        assert_eq!(names("max without (instance) (up) offset 5m"), ["up"]);
    }

    #[test]
    fn grafana_variables_expand() {
        assert_eq!(
            expand_grafana_variables("rate(x[$__rate_interval]) + rate(y[${__interval}])", "1m"),
            "rate(x[1m]) + rate(y[1m])"
        );
    }

    #[test]
    fn histogram_series_map_to_their_family() {
        let families = ["lanes_a_seconds", "lanes_c_count_thing"];
        let is_family = |n: &str| families.contains(&n);
        assert_eq!(
            family_of("lanes_a_seconds_bucket", is_family),
            "lanes_a_seconds"
        );
        assert_eq!(
            family_of("lanes_a_seconds_count", is_family),
            "lanes_a_seconds"
        );
        assert_eq!(
            family_of("lanes_c_count_thing", is_family),
            "lanes_c_count_thing"
        );
        assert_eq!(family_of("lanes_b_sum", is_family), "lanes_b_sum");
    }

    #[test]
    fn shipped_dashboard_has_queries() {
        let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD_JSON).unwrap();
        let queries = dashboard_queries(&dashboard);
        assert!(queries.len() > 20, "{}", queries.len());
        for q in &queries {
            assert!(!q.row.is_empty(), "panel {} sits in no row", q.panel);
            assert!(!metric_names(&q.expr).is_empty(), "{q:?} selects no metric");
        }
    }
}
