//! The MNIST files: finding them, downloading them, reading and checking them.
//!
//! Fashion-MNIST ships in exactly the same four files, so [`load_mnist_dir`] reads it too;
//! locating and downloading are for MNIST itself.
//!
//! Functions that consult the environment or the working folder ([`locate_mnist`],
//! [`mnist_search_dirs`], [`mnist_cache_dir`], [`mnist_mirror`]) are thin wrappers over
//! variants that take those places as arguments ([`locate_mnist_in`],
//! [`locate_or_download_mnist_in`]), so the search order can be tested without touching
//! the process environment.

use std::path::{Path, PathBuf};

use crate::cache::{cache_dir, non_empty_env};
use crate::data::dataset::Dataset;
use crate::data::download::{download_verified, sha256_file};
use crate::data::idx::{read_idx, IdxArray};
use crate::error::{Error, Result};

/// Where the MNIST files are downloaded from by default (the mirror torchvision uses).
pub const DEFAULT_MNIST_MIRROR: &str = "https://ossci-datasets.s3.amazonaws.com/mnist/";

/// The four gzip files of MNIST and the sha256 of each, as published.
pub const MNIST_FILES: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    (
        "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
];

/// The class names of MNIST: label `i` is the digit `i`.
pub const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// The number of classes; every label must be below it.
const NUM_CLASSES: u8 = 10;

/// The four files' base names, in the order of [`MNIST_FILES`].
const STEMS: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The four arrays of MNIST or Fashion-MNIST, as read from their IDX files.
#[derive(Debug, Clone)]
pub struct MnistArrays {
    /// Training images, `N x H x W` (60000 x 28 x 28 for both datasets).
    pub train_images: IdxArray,
    /// Training labels, `N`, each in 0..10.
    pub train_labels: IdxArray,
    /// Test images, `M x H x W` (10000 x 28 x 28).
    pub test_images: IdxArray,
    /// Test labels, `M`, each in 0..10.
    pub test_labels: IdxArray,
}

/// The names a file with base name `stem` may have: gzipped, raw, and raw with the dot
/// some redistributions use (`train-images.idx3-ubyte`).
fn names_for(stem: &str) -> [String; 3] {
    [
        format!("{stem}.gz"),
        stem.to_string(),
        stem.replacen("-idx", ".idx", 1),
    ]
}

/// The first of the names for `stem` that is a file in `dir`.
fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    names_for(stem)
        .into_iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
}

/// Whether `dir` holds all four MNIST files, under any of the accepted names.
pub fn has_mnist_files(dir: &Path) -> bool {
    STEMS.iter().all(|stem| find_file(dir, stem).is_some())
}

/// Reads the four MNIST (or Fashion-MNIST) files in `dir` and checks that they fit
/// together.
///
/// Each file may be named `train-images-idx3-ubyte.gz`, `train-images-idx3-ubyte` or
/// `train-images.idx3-ubyte` (likewise `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
/// `t10k-labels-idx1-ubyte`), gzipped or not.
///
/// # Errors
/// [`Error::Io`] (kind `NotFound`) naming the expected file when one is missing;
/// [`Error::InvalidData`] naming the file when one is not a valid IDX file, images are not
/// `N x H x W`, labels are not one-dimensional, train and test images differ in size, the
/// image and label counts differ (both files and both counts are named), or a label is 10
/// or more (its index and value are named).
pub fn load_mnist_dir(dir: &Path) -> Result<MnistArrays> {
    let [train_images, train_labels, test_images, test_labels] =
        STEMS.map(|stem| locate_file(dir, stem));
    let (train_images, train_labels) = (train_images?, train_labels?);
    let (test_images, test_labels) = (test_images?, test_labels?);

    let train = read_pair(&train_images, &train_labels)?;
    let test = read_pair(&test_images, &test_labels)?;
    let (train_size, test_size) = (&train.0.dims[1..], &test.0.dims[1..]);
    if train_size != test_size {
        return Err(Error::invalid_data(
            &test_images,
            format!(
                "test images are {}, but the training images in {} are {}",
                shape(test_size),
                train_images.display(),
                shape(train_size)
            ),
        ));
    }
    Ok(MnistArrays {
        train_images: train.0,
        train_labels: train.1,
        test_images: test.0,
        test_labels: test.1,
    })
}

