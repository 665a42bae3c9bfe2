//! The page of `convkit chapter8`: every workflow of the chapter beside the book's figure,
//! with its training curves, as one self-contained HTML file (images inlined), and the same
//! numbers as JSON ([`Chapter8Summary`] serialises to `chapter8.json`).

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::html::{escape, png_data_uri};
use super::machine::Machine;

/// What the book reports for a workflow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BookFigure {
    /// The split the book measured on: `test` or `validation`.
    pub split: String,
    /// The accuracy it reports, as a fraction (the lower end when it gives a range).
    pub accuracy: f64,
    /// The upper end of the range, when it gives one.
    pub accuracy_to: Option<f64>,
    /// The figure as the book puts it, with its notes: `about 83.5% test (3rd ed.: 83.9%)`.
    pub text: String,
    /// The epochs the book trains for.
    pub epochs: usize,
}

/// Where a workflow of the page stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowStatus {
    /// Trained from its first epoch by this invocation.
    Trained,
    /// Continued from its saved state by this invocation.
    Resumed,
    /// Finished earlier: its run folder was kept as it was.
    Kept,
    /// Stopped (Ctrl-C) during this invocation: the next one continues it.
    Interrupted,
    /// Not run yet.
    Pending,
}

impl WorkflowStatus {
    /// The status in a few words, for the page.
    pub fn describe(self) -> &'static str {
        match self {
            WorkflowStatus::Trained => "trained",
            WorkflowStatus::Resumed => "resumed and finished",
            WorkflowStatus::Kept => "finished earlier, kept",
            WorkflowStatus::Interrupted => "interrupted, continues on the next call",
            WorkflowStatus::Pending => "not run yet",
        }
    }

    /// Whether the workflow's numbers are final.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            WorkflowStatus::Trained | WorkflowStatus::Resumed | WorkflowStatus::Kept
        )
    }
}

/// A kept model measured again with test-time augmentation by horizontal flip: each image
/// and its mirror image classified, their class probabilities averaged.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlipTtaScore {
    /// Accuracy on the workflow's split, as a fraction.
    pub accuracy: f64,
    /// Mean loss of the averaged probabilities.
    pub loss: f64,
    /// Seconds the measurement took (both views of every image).
    pub seconds: f64,
}

/// An image shown under a workflow.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Figure {
    /// What it shows.
    pub caption: String,
    /// The PNG file it was read from.
    pub path: PathBuf,
    /// The PNG's bytes, inlined into the page (`None`: the file could not be read, and the
    /// page says so).
    #[serde(skip)]
    pub png: Option<Vec<u8>>,
}

/// One workflow's numbers, as the page shows them and `chapter8.json` holds them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkflowResult {
    /// Short name, also the run folder's name: `mnist`, `scratch`, ...
    pub name: String,
    /// Title, for people: `MNIST convnet`.
    pub title: String,
    /// What it trains, in a sentence.
    pub description: String,
    /// Where it stands.
    pub status: WorkflowStatus,
    /// Its run folder.
    pub run_dir: PathBuf,
    /// The split `accuracy` and `loss` were measured on: `test` or `validation`.
    pub split: String,
    /// Accuracy of the kept checkpoint on `split`, as a fraction.
    pub accuracy: Option<f64>,
    /// Mean loss of the kept checkpoint on `split`.
    pub loss: Option<f64>,
    /// Images in `split`.
    pub count: Option<usize>,
    /// Epochs run.
    pub epochs: Option<usize>,
    /// Epochs the recipe asks for.
    pub epochs_planned: usize,
    /// The same kept model measured with flip TTA on `split` (`convkit chapter8 --tta`;
    /// never for MNIST, whose digits a mirror changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip_tta: Option<FlipTtaScore>,
    /// The epoch whose weights were kept and measured.
    pub kept_epoch: Option<usize>,
    /// How that epoch was chosen: `the last epoch`, `lowest validation loss`.
    pub checkpoint: String,
    /// Seconds from start to end (loading, training, evaluation), over every invocation
    /// that worked on it; `None` when unknown.
    pub wall_seconds: Option<f64>,
    /// Training images per second, over all epochs (training steps only).
    pub train_images_per_second: Option<f64>,
    /// The book's figure.
    pub book: BookFigure,
    /// The run's settings, as its `run.json` records them (without `out_dir`).
    pub settings: Value,
    /// Images shown under it: its training curves, and more.
    pub figures: Vec<Figure>,
}

