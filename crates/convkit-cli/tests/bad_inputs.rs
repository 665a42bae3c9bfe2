//! A corpus of bad inputs through the command line: each is refused (non-zero exit) or,
//! for images in a training folder, skipped with a warning; every answer names the file and
//! the problem, and none is a panic or a backtrace.

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{cats_slice, convkit, data_root, models_root, run_ok};

/// The answer of a refused command: its stderr, checked for the file's name, the problem,
/// and the absence of panics.
fn refused(output: Output, file: &Path, problem: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "accepted {}:\n{stderr}",
        file.display()
    );
    let name = file.file_name().unwrap().to_string_lossy();
    assert!(stderr.contains(&*name), "{name} not named:\n{stderr}");
    assert!(
        stderr.contains(problem),
        "`{problem}` not said for {name}:\n{stderr}"
    );
    for bad in ["panicked", "stack backtrace", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(bad), "{bad} for {name}:\n{stderr}");
    }
    eprintln!(
        "answer to {name}: {}",
        stderr.lines().last().unwrap_or_default()
    );
    stderr
}

/// A real photo, shrunk, encoded in `format`.
fn photo(shared_data: &Path, format: image::ImageFormat) -> Vec<u8> {
    let image = image::open(shared_data.join("cats_vs_dogs/train/cats/cat.3.jpg"))
        .unwrap()
        .thumbnail(120, 120);
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), format)
        .unwrap();
    bytes
}

/// A PNG header that claims `side` x `side` pixels, and nothing after it.
fn png_header(side: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(side.to_be_bytes());
    ihdr.extend(side.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut crc = flate2::Crc::new();
    crc.update(&ihdr);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(13u32.to_be_bytes());
    png.extend(&ihdr);
    png.extend(crc.sum().to_be_bytes());
    png
}

/// The bad images, by file name, with the problem each answer must state.
fn bad_images(shared_data: &Path) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    use image::ImageFormat::*;
    let cut = |bytes: Vec<u8>| bytes[..bytes.len() * 6 / 10].to_vec();
    let mut corrupt_jpeg = photo(shared_data, Jpeg);
    corrupt_jpeg[4..40].fill(0x00); // the first segment's header destroyed
    vec![
        ("truncated.jpg", cut(photo(shared_data, Jpeg)), "truncated"),
        ("truncated.png", cut(photo(shared_data, Png)), "truncated"),
        ("truncated.gif", cut(photo(shared_data, Gif)), "truncated"),
        ("truncated.webp", cut(photo(shared_data, WebP)), "truncated"),
        ("truncated.bmp", cut(photo(shared_data, Bmp)), "truncated"),
        ("corrupt.jpg", corrupt_jpeg, "corrupt"),
        (
            "text.jpg",
            b"this is a text file, not a photo\n".to_vec(),
            "not an image",
        ),
        ("empty.jpg", Vec::new(), "not an image"),
        ("huge.png", png_header(30_000), "too large"),
    ]
}

/// Bad images in a training folder are skipped with a warning naming each (an error with
/// --strict); given to `predict`, each is refused by name. A 1x1 image is a valid image
/// and is used.
#[test]
fn bad_images_are_skipped_in_training_and_refused_by_predict() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    cats_slice(&shared_data, &data, 10, 5);
    let bad = bad_images(&shared_data);
    for (name, bytes, _) in &bad {
        std::fs::write(data.join("train/cats").join(name), bytes).unwrap();
    }
    let mut tiny = Vec::new();
    image::DynamicImage::ImageRgb8(image::RgbImage::new(1, 1))
        .write_to(&mut Cursor::new(&mut tiny), image::ImageFormat::Png)
        .unwrap();
    std::fs::write(data.join("train/dogs/one-pixel.png"), &tiny).unwrap();

    let run = dir.path().join("run");
    let train = |strict: bool| {
        // The strict run writes elsewhere: a new run into a finished one is refused.
        let out = if strict {
            dir.path().join("strict")
        } else {
            run.clone()
        };
        let mut command = convkit();
        command
            .args([
                "train",
                "--quiet",
                "--epochs",
                "1",
                "--image-size",
                "80",
                "--data",
            ])
            .arg(&data)
            .arg("--out")
            .arg(out);
        if strict {
            command.arg("--strict");
        }
        command
    };
    let output = run_ok(&mut train(false));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("skipped {} unreadable file(s)", bad.len())),
        "{stderr}"
    );
    for (name, _, problem) in &bad {
        let line = stderr
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} not named:\n{stderr}"));
        assert!(line.contains(problem), "{line}");
    }
    assert!(!stderr.contains("one-pixel.png"), "{stderr}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["train_count"], 21, "20 photos and the 1x1 image");

    let strict = train(true).output().unwrap();
    let first = data.join("train/cats/corrupt.jpg"); // the first bad file in name order
    refused(strict, &first, "corrupt");

    for (name, _, problem) in &bad {
        let file = data.join("train/cats").join(name);
        refused(
            convkit()
                .arg("predict")
                .arg(&run)
                .arg(&file)
                .output()
                .unwrap(),
            &file,
            problem,
        );
    }
}

