//! Plots and tables through the binary: a sweep plot keeps its range to the models that did not
//! diverge and groups its legend by colour and stroke; train's plot has a linear epoch axis, a
//! legend beside the data and an accuracy panel; bench batch-size marks its measured sizes and
//! target and plots like with like; tables print extreme losses readably and CSV plain numbers.

mod common;

use common::binary::ok;

/// One `<text>` element of an SVG.
#[derive(Debug)]
struct Text {
    x: f64,
    y: f64,
    anchor: String,
    dy: String,
    text: String,
}

impl Text {
    fn number(&self) -> Option<f64> {
        self.text.parse().ok()
    }

    /// A y-axis tick label: right-aligned, centred on its tick.
    fn is_y_tick(&self) -> bool {
        self.anchor == "end" && self.dy == "0.5ex" && self.number().is_some()
    }

    /// An x-axis tick label: centred under its tick.
    fn is_x_tick(&self) -> bool {
        self.anchor == "middle" && self.dy == "0.76em" && self.number().is_some()
    }
}

fn texts(svg: &str) -> Vec<Text> {
    svg.split("<text ")
        .skip(1)
        .map(|chunk| {
            let (attrs, rest) = chunk.split_once('>').unwrap();
            let attrs = format!(" {attrs}");
            let attr = |name: &str| {
                attrs
                    .split(&format!(" {name}=\""))
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or_default()
                    .to_string()
            };
            Text {
                x: attr("x").parse().unwrap(),
                y: attr("y").parse().unwrap(),
                anchor: attr("text-anchor"),
                dy: attr("dy"),
                text: rest.split("</text>").next().unwrap().trim().to_string(),
            }
        })
        .collect()
}

/// SGD on the digits at three learning rates and two momenta, two restarts each; lr 3 climbs
/// past 1e15 (the divergence threshold is off) before its loss stops being finite.
const SWEEP: &[&str] = &[
    "sweep",
    "--dataset",
    "digits",
    "--standardize",
    "--layers",
    "64,16,10",
    "--optimizer",
    "sgd",
    "--lr",
    "1e-2,1e-1,3",
    "--momentum",
    "0,0.9",
    "--restarts",
    "2",
    "--epochs",
    "4",
    "--log-every",
    "10",
    "--divergence-threshold",
    "0",
    "--device",
    "cpu",
    "--quiet",
];

#[test]
fn sweep_plot_keeps_the_range_to_finite_models_and_has_one_legend_entry_per_colour_and_stroke() {
    let dir = tempfile::tempdir().unwrap();
    for validation in [true, false] {
        let split: &[&str] = if validation {
            &["--val-split", "0.2"]
        } else {
            &[]
        };
        let args = [SWEEP, split, &["--format", "json", "--plot", "s.svg"]].concat();
        let report: serde_json::Value = serde_json::from_str(&ok(&args, dir.path())).unwrap();
        let models = report["models"].as_array().unwrap();
        // What the plot shows: validation loss per epoch with validation data, else the curve.
        let shown = |m: &serde_json::Value| -> Vec<f64> {
            if validation {
                let epochs = m["epochs"].as_array().unwrap();
                epochs
                    .iter()
                    .filter_map(|e| e["val_loss"].as_f64())
                    .collect()
            } else {
                let curve = m["curve"].as_array().unwrap();
                curve.iter().filter_map(|p| p[1].as_f64()).collect()
            }
        };
        let (diverged, finite): (Vec<_>, Vec<_>) =
            models.iter().partition(|m| !m["diverged"].is_null());
        assert_eq!(diverged.len(), 4, "lr 3 diverges: {report}");
        let highest_diverged = diverged.iter().flat_map(|m| shown(m)).fold(0.0, f64::max);
        assert!(highest_diverged > 1e15, "{highest_diverged}");
        let finite: Vec<f64> = finite.iter().flat_map(|m| shown(m)).collect();
        let (lo, hi) = finite
            .iter()
            .fold((f64::MAX, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));

        let svg = std::fs::read_to_string(dir.path().join("s.svg")).unwrap();
        let texts = texts(&svg);
        let y_ticks: Vec<f64> = texts
            .iter()
            .filter(|t| t.is_y_tick())
            .filter_map(Text::number)
            .collect();
        assert!(y_ticks.len() >= 3, "{y_ticks:?}");
        for t in &y_ticks {
            assert!(
                *t >= lo / 3.0 && *t <= hi * 3.0,
                "a y tick at {t} outside the finite models' {lo}..{hi}"
            );
        }
        let which = if validation {
            "validation loss after each epoch, log scale"
        } else {
            "training loss (mean between read-backs), log scale"
        };
        assert!(texts.iter().any(|t| t.text == which), "{which}");
        // One entry per learning rate and per momentum, not one per model.
        let entries = |prefix: &str| texts.iter().filter(|t| t.text.starts_with(prefix)).count();
        assert_eq!(entries("lr "), 3);
        assert_eq!(entries("momentum "), 2);
        assert_eq!(entries("diverged (4 of 12)"), 1);
        assert_eq!(entries("best: model"), 1);
        assert!(
            !svg.contains("seed=0 (diverged"),
            "no legend entry per model"
        );
        // The legend sits to the right of the data.
        let right_of_data = texts
            .iter()
            .filter(|t| t.is_x_tick())
            .map(|t| t.x)
            .fold(0.0, f64::max);
        let lr_entry = texts.iter().find(|t| t.text == "lr 3").unwrap();
        assert!(
            lr_entry.x > right_of_data,
            "{lr_entry:?} left of {right_of_data}"
        );
    }
}

