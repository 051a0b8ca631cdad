//! keel-bench's pictures (issue 16 item 7): one panel per measure — operations per second and
//! MB/s over time, each operation a line, and latency by percentile on log axes — with ticks,
//! units, gridlines and a legend, drawn with plotters as SVG or PNG (by the file's extension).
//! Several runs (result JSONs) overlay in one picture: keel against nginx, before against after.

use std::path::Path;

use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use serde_json::Value;

/// One line of a panel.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// What one run contributes to the picture.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub ops_per_sec: Vec<Series>,
    pub mb_per_sec: Vec<Series>,
    /// (nines, milliseconds): nines 1 is p90, 2 p99, 3 p99.9.
    pub latency: Vec<Series>,
}

/// The percentiles a latency line is drawn through, in nines (0 = p0 … 4 = p99.99).
pub const NINES_MAX: f64 = 4.0;

/// The quantile `nines` stands for: 1 - 10^-nines.
pub fn quantile_of(nines: f64) -> f64 {
    1.0 - 10f64.powf(-nines)
}

fn percentile_label(nines: f64) -> String {
    match nines.round() as i64 {
        0 => "p0".into(),
        1 => "p90".into(),
        2 => "p99".into(),
        3 => "p99.9".into(),
        4 => "p99.99".into(),
        _ => format!("p{:.4}", quantile_of(nines) * 100.0),
    }
}

/// Reads a keel-bench result JSON (`--json`): its per-operation timeline and latency curve.
/// `label` prefixes every line ("keel GET").
pub fn run_from_json(label: &str, doc: &Value) -> Result<Run, String> {
    let prefix = if label.is_empty() { String::new() } else { format!("{label} ") };
    let mut run = Run::default();
    let by_op = doc["timeline_by_op"].as_object().ok_or("no timeline_by_op (a result of an older keel-bench?)")?;
    for (op, samples) in by_op {
        let samples = samples.as_array().ok_or("timeline_by_op: not a list")?;
        let mut ops = Vec::new();
        let mut mbs = Vec::new();
        let mut before = 0.0;
        for s in samples {
            let (Some(t), Some(o), Some(m)) = (s["t"].as_f64(), s["ops_per_sec"].as_f64(), s["mb_per_sec"].as_f64())
            else {
                return Err(format!("timeline_by_op.{op}: a sample without t, ops_per_sec, mb_per_sec"));
            };
            // Steps: each interval's rate drawn across the interval, the first one included.
            ops.extend([(before, o), (t, o)]);
            mbs.extend([(before, m), (t, m)]);
            before = t;
        }
        run.ops_per_sec.push(Series { label: format!("{prefix}{op}"), points: ops });
        run.mb_per_sec.push(Series { label: format!("{prefix}{op}"), points: mbs });
    }
    if let Some(curves) = doc["latency_curve"].as_object() {
        for (op, pts) in curves {
            let pts = pts.as_array().ok_or("latency_curve: not a list")?;
            let points = pts
                .iter()
                .filter_map(|p| Some((p["nines"].as_f64()?, p["ms"].as_f64()?)))
                .filter(|(_, ms)| *ms > 0.0)
                .collect();
            run.latency.push(Series { label: format!("{prefix}{op}"), points });
        }
    }
    Ok(run)
}

/// Registers a TrueType font for the pictures' text: `KEEL_BENCH_FONT`, else the first of the
/// usual system fonts that exists.
pub fn load_font() -> Result<(), String> {
    const CANDIDATES: [&str; 5] = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    ];
    let path = match std::env::var("KEEL_BENCH_FONT") {
        Ok(p) => p,
        Err(_) => CANDIDATES.iter().find(|p| Path::new(p).exists()).map(|p| p.to_string()).ok_or(
            "no TrueType font for the picture's text: install fonts-dejavu-core or set KEEL_BENCH_FONT=FILE.ttf",
        )?,
    };
    let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| format!("{path}: not a font"))
}

/// Draws `runs` under `title` into `path` (`.svg` or `.png`).
pub fn draw(title: &str, runs: &[Run], path: &Path) -> Result<(), String> {
    let size = (1000, 1050);
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => panels(SVGBackend::new(path, size).into_drawing_area(), title, runs),
        Some("png") => panels(BitMapBackend::new(path, size).into_drawing_area(), title, runs),
        _ => Err(format!("{}: the picture's name must end in .svg or .png", path.display())),
    }
}

