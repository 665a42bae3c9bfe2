//! `convkit evaluate --report`: one folder that shows what a model gets right and wrong on
//! a split, as files (metrics.json, confusion.csv, misclassified.csv, pictures) and as one
//! self-contained page, report.html.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tch::{Kind, Tensor};

use super::classification_metrics::ClassificationMetrics;
use super::confusion_plot::plot_confusion_matrix;
use super::html::{escape, png_data_uri};
use super::top_losses::{plot_labelled_images, LabelledImage};
use crate::atomic_file::write_atomic;
use crate::error::{Error, Result};
use crate::train::{SamplePredictions, Tta};

/// Images shown in `top_losses.png`.
pub const TOP_LOSSES: usize = 16;

/// What a report is made of.
pub struct ReportInput<'a> {
    /// The run's name (its folder), the page's title.
    pub run_name: String,
    /// What was evaluated, as a person reads it (a folder, or "MNIST test split").
    pub data: String,
    /// The checkpoint evaluated.
    pub checkpoint: PathBuf,
    /// Every sample's probabilities, loss and label.
    pub samples: &'a SamplePredictions,
    /// Class names, in the model's order.
    pub classes: &'a [String],
    /// Each sample's file (or a name such as `test[17]` when it has none).
    pub names: &'a [String],
    /// The samples' images as the model saw them, `(N, C, H, W)` bytes.
    pub images: &'a Tensor,
    /// The run's training curves, when it has them.
    pub curves: Option<PathBuf>,
    /// The run's settings (its `run.json`), shown at the end of the page.
    pub settings: Option<serde_json::Value>,
}

/// What [`write_evaluation_report`] wrote.
#[derive(Clone, Debug, Serialize)]
pub struct EvaluationReport {
    /// The report's folder.
    pub dir: PathBuf,
    /// The figures, as in `metrics.json`.
    pub metrics: ClassificationMetrics,
    /// Every file written, the page last.
    pub files: Vec<PathBuf>,
}

/// `metrics.json`: the figures and what they were measured on.
#[derive(Serialize)]
struct MetricsFile<'a> {
    run: &'a str,
    data: &'a str,
    checkpoint: &'a Path,
    #[serde(flatten)]
    metrics: &'a ClassificationMetrics,
}

