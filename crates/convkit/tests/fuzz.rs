//! A stable-Rust fuzz harness over every parser of user files: a bounded number of mutated
//! cases per parser, seeded from real files, each of which must be answered (accepted or
//! refused with an error) without a panic and within a time bound. Inputs that once
//! failed are kept under `tests/fuzz_regressions/<parser>/` and run first.
//!
//! `CONVKIT_FUZZ_CASES` sets the cases per parser (default 3000); `CONVKIT_FUZZ_SEED` the
//! seed of the mutations (default 1). Longer runs: `cargo +nightly fuzz run <parser>` in
//! `fuzz/`.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use convkit::fuzzing::{parse, Parser};
use convkit::models::Sequential;
use convkit::nn::Activation;
use convkit::workflows::presets;
use convkit::Model;

/// SplitMix64: the mutations' generator.
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING_U32: [u32; 9] = [
    0,
    1,
    0x7F,
    0xFF,
    0xFFFF,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFF,
    1 << 24,
];
const INTERESTING_U64: [u64; 5] = [0, 1_000_000_000_000, u64::MAX, 1 << 40, i64::MAX as u64];
const INTERESTING_TEXT: [&str; 8] = [
    "1000000000000",
    "-1",
    "0",
    "99999999999999999999999",
    "1e308",
    "null",
    "\"x\"",
    "[]",
];

/// One to three random edits of `seed`: bit flips, interesting bytes and integers (lying
/// lengths and counts), truncation, insertion, deletion, duplication, and for text, numbers
/// replaced by extreme values.
fn mutate(seed: &[u8], draws: &mut Draws) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..1 + draws.below(3) {
        let len = bytes.len();
        let at = draws.below(len);
        match draws.below(9) {
            0 if len > 0 => bytes[at] ^= 1 << draws.below(8),
            1 if len > 0 => bytes[at] = [0x00, 0xFF, 0x7F, 0x80][draws.below(4)],
            2 => bytes.truncate(draws.below(len + 1)),
            3 => {
                let extra: Vec<u8> = (0..1 + draws.below(16))
                    .map(|_| draws.next() as u8)
                    .collect();
                bytes.splice(at..at, extra);
            }
            4 if len > 0 => {
                let end = (at + 1 + draws.below(64)).min(len);
                bytes.drain(at..end);
            }
            5 if len >= 4 => {
                let at = draws.below(len - 3);
                let value = INTERESTING_U32[draws.below(INTERESTING_U32.len())];
                let field = if draws.below(2) == 0 {
                    value.to_le_bytes()
                } else {
                    value.to_be_bytes()
                };
                bytes[at..at + 4].copy_from_slice(&field);
            }
            6 if len >= 8 => {
                let at = draws.below(len - 7);
                let value = INTERESTING_U64[draws.below(INTERESTING_U64.len())];
                bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
            }
            7 if len > 0 => {
                let end = (at + 1 + draws.below(256)).min(len);
                let copy = bytes[at..end].to_vec();
                let to = draws.below(len);
                bytes.splice(to..to, copy);
            }
            _ => {
                // A run of digits replaced by an extreme value (text formats).
                let digits: Vec<usize> = (0..len).filter(|&i| bytes[i].is_ascii_digit()).collect();
                if let Some(&start) = digits.get(draws.below(digits.len())) {
                    let end = (start..len)
                        .find(|&i| !bytes[i].is_ascii_digit())
                        .unwrap_or(len);
                    let value = INTERESTING_TEXT[draws.below(INTERESTING_TEXT.len())];
                    bytes.splice(start..end, value.bytes());
                }
            }
        }
    }
    bytes
}

