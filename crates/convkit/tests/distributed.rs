//! The distributed layer between real processes: each test re-runs this test binary as the
//! ranks of a run (`--exact <test> --nocapture`, with `CONVKIT_TEST_WORKER` set), launched
//! by hand on 127.0.0.1 or by torchrun, and checks what they print and how they exit.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use convkit::distributed::{average_gradients, ProcessGroup, Rendezvous, DEFAULT_BUCKET_BYTES};
use convkit::tch::{self, Device, Kind, Tensor};

/// Set in the ranks' environment: the test then runs as a rank instead of launching them.
const WORKER: &str = "CONVKIT_TEST_WORKER";

// ---- the ranks' side ------------------------------------------------------------------

fn is_worker() -> bool {
    std::env::var_os(WORKER).is_some()
}

fn join(timeout: Duration) -> ProcessGroup {
    tch::set_num_threads(1);
    let rendezvous = Rendezvous::from_env()
        .expect("a valid rendezvous")
        .expect("WORLD_SIZE is set");
    ProcessGroup::connect(&rendezvous, Device::Cpu, timeout).expect("connect")
}

fn max_difference(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// The collectives between two ranks, each with its own data, checked against what the
/// other rank's data must give.
fn collectives_as_a_rank() {
    let group = join(Duration::from_secs(20));
    assert_eq!(group.world_size(), 2);
    assert_eq!(group.backend(), "gloo");
    let rank = group.rank();
    assert_eq!(group.is_main(), rank == 0);
    let r = rank as f64;

    // broadcast: rank 0's values overwrite rank 1's, whatever the layouts.
    let weights = [
        Tensor::full([3, 4], 1.0 + r, (Kind::Float, Device::Cpu)),
        Tensor::arange(24, (Kind::Float, Device::Cpu))
            .view([1, 2, 3, 4])
            .g_mul_scalar(1.0 + r)
            .contiguous()
            .permute([0, 2, 3, 1])
            .contiguous()
            .permute([0, 3, 1, 2]), // channels_last strides
    ];
    assert!(!weights[1].is_contiguous());
    group.broadcast(&weights, 0).unwrap();
    assert_eq!(
        max_difference(
            &weights[0],
            &Tensor::ones([3, 4], (Kind::Float, Device::Cpu))
        ),
        0.0
    );
    let expected = Tensor::arange(24, (Kind::Float, Device::Cpu)).view([1, 2, 3, 4]);
    assert_eq!(max_difference(&weights[1], &expected), 0.0);
    assert!(!weights[1].is_contiguous(), "the tensor keeps its layout");

    // all_reduce_sum: rank r holds (r + 1) * base; the sum is 3 * base.
    let base = Tensor::arange(2 * 3 * 5 * 5, (Kind::Float, Device::Cpu)).view([2, 3, 5, 5]);
    let channels_last = base
        .g_mul_scalar(1.0 + r)
        .permute([0, 2, 3, 1])
        .contiguous()
        .permute([0, 3, 1, 2]);
    let plain = Tensor::full([7], 0.5 + r, (Kind::Float, Device::Cpu));
    group
        .all_reduce_sum(&[channels_last.shallow_clone(), plain.shallow_clone()])
        .unwrap();
    assert_eq!(max_difference(&channels_last, &base.g_mul_scalar(3.0)), 0.0);
    assert_eq!(
        max_difference(&plain, &Tensor::full([7], 2.0, (Kind::Float, Device::Cpu))),
        0.0
    );

    let mut values = [1.5 + r, 1e12 * (r + 1.0), -r];
    group.all_reduce_f64(&mut values).unwrap();
    assert_eq!(values, [4.0, 3e12, -1.0]);

    let sent = if rank == 0 {
        b"rank 0's config: {\"lr\": 0.001}".to_vec()
    } else {
        vec![9; 3]
    };
    let got = group.broadcast_bytes(sent, 0).unwrap();
    assert_eq!(got, b"rank 0's config: {\"lr\": 0.001}".to_vec());
    assert!(group.broadcast_bytes(Vec::new(), 1).unwrap().is_empty());

    // average_gradients on a tiny convnet: each rank's batch differs, and each rank can
    // compute the other's gradients locally to know the mean.
    let model = TinyConvnet::new();
    let expected: Vec<Tensor> = {
        let g0 = model.gradients(0);
        let g1 = model.gradients(1);
        g0.iter().zip(&g1).map(|(a, b)| (a + b) / 2.0).collect()
    };
    for bucket_bytes in [DEFAULT_BUCKET_BYTES, 64] {
        model.gradients(rank);
        let sync = average_gradients(&group, &model.params, bucket_bytes).unwrap();
        assert_eq!(sync.values, 4 * 3 * 3 * 3 + 4 + 4 * 4 * 4 * 2 + 2);
        assert_eq!(sync.buckets, if bucket_bytes == 64 { 4 } else { 1 });
        assert!(sync.communication <= sync.total);
        for (param, want) in model.params.iter().zip(&expected) {
            let diff = max_difference(&param.grad(), want);
            assert!(diff < 1e-6, "gradient differs from the mean by {diff}");
        }
        assert!(
            !model.params[0].grad().is_contiguous(),
            "the conv kernel's gradient stays channels_last"
        );
    }
    group.barrier().unwrap();
    println!("rank {rank}: collectives ok");
}

/// A convolution (channels_last kernel) and a linear layer, as leaf tensors.
struct TinyConvnet {
    params: Vec<Tensor>,
}

impl TinyConvnet {
    fn new() -> TinyConvnet {
        tch::manual_seed(7);
        let opts = (Kind::Float, Device::Cpu);
        let kernel = Tensor::randn([4, 3, 3, 3], opts)
            .permute([0, 2, 3, 1])
            .contiguous()
            .permute([0, 3, 1, 2])
            .set_requires_grad(true);
        let params = vec![
            kernel,
            Tensor::randn([4], opts).set_requires_grad(true),
            Tensor::randn([2, 4 * 4 * 4], opts).set_requires_grad(true),
            Tensor::randn([2], opts).set_requires_grad(true),
        ];
        TinyConvnet { params }
    }

    /// Runs forward and backward on rank `rank`'s batch; returns copies of the gradients.
    fn gradients(&self, rank: usize) -> Vec<Tensor> {
        for p in &self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        let x = Tensor::linspace(
            -1.0,
            1.0 + rank as f64,
            2 * 3 * 6 * 6,
            (Kind::Float, Device::Cpu),
        )
        .view([2, 3, 6, 6]);
        let p = &self.params;
        let y = x
            .conv2d(&p[0], Some(&p[1]), [1, 1], [0, 0], [1, 1], 1)
            .relu()
            .flatten(1, -1)
            .linear(&p[2], Some(&p[3]));
        let target = Tensor::from_slice(&[0i64, 1]);
        y.cross_entropy_for_logits(&target).backward();
        p.iter().map(|t| t.grad().copy()).collect()
    }
}

/// Loops on allreduce until it fails; rank 1 kills or stops itself after a few rounds.
fn failing_peer_as_a_rank(signal: libc::c_int, timeout: Duration) {
    let group = join(timeout);
    let tensor = Tensor::ones([1000], (Kind::Float, Device::Cpu));
    for round in 0.. {
        if group.rank() == 1 && round == 5 {
            // SAFETY: signalling our own process.
            unsafe { libc::raise(signal) };
        }
        if let Err(error) = group.all_reduce_sum(std::slice::from_ref(&tensor)) {
            println!("FAILED: {error}");
            return;
        }
    }
}

// ---- the launcher's side --------------------------------------------------------------

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Runs this binary's test `name` as rank `rank` of a 2-rank run on 127.0.0.1.
fn spawn_rank(name: &str, rank: usize, port: u16) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            name,
            "--nocapture",
            "--test-threads",
            "1",
            "--include-ignored",
        ])
        .env(WORKER, "1")
        .env("RANK", rank.to_string())
        .env("WORLD_SIZE", "2")
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env_remove("TORCHELASTIC_USE_AGENT_STORE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a rank")
}