/// Everything the page shows; serialised, `chapter8.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Chapter8Summary {
    /// A `--quick` smoke test (small subsets, small images, 1-2 epochs), not the chapter.
    pub quick: bool,
    /// When the page was written (UTC).
    pub date: String,
    /// The convkit version.
    pub convkit_version: String,
    /// Where it ran.
    pub machine: Machine,
    /// Notes shown under the header: what the figures are, what they are not.
    pub notes: Vec<String>,
    /// The workflows, in the chapter's order.
    pub workflows: Vec<WorkflowResult>,
}

/// `fraction` as a percentage with two decimals: `99.12%`.
fn percent(fraction: f64) -> String {
    format!("{:.2}%", 100.0 * fraction)
}

/// `seconds` as people read durations: `42 s`, `12 min 5 s`, `7 h 03 min`.
pub fn format_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "-".into();
    }
    if seconds < 60.0 {
        return format!("{seconds:.1} s");
    }
    let total = seconds.round() as u64;
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    if h == 0 {
        format!("{m} min {s:02} s")
    } else {
        format!("{h} h {m:02} min")
    }
}

/// A JSON value in a few characters: objects as `k=v` lists (named by their `type` or
/// `name` key when they have one: `random_zoom(height_factor=0.2)`), arrays in brackets,
/// strings bare; nulls, `false` and empty lists are left out of objects.
pub fn compact_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(compact_value)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(map) => {
            let name = ["type", "name", "kind"]
                .iter()
                .find_map(|k| map.get(*k).and_then(Value::as_str));
            let fields: Vec<String> = map
                .iter()
                .filter(|(k, v)| {
                    !(name.is_some() && (*k == "type" || *k == "name" || *k == "kind"))
                        && !is_empty_setting(v)
                })
                .map(|(k, v)| format!("{k}={}", compact_value(v)))
                .collect();
            match name {
                Some(name) => format!("{name}({})", fields.join(", ")),
                None => format!("{{{}}}", fields.join(", ")),
            }
        }
        other => other.to_string(),
    }
}

