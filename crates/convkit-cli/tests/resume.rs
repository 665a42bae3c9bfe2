//! Runs that survive: real training processes killed (SIGKILL) at random moments, inside
//! epochs and while their state is being written, resumed after each kill, and compared
//! with the same run left alone.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{cats_slice, convkit, data_root, json, run_err, run_ok};

/// A small deterministic generator (SplitMix64) for the kill times.
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration between `lo` and `hi` times `span`.
    fn fraction_of(&mut self, span: Duration, lo: f64, hi: f64) -> Duration {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        span.mul_f64(lo + unit * (hi - lo))
    }
}

/// How a kill was aimed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Aim {
    /// After a random delay, a fraction of the length of the run left alone: anywhere in
    /// start-up, an epoch, validation or a write, however fast the machine.
    Random,
    /// While a state folder exists without its `state.json`: in the middle of a state write
    /// (held open by `CONVKIT_FAULT_STATE_PAUSE_MS`).
    StateWrite,
}

/// An incomplete state folder under `run/state`, if one exists now.
fn state_being_written(run: &Path) -> bool {
    std::fs::read_dir(run.join("state")).is_ok_and(|entries| {
        entries
            .filter_map(|e| e.ok())
            .any(|e| e.path().is_dir() && !e.path().join("state.json").exists())
    })
}

/// Waits for `child` as `aim` says, then kills it; returns whether it was killed (false: it
/// had already finished). `span` is how long the same run took left alone.
fn kill(child: &mut Child, run: &Path, aim: Aim, span: Duration, draws: &mut Draws) -> bool {
    let deadline = Instant::now()
        + match aim {
            Aim::Random => draws.fraction_of(span, 0.05, 0.5),
            Aim::StateWrite => Duration::from_secs(20),
        };
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if aim == Aim::StateWrite && state_being_written(run) {
            break;
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    if child.try_wait().unwrap().is_some() {
        return false;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

/// What a kill may leave: every complete state readable, a readable history, and a run
/// folder that `evaluate` accepts once it has a checkpoint.
fn check_after_kill(run: &Path, checkpoint: &str, evaluate: &dyn Fn(&Path) -> Command) {
    if let Ok(entries) = std::fs::read_dir(run.join("state")) {
        for entry in entries.filter_map(|e| e.ok()) {
            let state = entry.path().join("state.json");
            if state.exists() {
                let text = std::fs::read_to_string(&state).unwrap();
                serde_json::from_str::<serde_json::Value>(&text)
                    .unwrap_or_else(|e| panic!("{} is half written: {e}", state.display()));
            }
        }
    }
    if let Ok(history) = std::fs::read_to_string(run.join("history.csv")) {
        let columns = history
            .lines()
            .next()
            .map_or(0, |header| header.split(',').count());
        assert_eq!(columns, 9, "a half-written header:\n{history}");
        for (i, line) in history.lines().skip(1).enumerate() {
            let epoch: usize = line.split(',').next().unwrap().parse().unwrap();
            assert_eq!(epoch, i + 1, "history.csv is not whole:\n{history}");
            assert_eq!(
                line.split(',').count(),
                columns,
                "a half-written row:\n{history}"
            );
        }
    }
    if run.join(checkpoint).is_file() {
        run_ok(&mut evaluate(run));
    }
}

/// Kills the run started by `fresh` at least `kills` times (a third of them in a state
/// write), resuming it with `resume` after each, then lets it finish. Returns the number of
/// kills. When a run finishes before enough kills, another one starts in a new folder,
/// and the last one is the one returned in `run`. Kill times scale with `span`, the
/// length of the run left alone, so that a faster machine gets as many kills per run
/// (a fixed 0.3-2.5 s once let eight epochs finish after 10 kills of 14 on CI).
struct Torture<'a> {
    span: Duration,
    fresh: &'a dyn Fn(&Path) -> Command,
    resume: &'a dyn Fn(&Path) -> Command,
    evaluate: &'a dyn Fn(&Path) -> Command,
    checkpoint: &'a str,
}

impl Torture<'_> {
    fn run(&self, root: &Path, kills_wanted: usize, draws: &mut Draws) -> (PathBuf, usize) {
        let mut kills = 0;
        let mut in_writes = 0;
        for round in 0..8 {
            let run = root.join(format!("killed-{round}"));
            loop {
                let started = run.join("run.json").is_file();
                let aim = if kills % 3 == 2 {
                    Aim::StateWrite
                } else {
                    Aim::Random
                };
                let mut command = if started {
                    (self.resume)(&run)
                } else {
                    (self.fresh)(&run)
                };
                if aim == Aim::StateWrite {
                    command.env("CONVKIT_FAULT_STATE_PAUSE_MS", "400");
                }
                if kills >= kills_wanted {
                    run_ok(&mut command);
                    eprintln!(
                        "{kills} kills ({in_writes} in a state write) over {} run(s)",
                        round + 1
                    );
                    return (run, kills);
                }
                let mut child = command.spawn().unwrap();
                if !kill(&mut child, &run, aim, self.span, draws) {
                    assert!(child.wait().unwrap().success(), "a resumed run failed");
                    break; // finished before enough kills: another round
                }
                kills += 1;
                in_writes += usize::from(aim == Aim::StateWrite && state_being_written(&run));
                check_after_kill(&run, self.checkpoint, self.evaluate);
            }
        }
        panic!("the runs finished before {kills_wanted} kills ({kills})");
    }
}

/// `history.csv` up to its learning-rate column: without the timings (seconds, images per
/// second), which no two runs share, and the columns after them.
fn history_without_timings(run: &Path) -> String {
    std::fs::read_to_string(run.join("history.csv"))
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(6).collect::<Vec<_>>().join(","))
        .collect::<Vec<_>>()
        .join("\n")
}

