//! Inference on the CPU with the batch split into one block of rows per thread, each block
//! run through the whole model on its own thread.
//!
//! Why: every layer op spreads its own work over the threads, so a forward pass of `L`
//! layers wakes and joins the threads `L` times, and the element-wise ops between the
//! products that flex runs on one thread leave the others idle. Whole blocks keep each
//! thread busy from the first layer to the last (2 threads, batch 256, `aekit bench speed`
//! inference: dense VAE +15%, Keras deep +20%, conv AE +30%, conv VAE +10%). An op called
//! inside a block still splits its work, but the other thread is busy with its own block,
//! so that work stays where it is.
//!
//! Inference is row-independent (no batch statistics in a model's `valid()` form), so a
//! split batch gives each row the output the whole batch gives it.

use burn::tensor::Tensor;
use rayon::prelude::*;

/// The fewest rows a block gets: smaller blocks leave too little work per thread.
const MIN_ROWS: usize = 32;

/// `f(x)` computed as `f` of `x`'s rows split into one block per thread, the outputs
/// concatenated in order. `f` must map each row on its own (inference, not a loss over the
/// batch). Tensors not on the plain CPU device (autodiff, GPU) and batches of fewer than
/// `2 * MIN_ROWS` rows go to `f` whole.
pub fn in_row_blocks(x: Tensor<2>, f: impl Fn(Tensor<2>) -> Tensor<2> + Sync) -> Tensor<2> {
    let rows = x.dims()[0];
    let blocks = rayon::current_num_threads().min(rows / MIN_ROWS);
    if blocks < 2 || x.device() != burn::tensor::Device::flex() {
        return f(x);
    }
    let outputs: Vec<Tensor<2>> = x.chunk(blocks, 0).into_par_iter().map(&f).collect();
    Tensor::cat(outputs, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn rows(count: usize, device: &burn::tensor::Device) -> Tensor<2> {
        let values: Vec<f32> = (0..count * 3).map(|i| i as f32 * 0.5 - 7.0).collect();
        Tensor::<2>::from_data(TensorData::new(values, [count, 3]), device)
    }

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    /// A row-wise map whose output width differs from the input's, so that the blocks'
    /// outputs must be put back in order to match.
    fn row_map(x: Tensor<2>) -> Tensor<2> {
        let doubled = x.clone().mul_scalar(2.0);
        Tensor::cat(vec![x.sum_dim(1), doubled], 1)
    }

    #[test]
    fn split_batches_give_what_the_whole_batch_gives() {
        let device = burn::tensor::Device::flex();
        let pool = pool(3);
        for count in [1, 63, 64, 97, 300] {
            let whole = row_map(rows(count, &device)).into_data();
            let split = pool
                .install(|| in_row_blocks(rows(count, &device), row_map))
                .into_data();
            assert_eq!(split.shape(), whole.shape(), "{count} rows");
            assert_eq!(
                split.try_to_vec::<f32>().unwrap(),
                whole.try_to_vec::<f32>().unwrap(),
                "{count} rows"
            );
        }
    }

    #[test]
    fn blocks_run_on_several_threads() {
        let device = burn::tensor::Device::flex();
        let pool = pool(2);
        let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
        // Each block waits (up to 10 s) until both have started: the other thread steals the
        // second block meanwhile, however slow it is to wake; one thread alone would time out.
        let started = (std::sync::Mutex::new(0), std::sync::Condvar::new());
        let out = pool.install(|| {
            in_row_blocks(rows(128, &device), |x| {
                seen.lock().unwrap().insert(rayon::current_thread_index());
                let (count, arrived) = &started;
                let mut count = count.lock().unwrap();
                *count += 1;
                arrived.notify_all();
                let timeout = std::time::Duration::from_secs(10);
                drop(
                    arrived
                        .wait_timeout_while(count, timeout, |c| *c < 2)
                        .unwrap(),
                );
                x
            })
        });
        assert_eq!(out.dims(), [128, 3]);
        assert_eq!(seen.into_inner().unwrap().len(), 2);
    }
}
