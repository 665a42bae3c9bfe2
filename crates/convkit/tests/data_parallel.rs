//! Data-parallel `fit` over Gloo on 127.0.0.1: two processes (this test binary run again as
//! workers, one libtorch thread each) end with the weights of one process trained on the
//! doubled batch, and a resumed two-process run ends as an uninterrupted one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use convkit::data::Dataset;
use convkit::models::Sequential;
use convkit::nn::Activation;
use convkit::train::{FitConfig, History, Optimizer};
use convkit::Model;
use tch::{Device, Kind, Tensor};

/// Set in the environment of a worker: the job it runs (see [`worker`]).
const ROLE: &str = "CONVKIT_TEST_DATA_PARALLEL_ROLE";
/// Where a worker writes its weights and history.
const OUT: &str = "CONVKIT_TEST_DATA_PARALLEL_OUT";
/// A worker's state folder (its own: rank 0's state is everybody's).
const STATE: &str = "CONVKIT_TEST_DATA_PARALLEL_STATE";
/// Epochs a worker trains for.
const EPOCHS: &str = "CONVKIT_TEST_DATA_PARALLEL_EPOCHS";

const PER_PROCESS_BATCH: usize = 8;

/// 64 random images and labels, the same in every process.
fn data(seed: i64) -> Dataset {
    tch::manual_seed(seed);
    let images = Tensor::randint(256, [64, 3, 12, 12], (Kind::Uint8, Device::Cpu));
    let labels = Tensor::randint(2, [64], (Kind::Int64, Device::Cpu));
    Dataset::new(images, labels, vec!["a".into(), "b".into()]).unwrap()
}

/// A small convnet without dropout or augmentation.
fn model() -> Model {
    let spec = Sequential::new("small", [3, 12, 12])
        .rescaling(1.0 / 255.0)
        .conv2d(6, 3, Activation::Relu)
        .max_pool2d(2)
        .flatten()
        .dense(2, Activation::Softmax);
    Model::new(&spec, Device::Cpu, 5).unwrap()
}

fn train(batch_size: usize, epochs: usize, state_dir: Option<PathBuf>) -> (Model, History) {
    let mut model = model();
    let config = FitConfig {
        epochs,
        batch_size,
        optimizer: Optimizer::rmsprop().with_learning_rate(1e-2),
        seed: 3,
        precision: None,
        state_dir,
        ..FitConfig::default()
    };
    let history =
        convkit::train::fit(&mut model, &data(1), Some(&data(2)), &config, &mut []).unwrap();
    (model, history)
}

fn save(model: &Model, history: &History, out: &Path) {
    model.save(&out.join("model.safetensors")).unwrap();
    std::fs::write(
        out.join("history.json"),
        serde_json::to_vec(&history.epochs).unwrap(),
    )
    .unwrap();
}