fn shared_data() -> Option<PathBuf> {
    let root = std::env::var_os("CONVKIT_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let found = root.join("mnist").is_dir();
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{} not found (set CONVKIT_DATA)", root.display());
    }
    found.then_some(root)
}

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(data);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The seeds of each parser: real files where `../shared` has them, small generated ones
/// otherwise; for model descriptions, the weights that go with them.
fn seeds(parser: Parser, scratch: &Path) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
    let data = shared_data();
    match parser {
        Parser::Idx => {
            let mut seeds = vec![idx(&[5], &[0, 1, 2, 3, 4]), idx(&[3, 4, 4], &[7; 48])];
            if let Some(data) = &data {
                // The real test labels, and the first 20 real test images as a raw file.
                let labels = std::fs::read(data.join("mnist/t10k-labels-idx1-ubyte.gz"));
                seeds.extend(labels.ok());
                if let Ok(images) =
                    convkit::data::idx::read_idx(&data.join("mnist/t10k-images-idx3-ubyte.gz"))
                {
                    seeds.push(idx(&[20, 28, 28], &images.data[..20 * 784]));
                }
            }
            seeds.extend(seeds.clone().iter().map(|s| gzip(s)).collect::<Vec<_>>());
            (seeds, None)
        }
        Parser::Image => {
            let photo = data
                .as_ref()
                .and_then(|d| image::open(d.join("cats_vs_dogs/train/cats/cat.1.jpg")).ok())
                .unwrap_or_else(|| {
                    image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(60, 40, |x, y| {
                        image::Rgb([(x * 4) as u8, (y * 6) as u8, (x * y) as u8])
                    }))
                })
                .thumbnail(48, 48);
            let seeds = [
                image::ImageFormat::Jpeg,
                image::ImageFormat::Png,
                image::ImageFormat::Gif,
                image::ImageFormat::WebP,
                image::ImageFormat::Bmp,
            ]
            .into_iter()
            .map(|format| {
                let mut bytes = Vec::new();
                photo
                    .write_to(&mut Cursor::new(&mut bytes), format)
                    .unwrap();
                bytes
            })
            .collect();
            (seeds, None)
        }
        Parser::Safetensors | Parser::ModelJson => {
            let spec = Sequential::new("tiny", [1, 6, 6])
                .rescaling(1.0 / 255.0)
                .conv2d(2, 3, Activation::Relu)
                .max_pool2d(2)
                .flatten()
                .dropout(0.5)
                .dense(3, Activation::Softmax);
            let model = Model::new(&spec, tch::Device::Cpu, 0).unwrap();
            let path = scratch.join("seed.safetensors");
            model.save(&path).unwrap();
            let weights = std::fs::read(&path).unwrap();
            let json = std::fs::read(path.with_extension("json")).unwrap();
            match parser {
                Parser::Safetensors => (vec![weights], None),
                _ => (vec![json], Some(weights)),
            }
        }
        Parser::Pth => {
            let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
            let seeds = ["tiny_zip.pth", "tiny_legacy.pth"]
                .map(|f| std::fs::read(fixtures.join(f)).unwrap())
                .to_vec();
            (seeds, None)
        }
        Parser::RunJson => {
            // Today's descriptions, and the version-1 files convkit still reads.
            let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-v1");
            let mut seeds: Vec<Vec<u8>> = ["mnist", "scratch", "features", "finetune"]
                .map(|r| std::fs::read(fixtures.join(r).join("run.json")).unwrap())
                .to_vec();
            let train = presets::train("data".into(), "runs/a".into());
            let mnist = presets::mnist("runs/m".into());
            seeds.push(serde_json::to_vec_pretty(&train).unwrap());
            seeds.push(serde_json::to_vec_pretty(&mnist).unwrap());
            (seeds, None)
        }
    }
}

/// What one parser's run found.
struct Found {
    cases: usize,
    accepted: usize,
    slowest: Duration,
    panics: Vec<(Vec<u8>, String)>,
}

/// Runs the kept regressions, then `cases` mutations of the seeds, on a worker thread; a
/// case that takes over `limit` is a hang (the input is printed and kept).
fn fuzz(parser: Parser, cases: usize, seed: u64, limit: Duration) -> Found {
    let (sender, receiver) = mpsc::channel::<(usize, Vec<u8>)>();
    let (done_sender, done) = mpsc::channel::<Found>();
    std::thread::spawn(move || {
        let scratch = tempfile::tempdir().unwrap();
        let (seeds, companion) = seeds(parser, scratch.path());
        let regressions = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fuzz_regressions")
            .join(format!("{parser:?}").to_lowercase());
        let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(regressions)
            .map(|entries| {
                entries
                    .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        inputs.extend(seeds.iter().cloned());
        let mut draws = Draws(seed ^ (parser as u64) << 32);
        let mut found = Found {
            cases: 0,
            accepted: 0,
            slowest: Duration::ZERO,
            panics: Vec::new(),
        };
        let total = inputs.len() + cases;
        for i in 0..total {
            let input = match inputs.get(i) {
                Some(input) => input.clone(),
                None => mutate(&seeds[draws.below(seeds.len())], &mut draws),
            };
            sender.send((i, input.clone())).unwrap();
            let start = Instant::now();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                parse(parser, &input, scratch.path(), companion.as_deref())
            }));
            found.slowest = found.slowest.max(start.elapsed());
            found.cases += 1;
            match result {
                Ok(accepted) => found.accepted += usize::from(accepted),
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    found.panics.push((input, message));
                }
            }
        }
        drop(sender);
        done_sender.send(found).unwrap();
    });
    let mut last: Option<(usize, Vec<u8>)> = None;
    loop {
        match receiver.recv_timeout(limit) {
            Ok(case) => last = Some(case),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let (i, input) = last.unwrap_or_default();
                let kept = keep_failure(parser, &input);
                panic!("{parser:?}: case {i} ran over {limit:?}, a hang; input kept at {kept:?}");
            }
        }
    }
    done.recv().unwrap()
}

/// Writes a failing input where it can be turned into a regression.
fn keep_failure(parser: Parser, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &b in input {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let path = dir.join(format!("{parser:?}-{hash:016x}").to_lowercase());
    std::fs::write(&path, input).unwrap();
    path
}

#[test]
fn every_parser_answers_mutated_input_without_panicking_or_hanging() {
    let cases: usize = std::env::var("CONVKIT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let seed: u64 = std::env::var("CONVKIT_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    // Quiet the default hook: panics are collected and reported below.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    for parser in Parser::ALL {
        let start = Instant::now();
        let found = fuzz(parser, cases, seed, Duration::from_secs(20));
        eprintln!(
            "{parser:?}: {} cases ({} accepted, {} refused), {} panics, slowest {:.1} ms, {:.1} s",
            found.cases,
            found.accepted,
            found.cases - found.accepted - found.panics.len(),
            found.panics.len(),
            found.slowest.as_secs_f64() * 1e3,
            start.elapsed().as_secs_f64()
        );
        for (input, message) in &found.panics {
            let kept = keep_failure(parser, input);
            failures.push(format!(
                "{parser:?}: {message} (input kept at {})",
                kept.display()
            ));
        }
    }
    let _ = std::panic::take_hook();
    assert!(failures.is_empty(), "panics:\n{}", failures.join("\n"));
}
