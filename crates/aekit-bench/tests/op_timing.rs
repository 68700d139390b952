//! Per-operation timing on Burn's flex backend (batch 256, MNIST-sized maps): the Keras-blog
//! conv autoencoder's layers (what each convolution costs forward, for the input's gradient
//! and for the weights' gradient, and what pooling and upsampling cost), the conv VAE's
//! convolutions, and dense layers through Burn's `Linear` against `aekit::kernels::linear`.
//! Ignored by default; run it with
//!
//! ```sh
//! cargo test --test op_timing -- --ignored --nocapture        # T=2 for two threads
//! ```
//!
//! Each figure is the fastest of several calls (the least disturbed by other processes).
//! Findings are in `bench/results/*-profile.txt`.

use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Distribution, Tensor};
use std::time::Instant;

/// The fastest of `reps` calls, in milliseconds.
fn fastest<F: FnMut()>(mut f: F, reps: usize) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

/// Sizes the global thread pool from `T` (default 1) and returns that size.
fn thread_pool_from_env() -> usize {
    let threads: usize = std::env::var("T")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
    threads
}

#[test]
#[ignore]
fn conv_autoencoder_operations() {
    let threads = thread_pool_from_env();
    let plain = Device::flex();
    let autodiff = plain.clone().autodiff();
    let batch = 256;
    let reps = 8;
    // (name, input channels, output channels, map size): encoder, then decoder and output.
    let layers = [
        ("enc 1->16 28x28", 1, 16, 28),
        ("enc 16->8 14x14", 16, 8, 14),
        ("enc 8->8 7x7", 8, 8, 7),
        ("dec 8->8 4x4", 8, 8, 4),
        ("dec 8->8 7x7", 8, 8, 7),
        ("dec 8->16 14x14", 8, 16, 14),
        ("out 16->1 28x28", 16, 1, 28),
    ];
    println!("{threads} thread(s), batch {batch}, ms per call (fastest of {reps})");
    println!(
        "{:16} {:>7} {:>9} {:>9} {:>7}",
        "3x3 conv", "fwd", "fwd+dX", "fwd+dW", "GFLOP"
    );
    let mut totals = [0.0f64; 4];
    for (name, cin, cout, size) in layers {
        let x = Tensor::<4>::random([batch, cin, size, size], Distribution::Default, &plain);
        let w = Tensor::<4>::random([cout, cin, 3, 3], Distribution::Default, &plain);
        let options = || ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let forward = fastest(|| drop(conv2d(x.clone(), w.clone(), None, options())), reps);
        let g = Tensor::<4>::random([batch, cout, size, size], Distribution::Default, &autodiff);
        let with_grad = |x_grad: bool| {
            let xa = Tensor::<4>::from_data(x.to_data(), &autodiff);
            let wa = Tensor::<4>::from_data(w.to_data(), &autodiff);
            let (xa, wa) = if x_grad {
                (xa.require_grad(), wa)
            } else {
                (xa, wa.require_grad())
            };
            fastest(
                || {
                    let y = conv2d(xa.clone(), wa.clone(), None, options());
                    drop((y * g.clone()).sum().backward());
                },
                reps,
            )
        };
        let (dx, dw) = (with_grad(true), with_grad(false));
        let gflop = 2.0 * (batch * size * size * cout * cin * 9) as f64 / 1e9;
        for (t, v) in totals.iter_mut().zip([forward, dx, dw, gflop]) {
            *t += v;
        }
        println!("{name:16} {forward:7.2} {dx:9.2} {dw:9.2} {gflop:7.3}");
    }
    println!(
        "{:16} {:7.2} {:9.2} {:9.2} {:7.3}",
        "all", totals[0], totals[1], totals[2], totals[3]
    );
    for (c, size) in [(16usize, 28usize), (8, 14), (8, 7)] {
        let x = Tensor::<4>::random([batch, c, size, size], Distribution::Default, &autodiff)
            .require_grad();
        let pad = if size % 2 == 1 { 1 } else { 0 };
        let pool = |x: Tensor<4>| {
            max_pool2d(
                x,
                MaxPoolOptions::new([2, 2])
                    .with_stride([2, 2])
                    .with_padding_pairs([(0, pad), (0, pad)]),
            )
        };
        let forward = fastest(|| drop(pool(x.clone())), reps);
        let both = fastest(|| drop(pool(x.clone()).sum().backward()), reps);
        println!("max pool 2x2 {c}x{size}: fwd {forward:.2}, fwd+bwd {both:.2}");
    }
    for (c, size, crop) in [(8usize, 4usize, 7usize), (8, 7, 14), (16, 14, 28)] {
        let x = Tensor::<4>::random([batch, c, size, size], Distribution::Default, &autodiff)
            .require_grad();
        // As the conv model upsamples: every value repeated into a 2x2 block, then cropped.
        let up = |x: Tensor<4>| {
            let [b, c, h, w] = x.dims();
            x.reshape([b, c, h, 1, w, 1])
                .repeat_dim(3, 2)
                .repeat_dim(5, 2)
                .reshape([b, c, 2 * h, 2 * w])
                .narrow(2, 0, crop)
                .narrow(3, 0, crop)
        };
        let forward = fastest(|| drop(up(x.clone())), reps);
        let both = fastest(|| drop(up(x.clone()).sum().backward()), reps);
        println!("upsample x2 + crop {c}x{size}->{crop}: fwd {forward:.2}, fwd+bwd {both:.2}");
    }
}