fn same_file(a: &Path, b: &Path) {
    assert!(
        std::fs::read(a).unwrap() == std::fs::read(b).unwrap(),
        "{} and {} differ",
        a.display(),
        b.display()
    );
}

/// Cats vs dogs from scratch with augmentation and dropout (every kind of random draw),
/// killed 14 times: the best and last checkpoints, the history and the metrics are those
/// of the run left alone, bit for bit.
#[test]
fn a_training_run_killed_fourteen_times_ends_as_if_never_stopped() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    cats_slice(&shared_data, &data, 40, 20);
    let fresh = |run: &Path| {
        let mut command = convkit();
        command
            .args([
                "--threads",
                "1",
                "--device",
                "cpu",
                "train",
                "--quiet",
                "--data",
            ])
            .arg(&data)
            .args(["--image-size", "80", "--epochs", "8", "--batch-size", "8"])
            .args(["--augment", "--dropout", "0.5", "--seed", "3", "--out"])
            .arg(run);
        command
    };
    let resume = |run: &Path| {
        let mut command = convkit();
        command
            .args([
                "--threads",
                "1",
                "--device",
                "cpu",
                "train",
                "--quiet",
                "--resume",
            ])
            .arg(run);
        command
    };
    let evaluate = |run: &Path| {
        let mut command = convkit();
        command
            .args(["--threads", "1", "evaluate", "--json"])
            .arg(run);
        command
    };
    let alone = dir.path().join("alone");
    let started = Instant::now();
    run_ok(&mut fresh(&alone));
    let torture = Torture {
        span: started.elapsed(),
        fresh: &fresh,
        resume: &resume,
        evaluate: &evaluate,
        checkpoint: "best.safetensors",
    };
    let (killed, kills) = torture.run(dir.path(), 14, &mut Draws(7));
    assert!(kills >= 14);
    same_file(
        &alone.join("best.safetensors"),
        &killed.join("best.safetensors"),
    );
    same_file(
        &alone.join("last.safetensors"),
        &killed.join("last.safetensors"),
    );
    assert_eq!(
        history_without_timings(&alone),
        history_without_timings(&killed)
    );
    let metrics = |run: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap()
    };
    for key in ["best_epoch", "best_validation", "test", "epochs"] {
        assert_eq!(metrics(&alone)[key], metrics(&killed)[key], "{key}");
    }
    assert!(
        std::fs::read_dir(&killed).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".partial-")),
        "temporary files were left behind"
    );

    // A finished run says so; a changed setting is refused, naming it.
    let output = run_ok(&mut resume(&killed));
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("is finished (8 epochs)"), "{said}");
    let err = run_err(resume(&killed).args(["--epochs", "9", "--seed", "3"]));
    assert!(
        err.contains("epochs: the run has 8, the command line 9") && !err.contains("seed"),
        "{err}"
    );
    // A new run into a folder with a run in progress is refused, pointing at --resume.
    let busy = dir.path().join("killed-busy");
    let mut child = fresh(&busy).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !busy.join("state/epoch-0001/state.json").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let err = run_err(&mut fresh(&busy));
    assert!(
        err.contains("holds a run in progress") && err.contains("--resume"),
        "{err}"
    );
}