#[test]
fn sweep_table_prints_huge_and_tiny_losses_in_scientific_notation() {
    let dir = tempfile::tempdir().unwrap();
    let table = ok(SWEEP, dir.path());
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 13, "{table}");
    for line in &lines[1..] {
        for cell in line.split_whitespace() {
            assert!(
                cell.len() <= 12,
                "a cell of {} characters: {line}",
                cell.len()
            );
        }
    }
    // The models at lr 3 diverged at their read-back with huge losses recorded before it.
    let huge: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("diverged at step"))
        .collect();
    assert_eq!(huge.len(), 4, "{table}");
    for line in huge {
        let loss = line.split_whitespace().nth(4).unwrap();
        assert!(
            loss.contains('e') && loss.parse::<f64>().unwrap() > 1e5,
            "{line}"
        );
    }

    // y = 2x + 1 fitted exactly: a training loss far below 1e-5 is not printed as 0.00000.
    let csv: String = std::iter::once("x,y".to_string())
        .chain((0..64).map(|i| {
            let x = (i as f64 - 32.0) / 16.0;
            format!("{x},{}", 2.0 * x + 1.0)
        }))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.path().join("line.csv"), csv).unwrap();
    let table = ok(
        &[
            "sweep",
            "--data",
            "line.csv",
            "--target-column",
            "y",
            "--layers",
            "1,1",
            "--loss",
            "mse",
            "--optimizer",
            "sgd",
            "--lr",
            "0.3",
            "--epochs",
            "30",
            "--device",
            "cpu",
            "--quiet",
        ],
        dir.path(),
    );
    let row = table.lines().nth(1).unwrap();
    let loss = row.split_whitespace().nth(3).unwrap();
    assert!(
        loss.contains('e') && loss.parse::<f64>().unwrap() < 1e-5,
        "{table}"
    );
    assert!(!table.contains("0.00000"), "{table}");
}

#[test]
fn train_plot_has_a_linear_epoch_axis_a_legend_beside_the_data_and_an_accuracy_panel() {
    let dir = tempfile::tempdir().unwrap();
    let run = |dataset: &str, epochs: &str, plot: &str| {
        ok(
            &[
                "train",
                "--dataset",
                dataset,
                "--val-split",
                "0.2",
                "--epochs",
                epochs,
                "--plot",
                plot,
                "--device",
                "cpu",
                "--quiet",
            ],
            dir.path(),
        );
        texts(&std::fs::read_to_string(dir.path().join(plot)).unwrap())
    };
    let texts = run("blobs", "60", "blobs.svg");
    // Two panels, each with the epoch axis ticked every ten epochs.
    let x_ticks: Vec<String> = texts
        .iter()
        .filter(|t| t.is_x_tick())
        .map(|t| t.text.clone())
        .collect();
    let every_ten = ["0", "10", "20", "30", "40", "50", "60"];
    assert_eq!(x_ticks, [every_ten, every_ten].concat(), "{texts:?}");
    for label in [
        "train loss",
        "validation loss",
        "train accuracy",
        "validation accuracy",
        "accuracy (% of rows)",
    ] {
        let entry = texts.iter().find(|t| t.text == label);
        assert!(entry.is_some(), "the plot lacks {label:?}");
    }
    let right_of_data = texts
        .iter()
        .filter(|t| t.is_x_tick())
        .map(|t| t.x)
        .fold(0.0, f64::max);
    for entry in ["train loss", "validation accuracy"] {
        let t = texts.iter().find(|t| t.text == entry).unwrap();
        assert!(t.x > right_of_data, "{t:?} over the data");
    }
    let accuracy: Vec<f64> = texts
        .iter()
        .filter(|t| t.is_y_tick() && t.y > 480.0)
        .filter_map(Text::number)
        .collect();
    assert!(
        accuracy.iter().all(|a| (0.0..=100.0).contains(a)),
        "{accuracy:?}"
    );

    // A regression loss has no accuracy, so no second panel.
    let texts = run("linear", "5", "linear.svg");
    assert!(texts.iter().all(|t| !t.text.contains("accuracy")));
    let x_ticks: Vec<&str> = texts
        .iter()
        .filter(|t| t.is_x_tick())
        .map(|t| t.text.as_str())
        .collect();
    assert_eq!(x_ticks, ["1", "2", "3", "4", "5"]);
}