fn panels<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, title: &str, runs: &[Run]) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(err)?;
    let areas = root.split_evenly((3, 1));
    let flat = |pick: fn(&Run) -> &Vec<Series>| runs.iter().flat_map(pick).cloned().collect::<Vec<_>>();
    over_time(&areas[0], "Throughput", "operations per second", &flat(|r| &r.ops_per_sec))?;
    over_time(&areas[1], "Data rate", "MB/s", &flat(|r| &r.mb_per_sec))?;
    latency(&areas[2], &flat(|r| &r.latency))?;
    root.present().map_err(err)
}

fn color(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    COLORS[i % COLORS.len()]
}

fn over_time<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    unit: &str,
    series: &[Series],
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let tmax = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).fold(1.0, f64::max);
    let ymax = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(0.0, f64::max).max(1e-9) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..tmax, 0.0..ymax)
        .map_err(err)?;
    chart.configure_mesh().x_desc("time (s)").y_desc(unit).y_label_formatter(&|v| human(*v)).draw().map_err(err)?;
    lines(&mut chart, series, SeriesLabelPosition::LowerRight)
}

fn latency<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, series: &[Series]) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let values = || series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let lo = values().fold(f64::MAX, f64::min).clamp(1e-3, 1.0);
    let hi = values().fold(0.0, f64::max).max(lo * 10.0);
    let mut chart = ChartBuilder::on(area)
        .caption("Latency by percentile", ("sans-serif", 16))
        .margin(10)
        .margin_right(40)
        .x_label_area_size(40)
        .y_label_area_size(80)
        // Whole decades: every decade's ticks get labels.
        .build_cartesian_2d(0.0..NINES_MAX, (decade_below(lo) * 0.999..decade_above(hi) * 1.001).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms, log scale)")
        .x_labels(NINES_MAX as usize + 1)
        .x_label_formatter(&|n| percentile_label(*n))
        .y_labels(12)
        .y_label_formatter(&|v| human(*v))
        .draw()
        .map_err(err)?;
    lines(&mut chart, series, SeriesLabelPosition::UpperLeft)
}

/// Draws each series in its colour, with the legend at `at`.
fn lines<'a, DB: DrawingBackend + 'a, CT: CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<'a, DB, CT>,
    series: &[Series],
    at: SeriesLabelPosition,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    for (i, s) in series.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
            .map_err(err)?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

fn decade_below(v: f64) -> f64 {
    10f64.powf(v.log10().floor())
}

fn decade_above(v: f64) -> f64 {
    10f64.powf(v.log10().ceil())
}

/// A tick label: 1.5K, 2M, 0.25.
fn human(v: f64) -> String {
    let trim = |s: String| if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s };
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(format!("{:.2}", v / 1e6)))
    } else if a >= 1e3 {
        format!("{}K", trim(format!("{:.1}", v / 1e3)))
    } else if a >= 1.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        trim(format!("{v:.3}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_short_and_keep_their_units() {
        assert_eq!(human(0.0), "0");
        assert_eq!(human(0.25), "0.25");
        assert_eq!(human(12.0), "12");
        assert_eq!(human(1500.0), "1.5K");
        assert_eq!(human(80_000.0), "80K");
        assert_eq!(human(2_000_000.0), "2M");
        assert_eq!(percentile_label(2.0), "p99");
        assert_eq!(percentile_label(0.0), "p0");
    }

    #[test]
    fn a_timeline_becomes_steps_that_start_at_zero() {
        let doc = serde_json::json!({
            "timeline_by_op": {"GET": [{"t": 1.0, "ops_per_sec": 10.0, "mb_per_sec": 1.0},
                                        {"t": 2.0, "ops_per_sec": 20.0, "mb_per_sec": 2.0}]},
            "latency_curve": {"GET": [{"nines": 0.0, "ms": 0.5}, {"nines": 2.0, "ms": 3.0}]},
        });
        let run = run_from_json("keel", &doc).expect("parses");
        assert_eq!(run.ops_per_sec[0].label, "keel GET");
        assert_eq!(run.ops_per_sec[0].points, vec![(0.0, 10.0), (1.0, 10.0), (1.0, 20.0), (2.0, 20.0)]);
        assert_eq!(run.latency[0].points, vec![(0.0, 0.5), (2.0, 3.0)]);
        assert!(run_from_json("x", &serde_json::json!({"timeline": []})).is_err());
    }
}
