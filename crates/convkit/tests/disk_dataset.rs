//! Iterating a decoded-image cache on disk keeps resident memory bounded, whatever the
//! dataset's size: the pages read through the mapping are handed back after each batch.
//!
//! The CI test reads 3,000 images (about 290 MB decoded); the ignored one 50,000 (about
//! 4.9 GB decoded), by hand:
//!
//! ```text
//! TMPDIR=/big/disk cargo xtask test -p convkit --release --test disk_dataset -- --ignored --nocapture
//! ```
//!
//! Each test binary runs its tests one at a time (`.cargo/config.toml`), so the process's
//! memory is this test's alone.

use std::path::Path;
use std::time::Instant;

use convkit::data::image_folder::{ImageFolder, ImageOptions};
use convkit::data::{shuffled_order, DiskDataset, ImageDataset};
use image::{ImageFormat, Rgb, RgbImage};
use rayon::prelude::*;

const SIDE: u32 = 180;
const DECODED_BYTES: u64 = 3 * 180 * 180;

/// Writes `n` JPEGs of 180 x 180 in two classes, each different (gradients and noise,
/// about 10-20 KB each), on all cores.
fn generate_folder(root: &Path, n: usize) {
    for class in ["cats", "dogs"] {
        std::fs::create_dir_all(root.join(class)).unwrap();
    }
    (0..n).into_par_iter().for_each(|i| {
        let mut state = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let image = RgbImage::from_fn(SIDE, SIDE, |x, y| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state & 0x3f) as u32;
            Rgb([
                ((x + i as u32) % 256) as u8,
                ((y * 2 + noise) % 256) as u8,
                ((x + y + 3 * i as u32 + noise) % 256) as u8,
            ])
        });
        let class = if i % 2 == 0 { "cats" } else { "dogs" };
        image
            .save_with_format(
                root.join(class).join(format!("{i:06}.jpg")),
                ImageFormat::Jpeg,
            )
            .unwrap();
    });
}

/// A field of `/proc/self/status` in bytes, such as `VmHWM` (peak resident) or `VmRSS`.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// Resets `VmHWM` to the current resident size (Linux 4.0+), so that a later reading is
/// the peak of what follows.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak resident size");
}

const MB: f64 = (1 << 20) as f64;

struct Measured {
    build_s: f64,
    build_peak_growth: u64,
    reopen_s: f64,
    epoch_s: f64,
    epoch_peak_growth: u64,
    peak: u64,
    /// One epoch of `train::fit` (a small convnet) over the cache.
    fit_s: f64,
    /// VmHWM after it.
    peak_after_fit: u64,
}

/// Trains a small, cheap convnet for one epoch over `data` (pooling first, so that the
/// time goes to reading the cache) and returns the seconds it took.
fn fit_one_epoch(data: &DiskDataset) -> f64 {
    use convkit::models::Sequential;
    use convkit::nn::Activation;
    use convkit::train::FitConfig;
    let spec = Sequential::new("cheap", [3, 180, 180])
        .rescaling(1.0 / 255.0)
        .max_pool2d(4)
        .conv2d(8, 3, Activation::Relu)
        .max_pool2d(4)
        .flatten()
        .dense(2, Activation::Softmax);
    let mut model = convkit::Model::new(&spec, tch::Device::Cpu, 1).unwrap();
    let started = Instant::now();
    let config = FitConfig {
        batch_size: 32,
        ..FitConfig::default()
    };
    let history = convkit::train::fit(&mut model, data, None, &config, &mut []).unwrap();
    assert_eq!(history.epochs.len(), 1);
    started.elapsed().as_secs_f64()
}