/// Reads MNIST from `dir` (see [`load_mnist_dir`]) as a training and a test [`Dataset`]:
/// images `u8` `(N, 1, 28, 28)`, labels `(N)`, classes [`MNIST_CLASSES`].
///
/// # Errors
/// As [`load_mnist_dir`].
pub fn load_mnist_datasets(dir: &Path) -> Result<(Dataset, Dataset)> {
    let arrays = load_mnist_dir(dir)?;
    let classes: Vec<String> = MNIST_CLASSES.iter().map(|c| c.to_string()).collect();
    let train = Dataset::from_idx(&arrays.train_images, &arrays.train_labels, classes.clone())?;
    let test = Dataset::from_idx(&arrays.test_images, &arrays.test_labels, classes)?;
    Ok((train, test))
}

/// The path of the file for `stem` in `dir`, or an error naming what was expected.
fn locate_file(dir: &Path, stem: &str) -> Result<PathBuf> {
    find_file(dir, stem).ok_or_else(|| {
        let [gz, raw, dotted] = names_for(stem);
        let reason = format!(
            "MNIST file not found (nor {raw} or {dotted} in {})",
            dir.display()
        );
        Error::io(
            dir.join(gz),
            std::io::Error::new(std::io::ErrorKind::NotFound, reason),
        )
    })
}

/// Reads one split's images and labels and checks their shapes, counts and label values.
fn read_pair(images_path: &Path, labels_path: &Path) -> Result<(IdxArray, IdxArray)> {
    let images = read_idx(images_path)?;
    if images.dims.len() != 3 {
        return Err(Error::invalid_data(
            images_path,
            format!(
                "images must be 3-dimensional (N x H x W), found shape {}",
                shape(&images.dims)
            ),
        ));
    }
    let labels = read_idx(labels_path)?;
    if labels.dims.len() != 1 {
        return Err(Error::invalid_data(
            labels_path,
            format!(
                "labels must be 1-dimensional, found shape {}",
                shape(&labels.dims)
            ),
        ));
    }
    if images.dims[0] != labels.dims[0] {
        return Err(Error::invalid_data(
            labels_path,
            format!(
                "holds {} labels, but {} holds {} images",
                labels.dims[0],
                images_path.display(),
                images.dims[0]
            ),
        ));
    }
    if let Some((index, &value)) = labels
        .data
        .iter()
        .enumerate()
        .find(|(_, &v)| v >= NUM_CLASSES)
    {
        return Err(Error::invalid_data(
            labels_path,
            format!(
                "label at index {index} is {value}; labels must be 0 to {}",
                NUM_CLASSES - 1
            ),
        ));
    }
    Ok((images, labels))
}

/// `[28, 28]` as `28x28`.
fn shape(dims: &[usize]) -> String {
    dims.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("x")
}

/// Finds the folder holding MNIST.
///
/// With `explicit`, only that folder and its `mnist` subfolder are tried: a folder the user
/// named is never silently replaced by another. Without it, [`mnist_search_dirs`] are tried
/// in order: `$CONVKIT_DATA/mnist`, `./data/mnist`, then [`mnist_cache_dir`].
///
/// # Errors
/// [`Error::DataMissing`] listing every folder tried.
pub fn locate_mnist(explicit: Option<&Path>) -> Result<PathBuf> {
    match explicit {
        Some(_) => locate_mnist_in(explicit, &[]),
        None => locate_mnist_in(None, &mnist_search_dirs()),
    }
}

/// [`locate_mnist`] with the folders to search given: `explicit` and its `mnist` subfolder
/// when given (and then nothing else), otherwise each of `candidates` in order.
///
/// # Errors
/// [`Error::DataMissing`] listing every folder tried.
pub fn locate_mnist_in(explicit: Option<&Path>, candidates: &[PathBuf]) -> Result<PathBuf> {
    let searched = match explicit {
        Some(dir) => vec![dir.to_path_buf(), dir.join("mnist")],
        None => candidates.to_vec(),
    };
    match searched.iter().find(|dir| has_mnist_files(dir)) {
        Some(dir) => Ok(dir.clone()),
        None => Err(mnist_missing(searched, None)),
    }
}

