//! The table every scenario adds its rows to.

use std::time::Duration;

/// One figure and the baseline it is measured against.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub figure: String,
    pub value: f64,
    pub baseline: String,
    pub baseline_value: f64,
    pub unit: &'static str,
}

#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Row>,
}

impl Table {
    pub fn add(
        &mut self,
        scenario: &str,
        figure: impl Into<String>,
        value: f64,
        baseline: impl Into<String>,
        baseline_value: f64,
        unit: &'static str,
    ) {
        let row = Row {
            scenario: scenario.into(),
            figure: figure.into(),
            value,
            baseline: baseline.into(),
            baseline_value,
            unit,
        };
        eprintln!(
            "  {} · {}: {} {} (baseline {}: {} {})",
            row.scenario,
            row.figure,
            number(row.value),
            row.unit,
            row.baseline,
            number(row.baseline_value),
            row.unit
        );
        self.rows.push(row);
    }

    /// The rows `{figure}, p50` and `{figure}, p99` of the latencies
    /// `measured`, in milliseconds, against the same percentiles of
    /// `baseline_samples`.
    pub fn add_p50_p99(
        &mut self,
        scenario: &str,
        figure: &str,
        measured: &mut [Duration],
        baseline: &str,
        baseline_samples: &mut [Duration],
    ) {
        let measured = Percentiles::of(measured);
        let floor = Percentiles::of(baseline_samples);
        for (label, value, baseline_value) in [
            ("p50", measured.p50, floor.p50),
            ("p99", measured.p99, floor.p99),
        ] {
            let figure = format!("{figure}, {label}");
            self.add(scenario, figure, value, baseline, baseline_value, "ms");
        }
    }

    pub fn print(&self) {
        let header = [
            "scenario",
            "figure",
            "value",
            "baseline",
            "baseline value",
            "ratio",
        ];
        let cells: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.scenario.clone(),
                    r.figure.clone(),
                    format!("{} {}", number(r.value), r.unit),
                    r.baseline.clone(),
                    format!("{} {}", number(r.baseline_value), r.unit),
                    if r.baseline_value > 0.0 {
                        ratio(r.value / r.baseline_value)
                    } else {
                        "-".into()
                    },
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |row: &[String]| {
            let padded: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            println!("| {} |", padded.join(" | "));
        };
        line(&header.map(String::from));
        println!(
            "|{}|",
            widths
                .iter()
                .map(|w| "-".repeat(w + 2))
                .collect::<Vec<_>>()
                .join("|")
        );
        for row in &cells {
            line(row);
        }
    }
}

/// Three significant figures, without scientific notation.
pub fn number(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A ratio with enough decimals to tell small ones apart.
fn ratio(value: f64) -> String {
    if value >= 0.1 {
        format!("{value:.2}×")
    } else {
        format!("{value:.4}×")
    }
}

/// Latency percentiles of a sample, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
}

impl Percentiles {
    pub fn of(samples: &mut [Duration]) -> Self {
        samples.sort_unstable();
        let at = |q: f64| {
            if samples.is_empty() {
                return 0.0;
            }
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1].as_secs_f64() * 1000.0
        };
        Self {
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
        }
    }
}