/// Settings that say "nothing set": shown nowhere.
fn is_empty_setting(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// A run's settings as `key: value` items, in the order `run.json` has them, without the
/// unset ones.
pub fn compact_settings(settings: &Value) -> Vec<String> {
    match settings {
        Value::Object(map) => map
            .iter()
            .filter(|(_, v)| !is_empty_setting(v))
            .map(|(k, v)| format!("{k}: {}", compact_value(v)))
            .collect(),
        Value::Null => Vec::new(),
        other => vec![compact_value(other)],
    }
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;\
max-width:62rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}\
h1{font-size:1.6rem;margin-bottom:.3rem}h2{margin-top:2.5rem;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.8rem 0}\
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}\
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.label{display:inline-block;padding:.4rem .8rem;border-radius:.3rem;font-weight:bold}\
.quick{background:#fff3cd;border:2px solid #e0a800}\
.full{background:#d4edda;border:2px solid #28a745}\
.machine{color:#555}.settings{font-family:monospace;font-size:.85rem}\
figure{margin:1rem 0}figure img{max-width:100%;border:1px solid #ddd}\
figcaption{color:#555;font-size:.9rem}";

/// The page: header (quick or full, machine, date), an overview table, then one section per
/// workflow with its numbers beside the book's, its settings and its figures (inlined).
/// Every text is escaped.
pub fn render_chapter8_page(summary: &Chapter8Summary) -> String {
    let mut html = String::new();
    let kind = if summary.quick {
        "quick run"
    } else {
        "full run"
    };
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>convkit: chapter 8 of Deep Learning with Python ({kind})</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>Chapter 8 of <i>Deep Learning with Python</i>, reproduced by convkit</h1>\n"
    );
    if summary.quick {
        html.push_str(
            "<p class=\"label quick\">QUICK RUN (<code>--quick</code>): a smoke test on small \
             subsets of the data, with small images and 1-2 epochs per workflow. Its \
             accuracies mean nothing; run <code>convkit chapter8</code> without \
             <code>--quick</code> for the chapter's numbers.</p>\n",
        );
    } else {
        html.push_str(
            "<p class=\"label full\">FULL RUN: every workflow on the chapter's data, with \
             its models and augmentation.</p>\n",
        );
    }
    let m = &summary.machine;
    let _ = writeln!(
        html,
        "<p class=\"machine\">Machine: {} ({} logical cores), {} libtorch threads, device \
         {}, bf16 units: {}. convkit {}. Page written {}.</p>",
        escape(&m.cpu),
        m.cores,
        m.threads,
        escape(&m.device),
        escape(&m.bf16),
        escape(&summary.convkit_version),
        escape(&summary.date)
    );
    for note in &summary.notes {
        let _ = writeln!(html, "<p>{}</p>", escape(note));
    }
    overview(&mut html, &summary.workflows);
    for (i, w) in summary.workflows.iter().enumerate() {
        section(&mut html, i + 1, w);
    }
    html.push_str("</body>\n</html>\n");
    html
}

fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".into())
}

fn overview(html: &mut String, workflows: &[WorkflowResult]) {
    let with_tta = workflows.iter().any(|w| w.flip_tta.is_some());
    let _ = writeln!(
        html,
        "<h2>Overview</h2>\n<table>\n<tr><th>#</th><th>workflow</th><th>convkit accuracy</th>\
         {}<th>the book</th><th>epochs</th><th>wall time</th><th>training images/s</th>\
         <th>status</th></tr>",
        if with_tta {
            "<th>with flip TTA</th>"
        } else {
            ""
        }
    );
    for (i, w) in workflows.iter().enumerate() {
        let epochs = format!(
            "{} / {}",
            w.epochs.map_or("-".into(), |e| e.to_string()),
            w.epochs_planned
        );
        let tta = if with_tta {
            format!(
                "<td class=\"num\">{}</td>",
                or_dash(w.flip_tta.map(|t| percent(t.accuracy)))
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            html,
            "<tr><td class=\"num\">{}</td><td><a href=\"#{}\">{}</a> ({})</td>\
             <td class=\"num\">{}</td>{tta}<td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            i + 1,
            escape(&w.name),
            escape(&w.title),
            escape(&w.name),
            or_dash(
                w.accuracy
                    .map(|a| format!("{} {}", percent(a), escape(&w.split)))
            ),
            escape(&w.book.text),
            epochs,
            or_dash(w.wall_seconds.map(format_duration)),
            or_dash(w.train_images_per_second.map(|r| format!("{r:.1}"))),
            escape(w.status.describe()),
        );
    }
    html.push_str("</table>\n");
}

fn section(html: &mut String, number: usize, w: &WorkflowResult) {
    let _ = writeln!(
        html,
        "<h2 id=\"{}\">{number}. {} <small>({})</small></h2>\n<p>{}</p>",
        escape(&w.name),
        escape(&w.title),
        escape(&w.name),
        escape(&w.description)
    );
    let row = |html: &mut String, name: &str, convkit: String, book: String| {
        let _ = writeln!(
            html,
            "<tr><th>{}</th><td>{convkit}</td><td>{book}</td></tr>",
            escape(name)
        );
    };
    html.push_str("<table>\n<tr><th></th><th>convkit</th><th>the book</th></tr>\n");
    row(
        html,
        "accuracy",
        or_dash(w.accuracy.map(percent)),
        escape(&w.book.text),
    );
    if let Some(tta) = w.flip_tta {
        row(
            html,
            "accuracy with flip TTA",
            format!(
                "{} (loss {:.4}; each image and its mirror image, probabilities averaged; \
                 {})",
                percent(tta.accuracy),
                tta.loss,
                format_duration(tta.seconds)
            ),
            "-".into(),
        );
    }
    row(
        html,
        "measured on",
        match w.count {
            Some(n) => format!("{} split, {n} images", escape(&w.split)),
            None => escape(&w.split),
        },
        format!("{} split", escape(&w.book.split)),
    );
    row(
        html,
        "loss",
        or_dash(w.loss.map(|l| format!("{l:.4}"))),
        "-".into(),
    );
    row(
        html,
        "epochs run",
        format!(
            "{} of {}",
            w.epochs.map_or("-".into(), |e| e.to_string()),
            w.epochs_planned
        ),
        w.book.epochs.to_string(),
    );
    row(
        html,
        "kept checkpoint",
        format!(
            "{} ({})",
            w.kept_epoch.map_or("-".into(), |e| format!("epoch {e}")),
            escape(&w.checkpoint)
        ),
        "-".into(),
    );
    row(
        html,
        "wall time",
        or_dash(w.wall_seconds.map(format_duration)),
        "-".into(),
    );
    row(
        html,
        "training images per second",
        or_dash(w.train_images_per_second.map(|r| format!("{r:.1}"))),
        "-".into(),
    );
    row(html, "status", escape(w.status.describe()), "-".into());
    row(
        html,
        "run folder",
        format!("<code>{}</code>", escape(&w.run_dir.display().to_string())),
        "-".into(),
    );
    let settings = compact_settings(&w.settings);
    row(
        html,
        "settings",
        if settings.is_empty() {
            "-".into()
        } else {
            format!(
                "<span class=\"settings\">{}</span>",
                settings
                    .iter()
                    .map(|s| escape(s))
                    .collect::<Vec<_>>()
                    .join("<br>")
            )
        },
        "-".into(),
    );
    html.push_str("</table>\n");
    for figure in &w.figures {
        match &figure.png {
            Some(png) => {
                let _ = writeln!(
                    html,
                    "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{} ({})</figcaption></figure>",
                    png_data_uri(png),
                    escape(&figure.caption),
                    escape(&figure.caption),
                    escape(&figure.path.display().to_string())
                );
            }
            None => {
                let _ = writeln!(
                    html,
                    "<p><i>{}: not available yet ({}).</i></p>",
                    escape(&figure.caption),
                    escape(&figure.path.display().to_string())
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workflow(name: &str, status: WorkflowStatus) -> WorkflowResult {
        WorkflowResult {
            name: name.into(),
            title: "Cats & dogs <from scratch>".into(),
            description: "The small convnet, 30 epochs.".into(),
            status,
            run_dir: PathBuf::from("runs/chapter8/scratch"),
            split: "validation".into(),
            accuracy: status.is_finished().then_some(0.7123),
            loss: status.is_finished().then_some(0.5678),
            count: Some(1000),
            epochs: Some(30),
            epochs_planned: 30,
            flip_tta: None,
            kept_epoch: Some(7),
            checkpoint: "lowest validation loss".into(),
            wall_seconds: Some(2250.0),
            train_images_per_second: Some(27.25),
            book: BookFigure {
                split: "validation".into(),
                accuracy: 0.70,
                accuracy_to: None,
                text: "about 70% validation (69.5% test)".into(),
                epochs: 30,
            },
            settings: serde_json::json!({
                "image_size": 180,
                "dropout": null,
                "strict": false,
                "augmentation": [],
                "optimizer": {"name": "rmsprop", "learning_rate": 0.001},
                "note": "<b>"
            }),
            figures: vec![
                Figure {
                    caption: "Training curves".into(),
                    path: "runs/chapter8/scratch/curves.png".into(),
                    png: Some(b"\x89PNG fake".to_vec()),
                },
                Figure {
                    caption: "Missing figure".into(),
                    path: "nowhere.png".into(),
                    png: None,
                },
            ],
        }
    }

    fn summary(quick: bool) -> Chapter8Summary {
        Chapter8Summary {
            quick,
            date: "2025-01-02 03:04 UTC".into(),
            convkit_version: "0.1.0".into(),
            machine: Machine {
                cpu: "AMD EPYC <test>".into(),
                cores: 2,
                threads: 2,
                device: "cpu".into(),
                bf16: "none".into(),
            },
            notes: vec!["No test split: validation figures & the book's.".into()],
            workflows: vec![
                workflow("scratch", WorkflowStatus::Trained),
                workflow("vgg16-finetune", WorkflowStatus::Pending),
            ],
        }
    }

    #[test]
    fn the_page_shows_every_workflow_beside_the_book_with_its_figures_inlined() {
        let html = render_chapter8_page(&summary(false));
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(html.ends_with("</html>\n"));
        assert!(html.contains("FULL RUN"));
        assert!(!html.contains("QUICK RUN"));
        assert!(html.contains("id=\"scratch\"") && html.contains("id=\"vgg16-finetune\""));
        assert!(html.contains("71.23% validation"));
        assert!(html.contains("about 70% validation (69.5% test)"));
        assert!(html.contains("0.5678"));
        assert!(html.contains("37 min 30 s"));
        assert!(html.contains("27.2") || html.contains("27.3"));
        assert!(html.contains("epoch 7 (lowest validation loss)"));
        assert!(html.contains("not run yet"));
        assert_eq!(html.matches("data:image/png;base64,").count(), 2);
        assert!(html.contains("Missing figure: not available yet (nowhere.png)"));
        assert!(html.contains("2025-01-02 03:04 UTC"));
        assert!(html.contains("image_size: 180"));
        assert!(html.contains("optimizer: rmsprop(learning_rate=0.001)"));
        assert!(!html.contains("dropout") && !html.contains("strict"));
    }

    #[test]
    fn flip_tta_figures_get_a_column_and_a_row_only_when_measured() {
        let mut summary = summary(false);
        assert!(!render_chapter8_page(&summary).contains("flip TTA"));
        summary.workflows[0].flip_tta = Some(FlipTtaScore {
            accuracy: 0.7345,
            loss: 0.5432,
            seconds: 61.0,
        });
        let html = render_chapter8_page(&summary);
        assert!(html.contains("<th>with flip TTA</th>"), "{html}");
        // the measured row, and a dash for the pending one
        assert!(html.contains("<td class=\"num\">73.45%</td>"), "{html}");
        assert!(
            html.contains("<td class=\"num\">-</td><td class=\"num\">-</td><td>about 70%"),
            "{html}"
        );
        assert!(html.contains("accuracy with flip TTA"));
        assert!(
            html.contains("loss 0.5432") && html.contains("1 min 01 s"),
            "{html}"
        );
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["workflows"][0]["flip_tta"]["accuracy"], 0.7345);
        assert!(json["workflows"][1].get("flip_tta").is_none());
        let back: Chapter8Summary = serde_json::from_value(json).unwrap();
        assert_eq!(back.workflows[0].flip_tta, summary.workflows[0].flip_tta);
        assert_eq!(back.workflows[1].flip_tta, None);
    }

    #[test]
    fn every_text_on_the_page_is_escaped() {
        let html = render_chapter8_page(&summary(true));
        assert!(html.contains("QUICK RUN"));
        assert!(html.contains("Cats &amp; dogs &lt;from scratch&gt;"));
        assert!(html.contains("AMD EPYC &lt;test&gt;"));
        assert!(html.contains("validation figures &amp; the book&#39;s."));
        assert!(html.contains("note: &lt;b&gt;"));
        assert!(!html.contains("<from scratch>") && !html.contains("<test>"));
        assert!(!html.contains("<b>"));
    }

    #[test]
    fn the_summary_round_trips_through_json_without_the_image_bytes() {
        let json = serde_json::to_value(summary(true)).unwrap();
        assert_eq!(json["workflows"].as_array().unwrap().len(), 2);
        assert_eq!(json["workflows"][0]["status"], "trained");
        assert_eq!(json["workflows"][0]["book"]["accuracy"], 0.70);
        assert!(json["workflows"][0]["figures"][0].get("png").is_none());
        let back: Chapter8Summary = serde_json::from_value(json).unwrap();
        assert_eq!(back.workflows[1].status, WorkflowStatus::Pending);
        assert!(back.workflows[0].figures[0].png.is_none());
    }

    #[test]
    fn values_and_durations_are_compact() {
        let layer = serde_json::json!({"type": "random_zoom", "height_factor": 0.2,
                                       "width_factor": null});
        assert_eq!(compact_value(&layer), "random_zoom(height_factor=0.2)");
        assert_eq!(
            compact_value(&serde_json::json!([1, "a", {"b": true}])),
            "[1, a, {b=true}]"
        );
        assert_eq!(
            compact_settings(&serde_json::json!({"a": 1, "b": [], "c": null})),
            vec!["a: 1"]
        );
        assert_eq!(format_duration(4.31), "4.3 s");
        assert_eq!(format_duration(95.0), "1 min 35 s");
        assert_eq!(format_duration(7.0 * 3600.0 + 180.0), "7 h 03 min");
        assert_eq!(format_duration(f64::NAN), "-");
    }
}
