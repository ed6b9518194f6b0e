//! PNG charts of a run (plotters, bitmap backend). Text is drawn with ab_glyph from a system TTF
//! (DejaVu Sans, Debian's fonts-dejavu-core), so no fontconfig is needed.
use crate::Results;
use anyhow::{Context, Result};
use plotters::prelude::*;
use std::path::Path;

const FONTS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

fn register_font() -> Result<()> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let path = FONTS
            .iter()
            .find(|p| Path::new(p).is_file())
            .ok_or_else(|| format!("no DejaVu Sans font found (looked in {})", FONTS.join(", ")))?;
        let bytes: &'static [u8] = Box::leak(
            std::fs::read(path)
                .map_err(|e| e.to_string())?
                .into_boxed_slice(),
        );
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| "the font file could not be parsed".to_owned())
    })
    .clone()
    .map_err(|e| anyhow::anyhow!(e))
}

/// A figure of a strategy's summary, compared as a ratio to the baseline's.
type Figure = fn(&crate::Summary) -> f64;

/// One colour per strategy (six strategies: no two share one).
const COLORS: [RGBColor; 6] = [
    RGBColor(90, 90, 90),
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
];

/// Draws throughput.png, latency.png and overhead.png into `out`; returns their file names.
pub fn draw(r: &Results, out: &Path) -> Result<Vec<String>> {
    register_font()?;
    let ran: Vec<_> = r
        .strategies
        .iter()
        .filter(|s| s.summary.is_some())
        .collect();
    anyhow::ensure!(!ran.is_empty(), "no strategy ran");

    let file = out.join("throughput.png");
    {
        let root = BitMapBackend::new(&file, (800, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let max = ran
            .iter()
            .map(|s| s.summary.as_ref().map_or(0.0, |x| x.saturation_rps))
            .fold(0.0, f64::max)
            * 1.15;
        let mut chart = ChartBuilder::on(&root)
            .caption("Saturation throughput (req/s, gateway)", ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(
                (0..ran.len().saturating_sub(1)).into_segmented(),
                0.0..max.max(1.0),
            )?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => ran.get(*i).map_or(String::new(), |s| s.name.clone()),
                _ => String::new(),
            })
            .draw()?;
        for (i, s) in ran.iter().enumerate() {
            let v = s.summary.as_ref().map_or(0.0, |x| x.saturation_rps);
            let c = COLORS[i % COLORS.len()];
            chart.draw_series(std::iter::once(Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), v),
                ],
                c.filled(),
            )))?;
        }
        root.present().context("cannot write throughput.png")?;
    }

    let file2 = out.join("latency.png");
    {
        let root = BitMapBackend::new(&file2, (800, 460)).into_drawing_area();
        root.fill(&WHITE)?;
        // x: percentile on a "nines" scale, −log10(1 − p); y: latency in ms (log).
        let nines = |p: f64| -(1.0 - (p / 100.0).min(0.99999)).log10();
        let max_ms = ran
            .iter()
            .flat_map(|s| s.latency_curve.iter().map(|&(_, us)| us as f64 / 1000.0))
            .fold(0.01, f64::max)
            * 1.5;
        let min_ms = ran
            .iter()
            .flat_map(|s| s.latency_curve.iter().map(|&(_, us)| us as f64 / 1000.0))
            .fold(f64::MAX, f64::min)
            .max(0.001)
            / 1.5;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Latency at {:.0} req/s (open loop)", r.rate),
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..4.0, (min_ms..max_ms).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .x_labels(5)
            .y_desc("ms")
            .x_label_formatter(&|x: &f64| {
                let p = format!("{:.3}", 100.0 - 100.0 * 10f64.powf(-*x));
                format!("p{}", p.trim_end_matches('0').trim_end_matches('.'))
            })
            .draw()?;
        for (i, s) in ran.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            let pts: Vec<(f64, f64)> = s
                .latency_curve
                .iter()
                .filter(|(p, _)| *p < 100.0)
                .map(|&(p, us)| (nines(p), (us as f64 / 1000.0).max(min_ms)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
        root.present().context("cannot write latency.png")?;
    }
    let file3 = out.join("overhead.png");
    let base = ran
        .iter()
        .find(|s| s.strategy == crate::Strategy::Baseline)
        .and_then(|s| s.summary.as_ref())
        .context("the baseline did not run")?;
    {
        // Grouped bars: one group per figure, one bar per instrumented strategy, ratio to baseline.
        let others: Vec<_> = ran
            .iter()
            .filter(|s| s.strategy != crate::Strategy::Baseline)
            .collect();
        let figures: [(&str, Figure); 6] = [
            ("1/throughput", |x| 1.0 / x.saturation_rps.max(1e-9)),
            ("p50", |x| x.p50_us as f64),
            ("p99", |x| x.p99_us as f64),
            ("CPU/req", |x| {
                x.target_cpu_us_per_req + x.agent_cpu_us_per_req.unwrap_or(0.0)
            }),
            ("bytes/req", |x| x.alloc_bytes_per_req),
            ("allocs/req", |x| x.alloc_objects_per_req),
        ];
        let ratios: Vec<Vec<f64>> = others
            .iter()
            .map(|s| {
                figures
                    .iter()
                    .map(|(_, f)| s.summary.as_ref().map_or(0.0, |x| f(x) / f(base).max(1e-9)))
                    .collect()
            })
            .collect();
        let max = ratios.iter().flatten().cloned().fold(1.0, f64::max) * 1.15;
        let root = BitMapBackend::new(&file3, (900, 460)).into_drawing_area();
        root.fill(&WHITE)?;
        let n = others.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Overhead vs baseline (ratio, same run; 1 = no overhead)",
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..figures.len() as f64, 0.0..max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(figures.len() * 2 + 1)
            .x_label_formatter(&|x: &f64| {
                let i = x.floor() as usize;
                if (x - x.floor() - 0.5).abs() < 0.01 {
                    figures.get(i).map_or(String::new(), |f| f.0.to_owned())
                } else {
                    String::new()
                }
            })
            .draw()?;
        for (k, (s, rs)) in others.iter().zip(&ratios).enumerate() {
            let c = COLORS[(k + 1) % COLORS.len()];
            let w = 0.8 / n;
            chart
                .draw_series(rs.iter().enumerate().map(|(i, &v)| {
                    let x0 = i as f64 + 0.1 + k as f64 * w;
                    Rectangle::new([(x0, 0.0), (x0 + w * 0.9, v)], c.filled())
                }))?
                .label(s.name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], c.filled()));
        }
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 1.0), (figures.len() as f64, 1.0)],
            BLACK.stroke_width(1),
        )))?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        root.present().context("cannot write overhead.png")?;
    }
    Ok(vec![
        "throughput.png".into(),
        "latency.png".into(),
        "overhead.png".into(),
    ])
}