/// The error for MNIST in none of the folders `searched`: what is missing, where convkit
/// looked, then `fetch` (a sentence on why it could not be downloaded, when that was tried)
/// and how to supply the files by hand.
fn mnist_missing(searched: Vec<PathBuf>, fetch: Option<String>) -> Error {
    const BY_HAND: &str = "To supply it by hand, put the four files train-images-idx3-ubyte, \
         train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (gzipped \
         or not) in a folder and pass it with --data DIR, or set CONVKIT_DATA to a folder \
         holding them in mnist/.";
    Error::DataMissing {
        what: "MNIST".to_string(),
        searched,
        how: match fetch {
            Some(why) => format!("{why}\n{BY_HAND}"),
            None => BY_HAND.to_string(),
        },
    }
}

/// Finds MNIST like [`locate_mnist`]; when no folder was given and none holds it,
/// downloads it from `mirror` into [`mnist_cache_dir`] and returns that folder.
///
/// # Errors
/// [`Error::DataMissing`] when `explicit` does not hold MNIST, or when there is no cache
/// folder (neither `XDG_CACHE_HOME` nor `HOME` is set); the download's errors otherwise.
pub fn locate_or_download_mnist(
    explicit: Option<&Path>,
    mirror: &str,
    progress: bool,
) -> Result<PathBuf> {
    if explicit.is_some() {
        return locate_mnist_in(explicit, &[]);
    }
    let candidates = mnist_search_dirs();
    match mnist_cache_dir() {
        Some(cache) => locate_or_download_mnist_in(None, &candidates, &cache, mirror, progress),
        None => locate_mnist_in(None, &candidates).map_err(|err| match err {
            Error::DataMissing { searched, .. } => mnist_missing(
                searched,
                Some(
                    "There is no folder to download it into: neither XDG_CACHE_HOME nor HOME \
                     is set."
                        .to_string(),
                ),
            ),
            other => other,
        }),
    }
}

/// [`locate_or_download_mnist`] with the places given: searches like [`locate_mnist_in`]
/// and, when `explicit` is `None` and nothing is found, downloads into `download_dir`.
///
/// # Errors
/// As [`locate_mnist_in`] when `explicit` is given; the download's errors otherwise.
pub fn locate_or_download_mnist_in(
    explicit: Option<&Path>,
    candidates: &[PathBuf],
    download_dir: &Path,
    mirror: &str,
    progress: bool,
) -> Result<PathBuf> {
    match locate_mnist_in(explicit, candidates) {
        Err(Error::DataMissing { searched, .. }) if explicit.is_none() => {
            match download_mnist(mirror, download_dir, progress) {
                Ok(()) => Ok(download_dir.to_path_buf()),
                Err(err) => {
                    let why = format!(
                        "Could not download it into {}: {}.",
                        download_dir.display(),
                        err.to_string().trim_end_matches('.')
                    );
                    Err(mnist_missing(searched, Some(why)))
                }
            }
        }
        found => found,
    }
}

/// Downloads the four MNIST gzip files from `mirror` (a base url; the file names are
/// appended) into `dir`, checking each against [`MNIST_FILES`]. Files already in `dir`
/// with the right hash are not fetched again.
///
/// # Errors
/// See [`download_verified`].
pub fn download_mnist(mirror: &str, dir: &Path, progress: bool) -> Result<()> {
    download_files(mirror, dir, &MNIST_FILES, progress)
}

/// Downloads each `(name, sha256)` of `files` from `mirror` into `dir` unless it is there
/// already with the right hash.
fn download_files(mirror: &str, dir: &Path, files: &[(&str, &str)], progress: bool) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for &(name, sha256) in files {
        let dest = dir.join(name);
        // A file that cannot be hashed is simply fetched again (and replaced atomically).
        if dest.is_file()
            && sha256_file(&dest).is_ok_and(|actual| actual.eq_ignore_ascii_case(sha256))
        {
            continue;
        }
        download_verified(&join_url(mirror, name), &dest, sha256, progress)?;
    }
    Ok(())
}

/// `base` and `name` joined by exactly one `/`.
fn join_url(base: &str, name: &str) -> String {
    format!("{}/{name}", base.trim_end_matches('/'))
}

