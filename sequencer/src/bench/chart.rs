//! `--chart FILE.svg`: throughput (sent and included per second) and latency (p50, p99 of
//! the transactions included in each second) over the run.

use super::{BenchError, stats::SeriesPoint};
use plotters::prelude::*;
use std::path::Path;

fn chart_error(e: impl std::fmt::Display) -> BenchError {
    BenchError::Output(format!("drawing the chart: {e}"))
}

/// Draws the two panels into an SVG file.
pub fn draw(path: &Path, title: &str, series: &[SeriesPoint]) -> Result<(), BenchError> {
    let root = SVGBackend::new(path, (1000, 720)).into_drawing_area();
    root.fill(&WHITE).map_err(chart_error)?;
    let root = root
        .titled(title, ("sans-serif", 20))
        .map_err(chart_error)?;
    let (top, bottom) = root.split_vertically(360);
    let t_max = series.iter().map(|p| p.t).fold(1.0, f64::max);

    let tps_max = series
        .iter()
        .map(|p| p.sent.max(p.included) as f64)
        .fold(10.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&top)
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .caption("throughput", ("sans-serif", 16))
        .build_cartesian_2d(0.0..t_max, 0.0..tps_max)
        .map_err(chart_error)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("tx/s")
        .draw()
        .map_err(chart_error)?;
    for (name, color, pick) in [
        (
            "sent/s",
            BLUE,
            (|p: &SeriesPoint| p.sent as f64) as fn(&SeriesPoint) -> f64,
        ),
        ("included/s", RED, |p: &SeriesPoint| p.included as f64),
    ] {
        chart
            .draw_series(LineSeries::new(
                series.iter().map(|p| (p.t, pick(p))),
                &color,
            ))
            .map_err(chart_error)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(chart_error)?;

    let latency_max = series.iter().map(|p| p.latency_p99_ms).fold(10.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .caption("send → inclusion latency", ("sans-serif", 16))
        .build_cartesian_2d(0.0..t_max, 0.0..latency_max)
        .map_err(chart_error)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("ms")
        .draw()
        .map_err(chart_error)?;
    let with_latency = || series.iter().filter(|p| p.included > 0);
    for (name, color, pick) in [
        (
            "p50",
            GREEN,
            (|p: &SeriesPoint| p.latency_p50_ms) as fn(&SeriesPoint) -> f64,
        ),
        ("p99", MAGENTA, |p: &SeriesPoint| p.latency_p99_ms),
    ] {
        chart
            .draw_series(LineSeries::new(
                with_latency().map(|p| (p.t, pick(p))),
                &color,
            ))
            .map_err(chart_error)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(chart_error)?;
    root.present().map_err(chart_error)?;
    Ok(())
}