/// The conv VAE's convolutions (configs/conv-vae.toml): stride-2 "same" convolutions down,
/// stride-2 transposed convolutions up, a stride-1 output convolution; forward, +dX, +dW.
#[test]
#[ignore]
fn conv_vae_operations() {
    use burn::tensor::module::conv_transpose2d;
    use burn::tensor::ops::ConvTransposeOptions;
    let threads = thread_pool_from_env();
    let plain = Device::flex();
    let autodiff = plain.clone().autodiff();
    let (batch, reps) = (256, 4);
    println!("{threads} thread(s), batch {batch}, ms per call (fastest of {reps})");
    println!(
        "{:26} {:>7} {:>9} {:>9}",
        "layer", "fwd", "fwd+dX", "fwd+dW"
    );
    // (name, cin, cout, input size, transposed?)
    let layers = [
        ("conv 1->32 s2 28->14", 1, 32, 28, false),
        ("conv 32->64 s2 14->7", 32, 64, 14, false),
        ("tconv 64->64 s2 7->14", 64, 64, 7, true),
        ("tconv 64->32 s2 14->28", 64, 32, 14, true),
        ("conv 32->1 s1 28", 32, 1, 28, false),
    ];
    for (name, cin, cout, size, transposed) in layers {
        let stride = if name.contains("s2") { 2 } else { 1 };
        let x = Tensor::<4>::random([batch, cin, size, size], Distribution::Default, &plain);
        let w_shape = if transposed {
            [cin, cout, 3, 3]
        } else {
            [cout, cin, 3, 3]
        };
        let w = Tensor::<4>::random(w_shape, Distribution::Default, &plain);
        let op = |x: Tensor<4>, w: Tensor<4>| -> Tensor<4> {
            if transposed {
                conv_transpose2d(
                    x,
                    w,
                    None,
                    ConvTransposeOptions::new([2, 2], [1, 1], [1, 1], [1, 1], 1),
                )
            } else if stride == 2 {
                // "same" for an even size: one row and column of padding at the end.
                conv2d(
                    x,
                    w,
                    None,
                    ConvOptions::new_with_padding([2, 2], [(0, 1), (0, 1)], [1, 1], 1),
                )
            } else {
                conv2d(x, w, None, ConvOptions::new([1, 1], [1, 1], [1, 1], 1))
            }
        };
        let forward = fastest(|| drop(op(x.clone(), w.clone())), reps);
        let out_dims = op(x.clone(), w.clone()).dims();
        let g = Tensor::<4>::random(out_dims, Distribution::Default, &autodiff);
        let with_grad = |x_grad: bool| {
            let xa = Tensor::<4>::from_data(x.to_data(), &autodiff);
            let wa = Tensor::<4>::from_data(w.to_data(), &autodiff);
            let (xa, wa) = if x_grad {
                (xa.require_grad(), wa)
            } else {
                (xa, wa.require_grad())
            };
            fastest(
                || drop((op(xa.clone(), wa.clone()) * g.clone()).sum().backward()),
                reps,
            )
        };
        let (dx, dw) = (with_grad(true), with_grad(false));
        println!("{name:26} {forward:7.2} {dx:9.2} {dw:9.2}");
    }
}

/// Dense layers of the reference models, batch 256: Burn's `Linear::forward` (flex's matmul
/// plus a bias add) against `aekit::kernels::linear` (row blocks per thread), forward on
/// plain tensors and forward + backward on autodiff ones.
#[test]
#[ignore]
fn dense_layers() {
    use aekit::kernels::linear::linear;
    use burn::nn::LinearConfig;
    let threads = thread_pool_from_env();
    let plain = Device::flex();
    let autodiff = plain.clone().autodiff();
    let (batch, reps) = (256, 20);
    println!("{threads} thread(s), batch {batch}, ms per call (fastest of {reps})");
    println!(
        "{:12} {:>9} {:>9} {:>11} {:>11}",
        "layer", "burn fwd", "aekit fwd", "burn train", "aekit train"
    );
    for (inputs, outputs) in [
        (784, 1000),
        (1000, 500),
        (500, 250),
        (784, 400),
        (400, 784),
        (784, 128),
        (128, 64),
        (32, 784),
    ] {
        let layer = LinearConfig::new(inputs, outputs).init(&plain);
        let x = Tensor::<2>::random([batch, inputs], Distribution::Default, &plain);
        let burn_fwd = fastest(|| drop(layer.forward(x.clone())), reps);
        let ours_fwd = fastest(|| drop(linear(&layer, x.clone())), reps);
        let layer = LinearConfig::new(inputs, outputs).init(&autodiff);
        let xa = Tensor::<2>::from_data(x.to_data(), &autodiff).require_grad();
        let burn_train = fastest(|| drop(layer.forward(xa.clone()).sum().backward()), reps);
        let ours_train = fastest(|| drop(linear(&layer, xa.clone()).sum().backward()), reps);
        println!(
            "{:12} {burn_fwd:9.3} {ours_fwd:9.3} {burn_train:11.3} {ours_train:11.3}",
            format!("{inputs}->{outputs}")
        );
    }
}