/// The folders searched for MNIST when none is given, in order: `$CONVKIT_DATA/mnist`
/// (when set), `./data/mnist`, then [`mnist_cache_dir`] (when there is one).
pub fn mnist_search_dirs() -> Vec<PathBuf> {
    let data = non_empty_env("CONVKIT_DATA").map(|d| PathBuf::from(d).join("mnist"));
    let local = std::env::current_dir()
        .unwrap_or_default()
        .join("data")
        .join("mnist");
    data.into_iter()
        .chain(Some(local))
        .chain(mnist_cache_dir())
        .collect()
}

/// The folder MNIST is downloaded into: `mnist` in [`cache_root`](crate::cache::cache_root),
/// `~/.cache/convkit/mnist` by default; `None` when there is no home folder.
pub fn mnist_cache_dir() -> Option<PathBuf> {
    cache_dir("mnist")
}

/// The mirror to download MNIST from: `$CONVKIT_MNIST_MIRROR` when set, else
/// [`DEFAULT_MNIST_MIRROR`].
pub fn mnist_mirror() -> String {
    non_empty_env("CONVKIT_MNIST_MIRROR")
        .map(|m| m.to_string_lossy().into_owned())
        .unwrap_or_else(|| DEFAULT_MNIST_MIRROR.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::download::test_server::FileServer;
    use crate::data::idx::test_util::{gzip, idx_bytes};

    /// `$CONVKIT_DATA/mnist`, or `None` after printing why the test is skipped.
    fn real_mnist_dir() -> Option<PathBuf> {
        match std::env::var_os("CONVKIT_DATA") {
            Some(data) => Some(PathBuf::from(data).join("mnist")),
            None => {
                eprintln!("skipped: set CONVKIT_DATA to the shared data folder to run this test");
                None
            }
        }
    }

    fn histogram(labels: &[u8]) -> [usize; 10] {
        let mut counts = [0; 10];
        for &l in labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// Writes a small consistent MNIST-like set (`n_train`/`n_test` images of 2x3) into
    /// `dir`, under the given names in [`STEMS`] order, gzipping names ending in `.gz`.
    fn write_fake(dir: &Path, names: [&str; 4], n_train: u32, n_test: u32) {
        let images = |n: u32| idx_bytes(&[n, 2, 3], &vec![128; n as usize * 6]);
        let labels = |n: u32| idx_bytes(&[n], &(0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>());
        let contents = [
            images(n_train),
            labels(n_train),
            images(n_test),
            labels(n_test),
        ];
        for (name, bytes) in names.iter().zip(contents) {
            let bytes = if name.ends_with(".gz") {
                gzip(&bytes)
            } else {
                bytes
            };
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }

    const GZ_NAMES: [&str; 4] = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ];

    #[test]
    fn loads_the_real_mnist_with_the_published_counts() {
        let Some(dir) = real_mnist_dir() else { return };
        let mnist = load_mnist_dir(&dir).unwrap();
        assert_eq!(mnist.train_images.dims, vec![60000, 28, 28]);
        assert_eq!(mnist.train_labels.dims, vec![60000]);
        assert_eq!(mnist.test_images.dims, vec![10000, 28, 28]);
        assert_eq!(mnist.test_labels.dims, vec![10000]);
        assert_eq!(
            histogram(&mnist.train_labels.data),
            [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
        );
        assert_eq!(
            histogram(&mnist.test_labels.data),
            [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
        );
    }

    #[test]
    fn the_real_files_match_the_published_hashes() {
        let Some(dir) = real_mnist_dir() else { return };
        for (name, sha256) in MNIST_FILES {
            assert_eq!(sha256_file(&dir.join(name)).unwrap(), sha256, "{name}");
        }
    }

    #[test]
    fn loads_fashion_mnist_with_the_same_layout() {
        let Some(dir) = real_mnist_dir() else { return };
        let dir = dir.with_file_name("fashion-mnist");
        let fashion = load_mnist_dir(&dir).unwrap();
        assert_eq!(fashion.train_images.dims, vec![60000, 28, 28]);
        assert_eq!(histogram(&fashion.test_labels.data), [1000; 10]);
    }

    #[test]
    fn accepts_every_naming_scheme() {
        let schemes = [
            GZ_NAMES,
            [
                "train-images-idx3-ubyte",
                "train-labels-idx1-ubyte",
                "t10k-images-idx3-ubyte",
                "t10k-labels-idx1-ubyte",
            ],
            [
                "train-images.idx3-ubyte",
                "train-labels.idx1-ubyte",
                "t10k-images.idx3-ubyte",
                "t10k-labels.idx1-ubyte",
            ],
        ];
        for names in schemes {
            let dir = tempfile::tempdir().unwrap();
            assert!(!has_mnist_files(dir.path()));
            write_fake(dir.path(), names, 20, 10);
            assert!(has_mnist_files(dir.path()), "{names:?}");
            let mnist = load_mnist_dir(dir.path()).unwrap();
            assert_eq!(mnist.train_images.dims, vec![20, 2, 3]);
            assert_eq!(mnist.test_labels.data, (0..10).collect::<Vec<u8>>());
        }
    }

    #[test]
    fn loads_as_datasets_with_a_channel_axis_and_digit_classes() {
        let dir = tempfile::tempdir().unwrap();
        write_fake(dir.path(), GZ_NAMES, 20, 10);
        let (train, test) = load_mnist_datasets(dir.path()).unwrap();
        assert_eq!((train.len(), test.len()), (20, 10));
        assert_eq!(train.images().size(), vec![20, 1, 2, 3]);
        assert_eq!(test.classes(), MNIST_CLASSES.map(String::from));
    }

    #[test]
    fn a_missing_file_is_named_with_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        write_fake(dir.path(), GZ_NAMES, 20, 10);
        std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
        assert!(!has_mnist_files(dir.path()));
        let err = load_mnist_dir(dir.path()).unwrap_err();
        assert!(
            matches!(&err, Error::Io { reason, .. } if reason.kind() == std::io::ErrorKind::NotFound)
        );
        let msg = err.to_string();
        assert!(
            msg.contains(
                &dir.path()
                    .join("t10k-labels-idx1-ubyte.gz")
                    .display()
                    .to_string()
            ),
            "{msg}"
        );
        assert!(msg.contains("t10k-labels.idx1-ubyte"), "{msg}");
    }

    #[test]
    fn mismatched_label_count_names_both_files_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        write_fake(dir.path(), GZ_NAMES, 20, 10);
        std::fs::write(
            dir.path().join(GZ_NAMES[1]),
            gzip(&idx_bytes(&[19], &[1; 19])),
        )
        .unwrap();
        let msg = load_mnist_dir(dir.path()).unwrap_err().to_string();
        assert!(
            msg.contains("train-labels-idx1-ubyte.gz")
                && msg.contains("train-images-idx3-ubyte.gz"),
            "{msg}"
        );
        assert!(
            msg.contains("19 labels") && msg.contains("20 images"),
            "{msg}"
        );
    }

    #[test]
    fn a_label_out_of_range_is_named_with_its_index() {
        let dir = tempfile::tempdir().unwrap();
        write_fake(dir.path(), GZ_NAMES, 20, 10);
        let mut labels = vec![3u8; 10];
        labels[7] = 11;
        std::fs::write(
            dir.path().join(GZ_NAMES[3]),
            gzip(&idx_bytes(&[10], &labels)),
        )
        .unwrap();
        let msg = load_mnist_dir(dir.path()).unwrap_err().to_string();
        assert!(msg.contains("t10k-labels-idx1-ubyte.gz"), "{msg}");
        assert!(msg.contains("index 7 is 11"), "{msg}");
    }

    #[test]
    fn wrong_shapes_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        write_fake(dir.path(), GZ_NAMES, 20, 10);
        std::fs::write(
            dir.path().join(GZ_NAMES[2]),
            gzip(&idx_bytes(&[10, 3, 2], &[0; 60])),
        )
        .unwrap();
        let msg = load_mnist_dir(dir.path()).unwrap_err().to_string();
        assert!(
            msg.contains("t10k-images-idx3-ubyte.gz") && msg.contains("3x2") && msg.contains("2x3"),
            "{msg}"
        );

        std::fs::write(
            dir.path().join(GZ_NAMES[2]),
            gzip(&idx_bytes(&[10, 6], &[0; 60])),
        )
        .unwrap();
        let msg = load_mnist_dir(dir.path()).unwrap_err().to_string();
        assert!(
            msg.contains("t10k-images-idx3-ubyte.gz") && msg.contains("3-dimensional"),
            "{msg}"
        );

        write_fake(dir.path(), GZ_NAMES, 20, 10);
        std::fs::write(
            dir.path().join(GZ_NAMES[1]),
            gzip(&idx_bytes(&[20, 1], &[0; 20])),
        )
        .unwrap();
        let msg = load_mnist_dir(dir.path()).unwrap_err().to_string();
        assert!(
            msg.contains("train-labels-idx1-ubyte.gz") && msg.contains("1-dimensional"),
            "{msg}"
        );
    }

    #[test]
    fn locate_takes_the_first_candidate_with_the_files() {
        let root = tempfile::tempdir().unwrap();
        let [empty, first, second] = ["empty", "first", "second"].map(|d| root.path().join(d));
        for dir in [&empty, &first, &second] {
            std::fs::create_dir(dir).unwrap();
        }
        write_fake(&first, GZ_NAMES, 20, 10);
        write_fake(&second, GZ_NAMES, 20, 10);
        let missing = root.path().join("does-not-exist");
        let candidates = [missing, empty, first.clone(), second];
        assert_eq!(locate_mnist_in(None, &candidates).unwrap(), first);
    }

    #[test]
    fn locate_lists_every_folder_searched() {
        let root = tempfile::tempdir().unwrap();
        let candidates = [root.path().join("a"), root.path().join("b")];
        match locate_mnist_in(None, &candidates).unwrap_err() {
            Error::DataMissing {
                what,
                searched,
                how,
            } => {
                assert_eq!(what, "MNIST");
                assert!(how.contains("--data DIR"), "{how}");
                assert_eq!(searched, candidates);
            }
            other => panic!("expected DataMissing, got {other:?}"),
        }
    }

    #[test]
    fn an_explicit_folder_or_its_mnist_subfolder_is_used_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let elsewhere = root.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        write_fake(&elsewhere, GZ_NAMES, 20, 10);
        let candidates = [elsewhere];

        let given = root.path().join("given");
        std::fs::create_dir_all(given.join("mnist")).unwrap();
        match locate_mnist_in(Some(&given), &candidates).unwrap_err() {
            Error::DataMissing { searched, .. } => {
                assert_eq!(searched, vec![given.clone(), given.join("mnist")])
            }
            other => panic!("expected DataMissing, got {other:?}"),
        }

        write_fake(&given.join("mnist"), GZ_NAMES, 20, 10);
        assert_eq!(
            locate_mnist_in(Some(&given), &candidates).unwrap(),
            given.join("mnist")
        );
        write_fake(&given, GZ_NAMES, 20, 10);
        assert_eq!(locate_mnist_in(Some(&given), &candidates).unwrap(), given);
    }

    #[test]
    fn an_explicit_folder_is_never_replaced_by_a_download() {
        let root = tempfile::tempdir().unwrap();
        let given = root.path().join("given");
        let cache = root.path().join("cache");
        // No server: an attempt to download would fail with a Download error instead.
        let err =
            locate_or_download_mnist_in(Some(&given), &[], &cache, "http://127.0.0.1:9/", false)
                .unwrap_err();
        assert!(matches!(err, Error::DataMissing { .. }), "{err:?}");
        assert!(!cache.exists());
    }

    /// Without network, the error lists where convkit looked and says how to supply the
    /// files by hand.
    #[test]
    fn a_failed_download_says_how_to_supply_the_files() {
        let root = tempfile::tempdir().unwrap();
        let candidates = [root.path().join("a")];
        let cache = root.path().join("cache");
        let err =
            locate_or_download_mnist_in(None, &candidates, &cache, "http://127.0.0.1:9/", false)
                .unwrap_err()
                .to_string();
        for needle in [
            "Could not download it into",
            "--data DIR",
            "CONVKIT_DATA",
            "t10k-labels-idx1-ubyte",
        ] {
            assert!(err.contains(needle), "{needle} missing from: {err}");
        }
        assert!(
            err.contains(&root.path().join("a").display().to_string()),
            "{err}"
        );
    }

    /// The message reads in order, one statement a line: what is missing, every folder
    /// searched, why the download failed (naming the mirror), then how to supply the files.
    #[test]
    fn a_failed_download_reads_what_where_then_how() {
        let root = tempfile::tempdir().unwrap();
        let candidates = [root.path().join("a"), root.path().join("b")];
        let cache = root.path().join("cache");
        let err =
            locate_or_download_mnist_in(None, &candidates, &cache, "http://127.0.0.1:9/", false)
                .unwrap_err()
                .to_string();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 6, "{err}");
        assert_eq!(lines[0], "MNIST not found.", "{err}");
        assert_eq!(lines[1], "Looked in:", "{err}");
        assert_eq!(lines[2], format!("  {}", candidates[0].display()), "{err}");
        assert_eq!(lines[3], format!("  {}", candidates[1].display()), "{err}");
        let download = format!("Could not download it into {}: ", cache.display());
        assert!(
            lines[4].starts_with(&download)
                && lines[4].contains("http://127.0.0.1:9/")
                && lines[4].ends_with('.'),
            "{err}"
        );
        assert!(
            lines[5].starts_with("To supply it by hand, put the four files")
                && lines[5].contains("--data DIR")
                && lines[5].contains("CONVKIT_DATA")
                && lines[5].ends_with('.'),
            "{err}"
        );
    }

    #[test]
    fn urls_are_joined_with_one_slash() {
        assert_eq!(join_url("http://h/mnist/", "a.gz"), "http://h/mnist/a.gz");
        assert_eq!(join_url("http://h/mnist", "a.gz"), "http://h/mnist/a.gz");
        assert!(DEFAULT_MNIST_MIRROR.ends_with('/'));
    }

    #[test]
    fn download_skips_files_already_present_with_the_right_hash() {
        let served = tempfile::tempdir().unwrap();
        let files = [
            ("a.bin", b"first".as_slice()),
            ("b.bin", b"second".as_slice()),
        ];
        let hashes: Vec<(&str, String)> = files
            .iter()
            .map(|(name, content)| {
                std::fs::write(served.path().join(name), content).unwrap();
                (*name, sha256_file(&served.path().join(name)).unwrap())
            })
            .collect();
        let list: Vec<(&str, &str)> = hashes.iter().map(|(n, h)| (*n, h.as_str())).collect();
        let server = FileServer::serve(served.path().to_path_buf());

        let out = tempfile::tempdir().unwrap();
        std::fs::write(out.path().join("a.bin"), b"first").unwrap();
        download_files(&server.url, out.path(), &list, false).unwrap();
        assert_eq!(*server.requests.lock().unwrap(), vec!["b.bin".to_string()]);
        assert_eq!(std::fs::read(out.path().join("b.bin")).unwrap(), b"second");

        // A present file with the wrong content is fetched again.
        std::fs::write(out.path().join("a.bin"), b"stale").unwrap();
        download_files(&server.url, out.path(), &list, false).unwrap();
        assert_eq!(std::fs::read(out.path().join("a.bin")).unwrap(), b"first");
    }

    #[test]
    fn downloads_mnist_from_a_local_mirror_and_loads_it() {
        let Some(real) = real_mnist_dir() else { return };
        let server = FileServer::serve(real);
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("cache").join("mnist");
        let candidates = [root.path().join("nothing-here")];
        let found =
            locate_or_download_mnist_in(None, &candidates, &cache, &server.url, false).unwrap();
        assert_eq!(found, cache);
        let mnist = load_mnist_dir(&found).unwrap();
        assert_eq!(mnist.test_images.dims, vec![10000, 28, 28]);
        assert_eq!(
            std::fs::read_dir(&cache).unwrap().count(),
            4,
            "temporary files were left"
        );

        // Found in the cache now: nothing more is fetched.
        let before = server.requests.lock().unwrap().len();
        assert_eq!(
            locate_or_download_mnist_in(
                None,
                std::slice::from_ref(&cache),
                &cache,
                &server.url,
                false
            )
            .unwrap(),
            cache
        );
        assert_eq!(server.requests.lock().unwrap().len(), before);
    }

    #[test]
    fn a_mirror_without_the_files_gives_a_clear_error() {
        let empty = tempfile::tempdir().unwrap();
        let server = FileServer::serve(empty.path().to_path_buf());
        let out = tempfile::tempdir().unwrap();
        let err = download_mnist(&server.url, out.path(), false).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("train-images-idx3-ubyte.gz") && msg.contains("404"),
            "{msg}"
        );
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    }
}