/// The batch-size benchmark on both engines: 1,000 rows of blobs at batches of 25, 100 and
/// 250, three epochs each.
const BENCH: &[&str] = &[
    "bench",
    "batch-size",
    "--dataset",
    "blobs",
    "--layers",
    "8,16,4",
    "--batch-sizes",
    "25,100,250",
    "--device",
    "gpu,cpu",
    "--steps",
    "4",
    "--warmup-steps",
    "1",
    "--epochs",
    "3",
    "--target-loss",
    "0.9",
];

#[test]
fn bench_batch_size_plot_marks_the_sizes_names_both_engines_and_draws_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let json: serde_json::Value = serde_json::from_str(&ok(
        &[BENCH, &["--format", "json", "--plot", "b.svg"]].concat(),
        dir.path(),
    ))
    .unwrap();
    // The curve holds the read-backs within epochs only, never an epoch's mean after them: at
    // 40 batches an epoch read back every 10 steps, 10 every 2 and 4 every step, each epoch
    // has 3, 4 and 3 read-backs before its last step.
    for r in json["results"].as_array().unwrap() {
        let expected = match r["batch_size"].as_u64().unwrap() {
            25 | 250 => 9,
            100 => 12,
            other => panic!("batch {other}"),
        };
        let curve = r["loss_curve"].as_array().unwrap();
        assert_eq!(curve.len(), expected, "{r}");
        let times: Vec<f64> = curve.iter().map(|p| p[0].as_f64().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    }
    let svg = std::fs::read_to_string(dir.path().join("b.svg")).unwrap();
    let texts = texts(&svg);
    let throughput_x: Vec<&str> = texts
        .iter()
        .filter(|t| t.is_x_tick() && t.y < 480.0)
        .map(|t| t.text.as_str())
        .collect();
    assert_eq!(
        throughput_x,
        ["25", "100", "250"],
        "ticks at the measured sizes"
    );
    let title = texts
        .iter()
        .find(|t| t.text.starts_with("throughput against batch size"))
        .unwrap();
    assert!(
        title.text.contains("gpu (") && title.text.ends_with(" and cpu"),
        "{title:?}"
    );
    // The target is a labelled line on the loss chart and an entry of its legend.
    assert_eq!(
        texts.iter().filter(|t| t.text == "target loss 0.9").count(),
        2
    );
    for entry in ["batch 25", "batch 100", "batch 250", "cpu"] {
        assert!(texts.iter().any(|t| t.text == entry), "no legend {entry:?}");
    }
}

#[test]
fn bench_tables_explain_their_columns_and_csv_cells_are_plain_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let table = ok(BENCH, dir.path());
    let notes = table.split("\ncolumns:\n").nth(1).expect("a column legend");
    for column in ["samples/s", "step ms", "matmul %", "s to target", "-"] {
        assert!(
            notes.lines().any(|l| l.trim_start().starts_with(column)),
            "no note on {column:?}:\n{notes}"
        );
    }
    assert!(notes.contains("run back to back") && notes.contains("waited on"));
    // The step time and the throughput describe the same run: batch / step ms = samples/s.
    let csv = ok(&[BENCH, &["--format", "csv"][..]].concat(), dir.path());
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let column = |name: &str| rows[0].iter().position(|c| *c == name).unwrap();
    for row in &rows[1..] {
        let value = |name: &str| row[column(name)].parse::<f64>().unwrap();
        let (step_ms, implied) = (value("step ms"), 1e3 * value("batch") / value("step ms"));
        // Within what printing step ms to three decimals allows.
        let rounding = 0.0005 / step_ms;
        assert!(
            (implied / value("samples/s") - 1.0).abs() < 0.01 + rounding,
            "{csv}"
        );
    }

    let csv = ok(&[BENCH, &["--format", "csv"]].concat(), dir.path());
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let header = &rows[0];
    assert_eq!(rows.len(), 7, "{csv}");
    for row in &rows[1..] {
        assert_eq!(row.len(), header.len(), "{csv}");
        for (name, cell) in header.iter().zip(row) {
            if *name == "engine" || *name == "timing" {
                continue;
            }
            assert!(
                cell.is_empty() || cell.parse::<f64>().is_ok(),
                "{name} holds {cell:?}, not a plain number"
            );
        }
    }

    let gemm = ok(
        &[
            "bench",
            "gemm",
            "--device",
            "gpu",
            "--sizes",
            "64",
            "--seconds",
            "0.05",
            "--format",
            "csv",
        ],
        dir.path(),
    );
    let lines: Vec<&str> = gemm.lines().collect();
    assert!(lines[0].contains("gpu/ndarray %"), "{gemm}");
    for (name, cell) in lines[0].split(',').zip(lines[1].split(',')) {
        if name != "tile" {
            assert!(cell.parse::<f64>().is_ok(), "{name} holds {cell:?}");
        }
    }
}
