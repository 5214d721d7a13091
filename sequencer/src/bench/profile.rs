//! Where the node's time went: two scrapes of its Prometheus metrics, before and after the
//! timed phase, turned into time per transaction and per block for each pipeline stage.

use super::stats::NodeProfile;
use std::collections::BTreeMap;

/// A parsed exposition: `name{labels}` → value.
pub type Scrape = BTreeMap<String, f64>;

/// Parses the Prometheus text format (comments and malformed lines are skipped).
pub fn parse(text: &str) -> Scrape {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.trim().to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Fetches and parses `url`.
pub async fn scrape(url: &str) -> Option<Scrape> {
    let response = reqwest::get(url).await.ok()?;
    Some(parse(&response.text().await.ok()?))
}

/// The value of label `label` in a series name, e.g. `stage` in `x{stage="commit"}`.
fn label<'a>(series: &'a str, label: &str) -> Option<&'a str> {
    let start = series.find(&format!("{label}=\""))? + label.len() + 2;
    let end = series[start..].find('"')? + start;
    Some(&series[start..end])
}

/// What changed between `before` and `after`.
pub fn profile(before: &Scrape, after: &Scrape) -> NodeProfile {
    let delta = |series: &str| {
        after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
    };
    let included = delta("lanes_tx_included_total");
    let blocks = delta("lanes_block_interval_seconds_count");
    let mut profile = NodeProfile {
        included,
        blocks,
        ..Default::default()
    };
    for series in after.keys() {
        if series.starts_with("lanes_block_stage_duration_seconds_sum")
            && let Some(stage) = label(series, "stage")
        {
            let seconds = delta(series);
            if included > 0.0 {
                profile
                    .stage_us_per_tx
                    .insert(stage.to_string(), seconds * 1e6 / included);
            }
            let count = delta(&series.replace("_sum", "_count"));
            if count > 0.0 {
                profile
                    .stage_ms_per_block
                    .insert(stage.to_string(), seconds * 1e3 / count);
            }
        }
        if series.starts_with("lanes_rpc_request_duration_seconds_sum")
            && let Some(method) = label(series, "method")
        {
            profile
                .rpc_seconds
                .insert(method.to_string(), delta(series));
            profile
                .rpc_calls
                .insert(method.to_string(), delta(&series.replace("_sum", "_count")));
        }
    }
    if after.contains_key("process_cpu_seconds_total") {
        let cpu = delta("process_cpu_seconds_total");
        profile.cpu_seconds = Some(cpu);
        if included > 0.0 {
            profile.cpu_us_per_tx = Some(cpu * 1e6 / included);
        }
    }
    profile
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_times_per_transaction_and_block() {
        let before = parse(
            "# HELP x\nlanes_tx_included_total 100\n\
             lanes_block_stage_duration_seconds_sum{stage=\"execution\"} 1\n\
             lanes_block_stage_duration_seconds_count{stage=\"execution\"} 10\n\
             lanes_block_interval_seconds_count 10\nprocess_cpu_seconds_total 5\n",
        );
        let after = parse(
            "lanes_tx_included_total 1100\n\
             lanes_block_stage_duration_seconds_sum{stage=\"execution\"} 2\n\
             lanes_block_stage_duration_seconds_count{stage=\"execution\"} 20\n\
             lanes_block_interval_seconds_count 20\n\
             lanes_rpc_request_duration_seconds_sum{method=\"batch\"} 0.5\n\
             lanes_rpc_request_duration_seconds_count{method=\"batch\"} 4\n\
             process_cpu_seconds_total 7\n",
        );
        let p = profile(&before, &after);
        assert_eq!(p.included, 1000.0);
        assert_eq!(p.blocks, 10.0);
        assert_eq!(p.stage_us_per_tx["execution"], 1000.0);
        assert_eq!(p.stage_ms_per_block["execution"], 100.0);
        assert_eq!(p.rpc_seconds["batch"], 0.5);
        assert_eq!(p.rpc_calls["batch"], 4.0);
        assert_eq!(p.cpu_us_per_tx, Some(2000.0));
    }
}
