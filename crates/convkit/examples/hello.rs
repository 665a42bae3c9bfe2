fn main() {
    let t0 = std::time::Instant::now();
    let x = convkit::tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
    println!("{}", x.sum(convkit::tch::Kind::Float).double_value(&[]));
    println!(
        "cuda: {} threads {}",
        convkit::tch::Cuda::is_available(),
        convkit::tch::get_num_threads()
    );
    println!("{:?}", t0.elapsed());
}