/// Generates `n` images, builds their cache, reopens it, iterates one shuffled epoch in
/// batches of 32 checking every batch, and measures each step.
fn build_and_iterate(n: usize) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    generate_folder(&dir.path().join("train"), n);
    eprintln!(
        "generated {n} JPEGs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let folder = ImageFolder::scan(&dir.path().join("train")).unwrap();
    let options = ImageOptions::default();
    let cache = dir.path().join("cache");

    reset_peak();
    let base = status_bytes("VmRSS");
    let started = Instant::now();
    let built = DiskDataset::open_or_build(&folder, &options, &cache, true, false).unwrap();
    let build_s = started.elapsed().as_secs_f64();
    let build_peak_growth = status_bytes("VmHWM").saturating_sub(base);
    assert!(built.built());
    assert_eq!(built.len(), n);
    drop(built);

    let started = Instant::now();
    let data = DiskDataset::open_or_build(&folder, &options, &cache, true, false).unwrap();
    let reopen_s = started.elapsed().as_secs_f64();
    assert!(!data.built());

    // Files sort by class, then name: the first half of the indices are cats (label 0).
    let order = shuffled_order(n, 11);
    reset_peak();
    let base = status_bytes("VmRSS");
    let started = Instant::now();
    let mut seen = 0;
    let (anon0, file0) = (status_bytes("RssAnon"), status_bytes("RssFile"));
    let (mut max_anon, mut max_file) = (0, 0);
    for (b, batch) in data.batches_in(Some(order.clone()), 32).enumerate() {
        let batch = batch.unwrap();
        let size = batch.images.size()[0] as usize;
        assert_eq!(batch.images.size()[1..], [3, 180, 180]);
        let labels = Vec::<i64>::try_from(&batch.labels).unwrap();
        for (j, label) in labels.iter().enumerate() {
            assert_eq!(*label, (order[b * 32 + j] as usize >= n / 2) as i64);
        }
        seen += size;
        max_anon = max_anon.max(status_bytes("RssAnon"));
        max_file = max_file.max(status_bytes("RssFile"));
    }
    eprintln!(
        "while iterating: RssAnon at most {:.0} MB (from {:.0}), RssFile at most {:.0} MB (from {:.0})",
        max_anon as f64 / MB, anon0 as f64 / MB, max_file as f64 / MB, file0 as f64 / MB
    );
    let epoch_s = started.elapsed().as_secs_f64();
    let epoch_peak_growth = status_bytes("VmHWM").saturating_sub(base);
    assert_eq!(seen, n);
    let peak = status_bytes("VmHWM");
    let fit_s = fit_one_epoch(&data);
    let mut measured = Measured {
        build_s,
        build_peak_growth,
        reopen_s,
        epoch_s,
        epoch_peak_growth,
        peak,
        fit_s,
        peak_after_fit: 0,
    };
    measured.peak_after_fit = status_bytes("VmHWM");
    eprintln!(
        "fit, one epoch of a small convnet: {:.1} s = {:.0} images/s, VmHWM after it {:.0} MB",
        measured.fit_s,
        n as f64 / measured.fit_s,
        measured.peak_after_fit as f64 / MB
    );
    eprintln!(
        "{n} images ({:.0} MB decoded): build {:.1} s (peak +{:.0} MB), reopen (hash) {:.2} s, \
         epoch {:.2} s = {:.0} images/s (peak +{:.0} MB), VmHWM after the epoch {:.0} MB, cache file {:.0} MB",
        (n as u64 * DECODED_BYTES) as f64 / MB,
        measured.build_s,
        measured.build_peak_growth as f64 / MB,
        measured.reopen_s,
        measured.epoch_s,
        n as f64 / measured.epoch_s,
        measured.epoch_peak_growth as f64 / MB,
        measured.peak as f64 / MB,
        std::fs::metadata(data.path()).unwrap().len() as f64 / MB,
    );
    measured
}

#[test]
fn iterating_an_epoch_keeps_resident_memory_bounded() {
    let n = 3_000;
    let decoded = n as u64 * DECODED_BYTES; // about 290 MB
    let measured = build_and_iterate(n);
    // The batches in flight (a few of 3 MB) and the allocator's slack, not the file.
    assert!(
        measured.epoch_peak_growth < 64 << 20 && measured.epoch_peak_growth < decoded / 4,
        "resident memory grew by {} MB while iterating {} MB of images",
        measured.epoch_peak_growth >> 20,
        decoded >> 20
    );
    assert!(
        measured.build_peak_growth < decoded / 2,
        "building took {} MB for {} MB of images",
        measured.build_peak_growth >> 20,
        decoded >> 20
    );
}

#[test]
#[ignore = "50,000 images, 4.9 GB decoded: minutes and 6 GB of disk; run by hand"]
fn fifty_thousand_images_stay_under_two_gigabytes() {
    let measured = build_and_iterate(50_000);
    assert!(
        measured.peak_after_fit < 2 << 30,
        "peak resident memory {} MB (training included)",
        measured.peak_after_fit >> 20
    );
}