fn idx(magic_type: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, magic_type, dims.len() as u8];
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(data);
    bytes
}

/// MNIST folders with one bad file each: `convkit mnist --data` refuses each, naming it.
#[test]
fn bad_idx_files_are_refused_by_name() {
    let shared_data = require!(data_root());
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "t10k-labels-idx1-ubyte",
            b"\x12\x34\x08\x01\x00\x00\x00\x01\x07".to_vec(),
            "magic",
        ),
        (
            "t10k-labels-idx1-ubyte",
            idx(0x0D, &[10], &[0; 40]),
            "element type",
        ),
        (
            "t10k-labels-idx1-ubyte",
            idx(0x08, &[10_000], &[1; 100]),
            "truncated",
        ),
        ("t10k-labels-idx1-ubyte", idx(0x08, &[7], &[1; 7]), "10000"),
    ];
    for (i, (name, bytes, problem)) in cases.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("mnist");
        std::fs::create_dir(&data).unwrap();
        for file in [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
        ] {
            let gz = format!("{file}.gz");
            std::os::unix::fs::symlink(shared_data.join("mnist").join(&gz), data.join(&gz))
                .unwrap();
        }
        let file = data.join(name);
        std::fs::write(&file, bytes).unwrap();
        let output = convkit()
            .args([
                "mnist", "--quiet", "--epochs", "1", "--limit", "100", "--data",
            ])
            .arg(&data)
            .arg("--out")
            .arg(dir.path().join("run"))
            .output()
            .unwrap();
        let stderr = refused(output, &file, problem);
        assert!(!stderr.is_empty(), "case {i}");
    }
}

/// Weights that lie or do not fit, given with --weights: refused by name, with the problem.
#[test]
fn bad_weights_files_are_refused_by_name() {
    let shared_data = require!(data_root());
    let models = require!(models_root());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    cats_slice(&shared_data, &data, 4, 2);

    // A safetensors header that claims 10^12 bytes of header.
    let mut lying = 1_000_000_000_000u64.to_le_bytes().to_vec();
    lying.extend(b"{}");
    // A .pth whose pickle asks for os.system.
    let command = b"touch /tmp/convkit-bad-inputs-pwned";
    let mut evil = b"\x80\x02cos\nsystem\nX".to_vec();
    evil.extend((command.len() as u32).to_le_bytes());
    evil.extend(command);
    evil.extend(b"\x85R.");
    // Real weights of another network: every name is wrong for VGG16.
    let other: PathBuf = models.join("mobilenet_v2_torchvision/mobilenet_v2.safetensors");
    let cases: Vec<(PathBuf, &str)> = vec![
        (dir.path().join("lying.safetensors"), "safetensors"),
        (dir.path().join("evil.pth"), "`os.system`"),
        (dir.path().join("text.safetensors"), "safetensors"),
    ];
    std::fs::write(&cases[0].0, &lying).unwrap();
    std::fs::write(&cases[1].0, &evil).unwrap();
    std::fs::write(&cases[2].0, b"not weights").unwrap();
    let mut all = cases.clone();
    if other.is_file() {
        all.push((other, "do not match"));
    }
    for (file, problem) in all {
        let output = convkit()
            .args([
                "train", "--quiet", "--epochs", "1", "--base", "vgg16", "--data",
            ])
            .arg(&data)
            .arg("--weights")
            .arg(&file)
            .arg("--out")
            .arg(dir.path().join("run"))
            .output()
            .unwrap();
        refused(output, &file, problem);
    }
    assert!(!Path::new("/tmp/convkit-bad-inputs-pwned").exists());
}