/// Writes the report of `input` into `dir` (created if needed): `metrics.json`,
/// `confusion.csv`, `confusion.png`, `misclassified.csv`, `top_losses.png` and
/// `report.html`, each atomically.
pub fn write_evaluation_report(dir: &Path, input: &ReportInput) -> Result<EvaluationReport> {
    let samples = input.samples;
    if input.names.len() != samples.len() || input.images.size()[0] as usize != samples.len() {
        return Err(Error::InvalidConfig(format!(
            "a report needs one name and one image per sample: {} samples, {} names, {} images",
            samples.len(),
            input.names.len(),
            input.images.size()[0]
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let metrics = ClassificationMetrics::compute(samples, input.classes);
    let file = |name: &str| dir.join(name);
    let mut files = Vec::new();

    let metrics_file = MetricsFile {
        run: &input.run_name,
        data: &input.data,
        checkpoint: &input.checkpoint,
        metrics: &metrics,
    };
    let json = serde_json::to_vec_pretty(&metrics_file)
        .map_err(|e| Error::InvalidConfig(e.to_string()))?;
    write_atomic(&file("metrics.json"), &json)?;
    files.push(file("metrics.json"));

    write_atomic(&file("confusion.csv"), confusion_csv(&metrics)?.as_bytes())?;
    files.push(file("confusion.csv"));
    plot_confusion_matrix(
        &metrics,
        &format!(
            "Confusion matrix{}: {} images of {}",
            tta_tag(metrics.tta),
            metrics.count,
            input.data
        ),
        &file("confusion.png"),
    )?;
    files.push(file("confusion.png"));

    let by_loss = order_by_loss(samples);
    write_atomic(
        &file("misclassified.csv"),
        misclassified_csv(input, &by_loss)?.as_bytes(),
    )?;
    files.push(file("misclassified.csv"));
    let worst: Vec<LabelledImage> = by_loss
        .iter()
        .take(TOP_LOSSES)
        .map(|&i| labelled_image(input, i))
        .collect::<Result<_>>()?;
    plot_labelled_images(
        &worst,
        4,
        match metrics.tta {
            Tta::None => {
                "The images with the highest loss (actual class, then the prediction and its \
                 probability)"
            }
            Tta::HorizontalFlip => {
                "Highest loss with flip TTA (actual class, then the prediction and its probability)"
            }
        },
        &file("top_losses.png"),
    )?;
    files.push(file("top_losses.png"));

    let page = report_page(input, &metrics, dir)?;
    write_atomic(&file("report.html"), page.as_bytes())?;
    files.push(file("report.html"));
    Ok(EvaluationReport {
        dir: dir.to_owned(),
        metrics,
        files,
    })
}

/// What a picture's title adds when its figures come from test-time augmentation (short:
/// titles are one line, and the page explains it).
fn tta_tag(tta: Tta) -> &'static str {
    match tta {
        Tta::None => "",
        Tta::HorizontalFlip => " (flip TTA)",
    }
}

/// The page's note on how the probabilities were computed, when not plainly.
fn tta_note(tta: Tta) -> Option<&'static str> {
    match tta {
        Tta::None => None,
        Tta::HorizontalFlip => Some(
            "Test-time augmentation (horizontal flip): each image's class probabilities are \
             the mean of the model's on the image and on its mirror image, and every figure \
             on this page (accuracy, loss, confusion matrix, highest losses) comes from that \
             mean. They are not the plain figures of the checkpoint.",
        ),
    }
}

/// Sample indices, highest loss first (ties in sample order).
fn order_by_loss(samples: &SamplePredictions) -> Vec<usize> {
    let mut order: Vec<usize> = (0..samples.len()).collect();
    order.sort_by(|&a, &b| samples.losses[b].total_cmp(&samples.losses[a]));
    order
}

/// `actual,predicted,count,fraction_of_actual`, one row per cell of the matrix.
fn confusion_csv(metrics: &ClassificationMetrics) -> Result<String> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let fractions = metrics.row_normalised();
    out.write_record(["actual", "predicted", "count", "fraction_of_actual"])
        .map_err(csv_error)?;
    for (a, row) in metrics.confusion.iter().enumerate() {
        for (p, count) in row.iter().enumerate() {
            out.write_record([
                metrics.classes[a].as_str(),
                metrics.classes[p].as_str(),
                &count.to_string(),
                &format!("{:.6}", fractions[a][p]),
            ])
            .map_err(csv_error)?;
        }
    }
    into_string(out)
}

/// `path,actual,predicted,probability,loss` for every misclassified sample, highest loss
/// first (`probability` is the predicted class's).
fn misclassified_csv(input: &ReportInput, by_loss: &[usize]) -> Result<String> {
    let samples = input.samples;
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(["path", "actual", "predicted", "probability", "loss"])
        .map_err(csv_error)?;
    for &i in by_loss {
        let predicted = samples.predicted(i);
        if predicted == samples.labels[i] {
            continue;
        }
        out.write_record([
            input.names[i].as_str(),
            input.classes[samples.labels[i]].as_str(),
            input.classes[predicted].as_str(),
            &format!("{:.6}", samples.confidence(i)),
            &format!("{:.6}", samples.losses[i]),
        ])
        .map_err(csv_error)?;
    }
    into_string(out)
}

fn csv_error(e: csv::Error) -> Error {
    Error::InvalidConfig(format!("cannot write CSV: {e}"))
}

fn into_string(out: csv::Writer<Vec<u8>>) -> Result<String> {
    let bytes = out
        .into_inner()
        .map_err(|e| Error::InvalidConfig(format!("cannot write CSV: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::InvalidConfig(e.to_string()))
}

/// Sample `i` as the model saw it, captioned with its file, classes, probability and loss.
fn labelled_image(input: &ReportInput, i: usize) -> Result<LabelledImage> {
    let samples = input.samples;
    let image = input.images.get(i as i64);
    let (c, h, w) = (image.size()[0], image.size()[1], image.size()[2]);
    let pixels = Vec::<u8>::try_from(
        image
            .to_kind(Kind::Float)
            .clamp(0.0, 255.0)
            .round()
            .to_kind(Kind::Uint8)
            .permute([1, 2, 0])
            .contiguous()
            .view([-1]),
    )?;
    let predicted = samples.predicted(i);
    let name = Path::new(&input.names[i])
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| input.names[i].clone());
    Ok(LabelledImage {
        pixels,
        height: h as u32,
        width: w as u32,
        channels: c as u32,
        caption: vec![
            name,
            format!("actual: {}", input.classes[samples.labels[i]]),
            format!(
                "predicted: {} ({:.3})",
                input.classes[predicted],
                samples.confidence(i)
            ),
            format!("loss {:.3}", samples.losses[i]),
        ],
    })
}

/// The whole report as one HTML page with its pictures inlined.
fn report_page(input: &ReportInput, metrics: &ClassificationMetrics, dir: &Path) -> Result<String> {
    let picture = |path: &Path| -> Result<String> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Ok(png_data_uri(&bytes))
    };
    let mut page = String::new();
    let title = format!("Evaluation of {}", input.run_name);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let _ = writeln!(
        page,
        "<p class=\"lead\">{} images of <b>{}</b>, classified by the checkpoint <code>{}</code>.</p>",
        metrics.count,
        escape(&input.data),
        escape(&input.checkpoint.display().to_string())
    );
    if let Some(note) = tta_note(metrics.tta) {
        let _ = writeln!(page, "<p class=\"tta\"><b>{}</b></p>", escape(note));
    }
    page.push_str("<div class=\"cards\">\n");
    let mut card = |label: &str, value: String, note: &str| {
        let _ = writeln!(
            page,
            "<div class=\"card\"><div class=\"value\">{}</div><div class=\"label\">{}</div>\
             <div class=\"note\">{}</div></div>",
            escape(&value),
            escape(label),
            escape(note)
        );
    };
    let accuracy_note = match metrics.tta {
        Tta::None => "images whose most probable class is the right one",
        Tta::HorizontalFlip => {
            "images whose most probable class is the right one, the image and its mirror \
             averaged (TTA)"
        }
    };
    card(
        "accuracy",
        format!("{:.2}%", 100.0 * metrics.accuracy),
        accuracy_note,
    );
    card(
        "loss",
        format!("{:.4}", metrics.loss),
        "mean cross-entropy, as in training",
    );
    if let Some(auc) = metrics.roc_auc {
        card(
            "ROC AUC",
            format!("{auc:.4}"),
            &format!(
                "chance that an image of {} gets a higher {} probability than an image of {} \
                 (1 is perfect, 0.5 is guessing)",
                metrics.classes[1], metrics.classes[1], metrics.classes[0]
            ),
        );
    }
    if let Some(top5) = metrics.top5_accuracy {
        card(
            "top-5 accuracy",
            format!("{:.2}%", 100.0 * top5),
            "right class among the 5 most probable",
        );
    }
    let right: u64 = (0..metrics.classes.len())
        .map(|c| metrics.confusion[c][c])
        .sum();
    let wrong = metrics.count as u64 - right;
    card(
        "misclassified",
        wrong.to_string(),
        "listed in misclassified.csv",
    );
    page.push_str("</div>\n");

    page.push_str(
        "<h2>Per class</h2>\n<p>Precision: of the images predicted as the class, the share \
         that are. Recall: of the images of the class, the share found. F1: their harmonic \
         mean. Support: images of the class.</p>\n<table><tr><th>class</th><th>precision</th>\
         <th>recall</th><th>F1</th><th>support</th></tr>\n",
    );
    for (scores, class) in metrics
        .per_class
        .iter()
        .map(|s| (s, ""))
        .chain([(&metrics.macro_avg, "avg"), (&metrics.weighted_avg, "avg")])
    {
        let _ = writeln!(
            page,
            "<tr class=\"{class}\"><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td></tr>",
            escape(&scores.class),
            scores.precision,
            scores.recall,
            scores.f1,
            scores.support
        );
    }
    page.push_str("</table>\n<h2>Confusion matrix</h2>\n<p>Rows are the actual class, columns the prediction: the diagonal is right, everything else is a mistake.</p>\n");
    let _ = writeln!(
        page,
        "<img alt=\"confusion matrix\" src=\"{}\">",
        picture(&dir.join("confusion.png"))?
    );
    if metrics.most_confused.is_empty() {
        page.push_str("<p>No image was misclassified.</p>\n");
    } else {
        page.push_str("<h3>Most confused</h3>\n<table><tr><th>actual</th><th>predicted as</th><th>images</th></tr>\n");
        for pair in &metrics.most_confused {
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&pair.actual),
                escape(&pair.predicted),
                pair.count
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str(
        "<h2>Highest losses</h2>\n<p>The images the model was most wrong about, or least sure \
         of when right: each with its file, its actual class, the prediction with its \
         probability, and the loss.</p>\n",
    );
    let _ = writeln!(
        page,
        "<img alt=\"images with the highest loss\" src=\"{}\">",
        picture(&dir.join("top_losses.png"))?
    );
    if let Some(curves) = input.curves.as_deref().filter(|c| c.is_file()) {
        page.push_str("<h2>Training curves</h2>\n<p>Loss and accuracy per epoch on the training data (dots) and the validation data (line).</p>\n");
        let _ = writeln!(
            page,
            "<img alt=\"training curves\" src=\"{}\">",
            picture(curves)?
        );
    }
    if let Some(settings) = &input.settings {
        let pretty = serde_json::to_string_pretty(settings).unwrap_or_default();
        let _ = writeln!(
            page,
            "<h2>Settings of the run</h2>\n<pre>{}</pre>",
            escape(&pretty)
        );
    }
    page.push_str(
        "<h2>Files</h2>\n<p>Beside this page: <code>metrics.json</code> (every figure), \
         <code>confusion.csv</code>, <code>misclassified.csv</code> (path, actual, predicted, \
         probability, loss), <code>confusion.png</code>, <code>top_losses.png</code>.</p>\n\
         </body></html>\n",
    );
    Ok(page)
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;\
padding:0 1em;color:#222}.tta{background:#fff4d6;border-left:4px solid #e0a800;\
padding:.5em 1em}h1{margin-bottom:.2em}.lead{color:#444}table{border-collapse:collapse;\
margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .8em;text-align:right}\
td:first-child,th:first-child{text-align:left}tr.avg td{font-style:italic;background:#f6f6f6}\
.cards{display:flex;gap:1em;flex-wrap:wrap;margin:1em 0}.card{border:1px solid #ddd;\
border-radius:8px;padding:.8em 1.2em;min-width:10em;max-width:16em}.value{font-size:1.8em;\
font-weight:600}.label{font-weight:600}.note{color:#666;font-size:.85em}img{max-width:100%;\
border:1px solid #eee}pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:.85em}";

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn writes_every_file_and_the_numbers_agree() {
        let dir = tempfile::tempdir().unwrap();
        let samples = SamplePredictions {
            probabilities: vec![
                vec![0.9, 0.1],
                vec![0.3, 0.7],
                vec![0.2, 0.8],
                vec![0.6, 0.4],
                vec![0.95, 0.05],
            ],
            losses: vec![0.1, 1.2, 0.2, 0.9, 3.0],
            labels: vec![0, 0, 1, 1, 1],
            tta: Tta::None,
        };
        let classes = vec!["cats".to_owned(), "dogs <&>".to_owned()];
        let names: Vec<String> = (0..5).map(|i| format!("/data/val/img{i}.jpg")).collect();
        let images = Tensor::zeros([5, 3, 8, 8], (Kind::Uint8, Device::Cpu));
        let input = ReportInput {
            run_name: "run-1".into(),
            data: "validation".into(),
            checkpoint: "best.safetensors".into(),
            samples: &samples,
            classes: &classes,
            names: &names,
            images: &images,
            curves: None,
            settings: Some(serde_json::json!({"epochs": 3})),
        };
        let report = write_evaluation_report(&dir.path().join("report"), &input).unwrap();
        assert_eq!(report.files.len(), 6);
        assert!(report.files.iter().all(|f| f.is_file()));
        let metrics: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("report/metrics.json")).unwrap())
                .unwrap();
        assert_eq!(metrics["count"], 5);
        assert_eq!(metrics["confusion"], serde_json::json!([[1, 1], [2, 1]]));
        assert!((metrics["accuracy"].as_f64().unwrap() - 0.4).abs() < 1e-12);
        let misclassified =
            std::fs::read_to_string(dir.path().join("report/misclassified.csv")).unwrap();
        let lines: Vec<&str> = misclassified.lines().collect();
        assert_eq!(lines.len(), 4, "{misclassified}");
        assert!(
            lines[1].starts_with("/data/val/img4.jpg,dogs <&>,cats,0.950000,3.0"),
            "{}",
            lines[1]
        );
        let page = std::fs::read_to_string(dir.path().join("report/report.html")).unwrap();
        assert!(page.contains("dogs &lt;&amp;&gt;") && !page.contains("dogs <&>"));
        assert_eq!(page.matches("data:image/png;base64,").count(), 2);
        assert!(page.contains("40.00%"));
        assert_eq!(metrics["tta"], "none");
        assert!(!page.contains("Test-time augmentation"));
    }

    #[test]
    fn a_tta_report_says_so_in_its_figures_and_on_its_page() {
        let dir = tempfile::tempdir().unwrap();
        let samples = SamplePredictions {
            probabilities: vec![vec![0.8, 0.2], vec![0.4, 0.6]],
            losses: vec![0.2, 0.5],
            labels: vec![0, 1],
            tta: Tta::HorizontalFlip,
        };
        let classes = vec!["cats".to_owned(), "dogs".to_owned()];
        let names = vec!["a.jpg".to_owned(), "b.jpg".to_owned()];
        let images = Tensor::zeros([2, 3, 8, 8], (Kind::Uint8, Device::Cpu));
        let input = ReportInput {
            run_name: "run-1".into(),
            data: "validation".into(),
            checkpoint: "best.safetensors".into(),
            samples: &samples,
            classes: &classes,
            names: &names,
            images: &images,
            curves: None,
            settings: None,
        };
        let report = write_evaluation_report(dir.path(), &input).unwrap();
        assert_eq!(report.metrics.tta, Tta::HorizontalFlip);
        let metrics: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("metrics.json")).unwrap())
                .unwrap();
        assert_eq!(metrics["tta"], "horizontal_flip");
        let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert!(page.contains("Test-time augmentation (horizontal flip)"));
    }
}