/// Throughput and memory of a shuffled epoch of the real cats-vs-dogs training split
/// (`$CONVKIT_DATA/cats_vs_dogs/train`, 2,000 JPEGs at 180 x 180) from the disk cache and
/// from memory, by hand:
///
/// ```text
/// CONVKIT_DATA=... cargo xtask test -p convkit --release --test disk_dataset -- --ignored --nocapture cats
/// ```
#[test]
#[ignore = "a measurement on the real data, by hand"]
fn cats_vs_dogs_epoch_from_disk_and_from_memory() {
    let Some(root) = std::env::var_os("CONVKIT_DATA")
        .map(|d| Path::new(&d).join("cats_vs_dogs").join("train"))
        .filter(|p| p.is_dir())
    else {
        eprintln!("skipped: no $CONVKIT_DATA/cats_vs_dogs/train");
        return;
    };
    let folder = ImageFolder::scan(&root).unwrap();
    let options = ImageOptions::default();
    let order = shuffled_order(folder.files.len(), 3);
    let epoch = |data: &dyn ImageDataset| {
        let started = Instant::now();
        let mut seen = 0;
        for batch in data.batches_in(Some(order.clone()), 32) {
            seen += batch.unwrap().images.size()[0] as usize;
        }
        assert_eq!(seen, folder.files.len());
        seen as f64 / started.elapsed().as_secs_f64()
    };
    let dir = tempfile::tempdir().unwrap();

    reset_peak();
    let base = status_bytes("VmRSS");
    let started = Instant::now();
    let disk = DiskDataset::open_or_build(&folder, &options, dir.path(), true, false).unwrap();
    let build_s = started.elapsed().as_secs_f64();
    let build_peak = status_bytes("VmHWM") - base;
    drop(disk);
    let started = Instant::now();
    let disk = DiskDataset::open_or_build(&folder, &options, dir.path(), true, false).unwrap();
    let reopen_s = started.elapsed().as_secs_f64();
    let _warm = epoch(&disk);
    reset_peak();
    let base = status_bytes("VmRSS");
    let disk_rate = (0..3).map(|_| epoch(&disk)).fold(0.0, f64::max);
    let disk_peak = status_bytes("VmHWM") - base;

    // The alternative to the mapping: pread each image from the file into the batch.
    let pread_epoch = || {
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::open(disk.path()).unwrap();
        let bytes = DECODED_BYTES as usize;
        let started = Instant::now();
        for batch in order.chunks(32) {
            let mut pixels = vec![0u8; batch.len() * bytes];
            for (&i, target) in batch.iter().zip(pixels.chunks_exact_mut(bytes)) {
                file.read_exact_at(target, 4096 + i as u64 * bytes as u64)
                    .unwrap();
            }
            let images =
                convkit::tch::Tensor::from_slice(&pixels).view([batch.len() as i64, 3, 180, 180]);
            assert_eq!(images.size()[0], batch.len() as i64);
        }
        order.len() as f64 / started.elapsed().as_secs_f64()
    };
    reset_peak();
    let base = status_bytes("VmRSS");
    let pread_rate = (0..3).map(|_| pread_epoch()).fold(0.0, f64::max);
    let pread_peak = status_bytes("VmHWM") - base;
    drop(disk);

    reset_peak();
    let base = status_bytes("VmRSS");
    let started = Instant::now();
    let memory = folder.load(&options, true).unwrap().dataset;
    let load_s = started.elapsed().as_secs_f64();
    let load_peak = status_bytes("VmHWM") - base;
    let _warm = epoch(&memory);
    reset_peak();
    let base = status_bytes("VmRSS");
    let memory_rate = (0..3).map(|_| epoch(&memory)).fold(0.0, f64::max);
    let memory_peak = status_bytes("VmHWM") - base;
    let held = status_bytes("VmRSS");

    eprintln!("cats_vs_dogs train, {} images:", folder.files.len());
    eprintln!(
        "  disk cache: build {build_s:.2} s (peak +{:.0} MB), reopen (hash) {reopen_s:.3} s, \
         epoch {disk_rate:.0} images/s (peak +{:.1} MB while iterating)",
        build_peak as f64 / MB,
        disk_peak as f64 / MB
    );
    eprintln!(
        "  pread from the cache file, no prefetch thread: {pread_rate:.0} images/s (peak +{:.1} MB)",
        pread_peak as f64 / MB
    );
    eprintln!(
        "  in memory:  ImageFolder::load {load_s:.2} s (peak +{:.0} MB), \
         epoch {memory_rate:.0} images/s (peak +{:.1} MB while iterating, {:.0} MB resident)",
        load_peak as f64 / MB,
        memory_peak as f64 / MB,
        held as f64 / MB
    );
}