struct Finished {
    success: bool,
    output: String,
    elapsed: Duration,
}

/// Waits for `child` up to `limit` (then kills it and fails the test).
fn finish(mut child: Child, started: Instant, limit: Duration, what: &str) -> Finished {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut output = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut output)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut output)
                .unwrap();
            return Finished {
                success: status.success(),
                output,
                elapsed: started.elapsed(),
            };
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn torchrun() -> Option<PathBuf> {
    let python = PathBuf::from(std::env::var_os("CONVKIT_PYTHON")?);
    let torchrun = python.parent()?.join("torchrun");
    torchrun.exists().then_some(torchrun)
}

// ---- the tests --------------------------------------------------------------------------

#[test]
fn collectives_between_two_processes() {
    if is_worker() {
        return collectives_as_a_rank();
    }
    let port = free_port();
    let started = Instant::now();
    let ranks: Vec<Child> = (0..2)
        .map(|rank| spawn_rank("collectives_between_two_processes", rank, port))
        .collect();
    for (rank, child) in ranks.into_iter().enumerate() {
        let done = finish(
            child,
            started,
            Duration::from_secs(60),
            &format!("rank {rank}"),
        );
        assert!(done.success, "rank {rank} failed:\n{}", done.output);
        assert!(
            done.output
                .contains(&format!("rank {rank}: collectives ok")),
            "{}",
            done.output
        );
    }
}