/// The MNIST convnet, killed 6 times: the model and the history are those of the run
/// left alone, bit for bit, and the folder evaluates after every kill.
#[test]
fn an_mnist_run_killed_six_times_ends_as_if_never_stopped() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let fresh = |run: &Path| {
        let mut command = convkit();
        command
            .env("CONVKIT_DATA", &shared_data)
            .args(["--threads", "1", "--device", "cpu", "mnist", "--quiet"])
            .args(["--limit", "2000", "--epochs", "6", "--seed", "5", "--out"])
            .arg(run);
        command
    };
    let resume = |run: &Path| {
        let mut command = convkit();
        command
            .env("CONVKIT_DATA", &shared_data)
            .args([
                "--threads",
                "1",
                "--device",
                "cpu",
                "mnist",
                "--quiet",
                "--resume",
            ])
            .arg(run);
        command
    };
    let evaluate = |run: &Path| {
        let mut command = convkit();
        command
            .env("CONVKIT_DATA", &shared_data)
            .args(["--threads", "1", "evaluate", "--json"])
            .arg(run);
        command
    };
    let alone = dir.path().join("alone");
    let started = Instant::now();
    run_ok(&mut fresh(&alone));
    let torture = Torture {
        span: started.elapsed(),
        fresh: &fresh,
        resume: &resume,
        evaluate: &evaluate,
        checkpoint: "model.safetensors",
    };
    let (killed, kills) = torture.run(dir.path(), 6, &mut Draws(11));
    assert!(kills >= 6);
    same_file(
        &alone.join("model.safetensors"),
        &killed.join("model.safetensors"),
    );
    assert_eq!(
        history_without_timings(&alone),
        history_without_timings(&killed)
    );
    let evaluated = |run: &Path| json(&run_ok(&mut evaluate(run)))["accuracy"].clone();
    assert_eq!(evaluated(&alone), evaluated(&killed));

    // Ctrl-C (SIGINT) after the first epoch: exit status 130, the resume command printed,
    // and the resumed run ends as the one left alone.
    let stopped = dir.path().join("stopped");
    let child = fresh(&stopped)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stopped.join("state/epoch-0001/state.json").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let signalled = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("Continue the run with:") && stderr.contains("convkit mnist --resume"),
        "{stderr}"
    );
    run_ok(&mut resume(&stopped));
    same_file(
        &alone.join("model.safetensors"),
        &stopped.join("model.safetensors"),
    );
}

/// A training command, quiet or not.
type Launcher<'a> = dyn Fn(bool) -> Command + 'a;

/// Starts `command`, waits until the run in `run` has saved its first epoch, and kills it
/// (SIGKILL).
fn kill_after_first_epoch(command: &mut Command, run: &Path) {
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !run.join("state/epoch-0001/state.json").exists() && Instant::now() < deadline {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its first epoch was saved"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A run started with `--quiet` (no progress bars) resumes without it, and the other way
/// round: the saved state keys callbacks by name, and progress bars keep none. (Before,
/// states were matched by position and such a resume failed with "the run was saved with 4
/// callbacks, and is resumed with 5".) Both end as the run left alone.
#[test]
fn a_run_resumes_with_or_without_quiet() {
    let shared_data = require!(data_root());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cats");
    cats_slice(&shared_data, &data, 40, 20);
    let mnist = |quiet: bool| {
        let mut command = convkit();
        command
            .env("CONVKIT_DATA", &shared_data)
            .args(["--threads", "1", "--device", "cpu", "mnist"])
            .args(if quiet { &["--quiet"][..] } else { &[] });
        command
    };
    let train = |quiet: bool| {
        let mut command = convkit();
        command
            .args(["--threads", "1", "--device", "cpu", "train"])
            .args(if quiet { &["--quiet"][..] } else { &[] });
        command
    };
    // The issue's own commands, then a run with callbacks that keep state, then one with
    // the fast recipe (AdamW, one-cycle, label smoothing, a weight average).
    let cases: [(&str, &Launcher<'_>, Vec<String>, &str); 3] = [
        (
            "mnist",
            &mnist,
            ["--epochs", "3", "--limit", "3000"]
                .map(String::from)
                .to_vec(),
            "model.safetensors",
        ),
        (
            "train",
            &train,
            [
                "--data",
                &data.display().to_string(),
                "--image-size",
                "80",
                "--epochs",
                "3",
                "--batch-size",
                "8",
                "--early-stopping",
                "5",
                "--reduce-lr-patience",
                "1",
            ]
            .map(String::from)
            .to_vec(),
            "best.safetensors",
        ),
        (
            "train-fast",
            &train,
            [
                "--data",
                &data.display().to_string(),
                "--image-size",
                "80",
                "--recipe",
                "fast",
                "--epochs",
                "3",
                "--batch-size",
                "8",
                "--ema",
                "0.9",
                "--mixup",
                "0.2",
            ]
            .map(String::from)
            .to_vec(),
            // The fast recipe keeps the last epoch.
            "model.safetensors",
        ),
    ];
    for (name, command, settings, checkpoint) in cases {
        let alone = dir.path().join(format!("{name}-alone"));
        run_ok(command(true).args(&settings).arg("--out").arg(&alone));
        for started_quiet in [true, false] {
            let run = dir.path().join(format!("{name}-quiet-{started_quiet}"));
            kill_after_first_epoch(
                command(started_quiet)
                    .args(&settings)
                    .arg("--out")
                    .arg(&run),
                &run,
            );
            let output = run_ok(command(!started_quiet).arg("--resume").arg(&run));
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                stderr.contains("Epoch 3/3"),
                started_quiet,
                "{name}: progress lines only when resumed without --quiet:\n{stderr}"
            );
            same_file(&alone.join(checkpoint), &run.join(checkpoint));
            assert_eq!(
                history_without_timings(&alone),
                history_without_timings(&run)
            );
        }
    }
}