/// The worker's side: joins the group from the environment, trains, writes its results.
#[test]
fn worker() {
    let Ok(role) = std::env::var(ROLE) else {
        return; // run as a plain test: nothing to do
    };
    assert_eq!(role, "fit");
    tch::set_num_threads(1);
    let joined = convkit::distributed::init_from_env(Device::Cpu, Duration::from_secs(60)).unwrap();
    assert!(joined.is_some(), "the worker's environment names no run");
    let epochs = std::env::var(EPOCHS).unwrap().parse().unwrap();
    let state = std::env::var(STATE).ok().map(PathBuf::from);
    let (model, history) = train(PER_PROCESS_BATCH, epochs, state);
    save(&model, &history, Path::new(&std::env::var(OUT).unwrap()));
    convkit::distributed::destroy_process_group();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `world` workers of `fit` for `epochs`, rank `r` writing to `outs[r]` and keeping
/// its state in `states[r]`.
fn run_workers(outs: &[PathBuf], states: &[PathBuf], epochs: usize) {
    let port = free_port().to_string();
    let world = outs.len();
    let children: Vec<_> = (0..world)
        .map(|rank| {
            std::fs::create_dir_all(&outs[rank]).unwrap();
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "worker", "--nocapture", "--test-threads=1"])
                .env(ROLE, "fit")
                .env(OUT, &outs[rank])
                .env(STATE, &states[rank])
                .env(EPOCHS, epochs.to_string())
                .env("RANK", rank.to_string())
                .env("LOCAL_RANK", rank.to_string())
                .env("WORLD_SIZE", world.to_string())
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", &port)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (rank, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success() && outs[rank].join("model.safetensors").is_file(),
            "rank {rank} failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn weights(path: &Path) -> Vec<(String, Vec<f32>)> {
    let mut vars: Vec<(String, Vec<f32>)> = Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

fn max_difference(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> f32 {
    assert_eq!(
        a.iter().map(|v| &v.0).collect::<Vec<_>>(),
        b.iter().map(|v| &v.0).collect::<Vec<_>>()
    );
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.1.iter().zip(&y.1).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

fn history(out: &Path) -> Vec<convkit::train::EpochRecord> {
    serde_json::from_slice(&std::fs::read(out.join("history.json")).unwrap()).unwrap()
}

#[test]
fn two_processes_end_as_one_on_the_doubled_batch() {
    let dir = tempfile::tempdir().unwrap();
    let outs: Vec<PathBuf> = (0..2)
        .map(|r| dir.path().join(format!("rank{r}")))
        .collect();
    let states: Vec<PathBuf> = (0..2)
        .map(|r| dir.path().join(format!("state{r}")))
        .collect();
    run_workers(&outs, &states, 3);

    tch::set_num_threads(1);
    let (alone, alone_history) = train(2 * PER_PROCESS_BATCH, 3, None);
    let alone_path = dir.path().join("alone.safetensors");
    alone.save(&alone_path).unwrap();

    let (rank0, rank1) = (
        weights(&outs[0].join("model.safetensors")),
        weights(&outs[1].join("model.safetensors")),
    );
    assert_eq!(max_difference(&rank0, &rank1), 0.0, "the ranks disagree");
    let difference = max_difference(&rank0, &weights(&alone_path));
    assert!(difference < 1e-5, "max |difference| {difference}");
    // Loss and accuracy are over all the samples, as one process sees them.
    let (together, alone_history) = (history(&outs[0]), alone_history.epochs);
    assert_eq!(together.len(), 3);
    for (t, a) in together.iter().zip(&alone_history) {
        assert!((t.loss - a.loss).abs() < 1e-5, "{t:?} vs {a:?}");
        assert!((t.accuracy - a.accuracy).abs() < 1e-9, "{t:?} vs {a:?}");
        let (tv, av) = (t.val_loss.unwrap(), a.val_loss.unwrap());
        assert!((tv - av).abs() < 1e-5, "{t:?} vs {a:?}");
    }
    let untimed = |h: &[convkit::train::EpochRecord]| -> Vec<(f64, f64, Option<f64>, Option<f64>)> {
        h.iter()
            .map(|r| (r.loss, r.accuracy, r.val_loss, r.val_accuracy))
            .collect()
    };
    assert_eq!(
        untimed(&history(&outs[1])),
        untimed(&together),
        "the ranks' histories differ"
    );
    // Only rank 0 kept a state.
    assert!(states[0].is_dir() && !states[1].exists());
}

#[test]
fn a_resumed_two_process_run_ends_as_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let outs = |name: &str| -> Vec<PathBuf> {
        (0..2)
            .map(|r| dir.path().join(format!("{name}{r}")))
            .collect()
    };
    let whole_states = outs("whole-state");
    run_workers(&outs("whole"), &whole_states, 4);
    // Two epochs, then a fresh pair of processes continues to four; rank 1 gets rank 0's
    // state (its own folder stays empty).
    let states = outs("state");
    run_workers(&outs("first"), &states, 2);
    run_workers(&outs("resumed"), &states, 4);
    let (resumed, whole) = (
        weights(&outs("resumed")[0].join("model.safetensors")),
        weights(&outs("whole")[0].join("model.safetensors")),
    );
    assert_eq!(max_difference(&resumed, &whole), 0.0);
    assert_eq!(
        weights(&outs("resumed")[1].join("model.safetensors")),
        resumed
    );
    let strip = |h: Vec<convkit::train::EpochRecord>| -> Vec<(f64, f64, Option<f64>)> {
        h.into_iter()
            .map(|r| (r.loss, r.accuracy, r.val_loss))
            .collect()
    };
    assert_eq!(
        strip(history(&outs("resumed")[0])),
        strip(history(&outs("whole")[0]))
    );
    assert!(!states[1].exists());
}