#[test]
fn collectives_under_torchrun() {
    if is_worker() {
        return collectives_as_a_rank();
    }
    let Some(torchrun) = torchrun() else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "torchrun is needed in CI: run the tests through `cargo xtask test` (CONVKIT_PYTHON)"
        );
        println!("skipped: no torchrun (CONVKIT_PYTHON unset or without bin/torchrun)");
        return;
    };
    let started = Instant::now();
    let child = Command::new(torchrun)
        .args(["--standalone", "--nproc-per-node=2", "--no-python"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "collectives_under_torchrun",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(WORKER, "1")
        .env_remove("RANK")
        .env_remove("WORLD_SIZE")
        .env_remove("MASTER_ADDR")
        .env_remove("MASTER_PORT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start torchrun");
    let done = finish(child, started, Duration::from_secs(90), "torchrun");
    assert!(done.success, "torchrun failed:\n{}", done.output);
    for rank in 0..2 {
        assert!(
            done.output
                .contains(&format!("rank {rank}: collectives ok")),
            "{}",
            done.output
        );
    }
}

/// Launches the two ranks of `test`, where rank 1 raises a signal on itself, and returns
/// rank 0's error message and how long rank 0 ran (rank 1 is killed, stopped or not).
fn run_with_failing_peer(test: &str) -> (String, Duration) {
    let port = free_port();
    let started = Instant::now();
    let rank0 = spawn_rank(test, 0, port);
    let mut rank1 = spawn_rank(test, 1, port);
    let rank0 = finish(rank0, started, Duration::from_secs(30), "rank 0");
    let _ = rank1.kill(); // SIGKILL ends a stopped process too
    let _ = rank1.wait();
    assert!(
        rank0.success,
        "rank 0 should report the failure and exit:\n{}",
        rank0.output
    );
    let failure = rank0
        .output
        .lines()
        .find_map(|l| {
            l.split_once("FAILED: ")
                .map(|(_, message)| message.to_owned())
        })
        .unwrap_or_else(|| panic!("rank 0 saw no failure:\n{}", rank0.output));
    println!("{failure} ({:.1} s)", rank0.elapsed.as_secs_f64());
    (failure, rank0.elapsed)
}

#[test]
fn a_killed_rank_is_named() {
    if is_worker() {
        return failing_peer_as_a_rank(libc::SIGKILL, Duration::from_secs(20));
    }
    let (failure, elapsed) = run_with_failing_peer("a_killed_rank_is_named");
    assert!(
        failure.contains("rank 0: all_reduce failed: rank 1 stopped"),
        "{failure}"
    );
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
}

#[test]
fn a_hung_rank_is_named() {
    let timeout = Duration::from_secs(5);
    if is_worker() {
        return failing_peer_as_a_rank(libc::SIGSTOP, timeout);
    }
    let (failure, elapsed) = run_with_failing_peer("a_hung_rank_is_named");
    assert!(
        failure.contains("rank 0: all_reduce failed: rank 1 stopped"),
        "{failure}"
    );
    // Gloo's timeout, three seconds of watching the heartbeats, and the start-up.
    assert!(elapsed < timeout + Duration::from_secs(10), "{elapsed:?}");
}

/// The time of one `average_gradients` over the chapter's two convnets' parameter counts,
/// between two processes on loopback with one thread each:
/// `cargo xtask test -p convkit --release --test distributed -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn measure_average_gradients() {
    if is_worker() {
        let group = join(Duration::from_secs(60));
        for (name, count) in [
            ("MNIST convnet", 104_202i64),
            ("cats-vs-dogs convnet", 991_041),
        ] {
            let param = Tensor::zeros([count], (Kind::Float, Device::Cpu)).set_requires_grad(true);
            param.sum(Kind::Float).backward();
            let params = [param];
            for _ in 0..5 {
                average_gradients(&group, &params, DEFAULT_BUCKET_BYTES).unwrap();
            }
            let rounds = 50;
            let mut total = Duration::ZERO;
            let mut communication = Duration::ZERO;
            for _ in 0..rounds {
                let sync = average_gradients(&group, &params, DEFAULT_BUCKET_BYTES).unwrap();
                total += sync.total;
                communication += sync.communication;
            }
            if group.is_main() {
                println!(
                    "MEASURED {name}: {count} params, {:.3} ms per average_gradients \
                     ({:.3} ms in the allreduce)",
                    total.as_secs_f64() * 1e3 / rounds as f64,
                    communication.as_secs_f64() * 1e3 / rounds as f64
                );
            }
        }
        group.barrier().unwrap();
        return;
    }
    let port = free_port();
    let started = Instant::now();
    let ranks: Vec<Child> = (0..2)
        .map(|rank| spawn_rank("measure_average_gradients", rank, port))
        .collect();
    for (rank, child) in ranks.into_iter().enumerate() {
        let done = finish(
            child,
            started,
            Duration::from_secs(120),
            &format!("rank {rank}"),
        );
        assert!(done.success, "rank {rank} failed:\n{}", done.output);
        for (_, line) in done
            .output
            .lines()
            .filter_map(|l| l.split_once("MEASURED "))
        {
            println!("{line}");
        }
    }
}
