//! Matrix products on `f32` slices through the `gemm` crate (the one flex uses): operands
//! with any row and column strides, one single-threaded call ([`serial_product`]) or the
//! output split into one block per thread ([`product`]; see `linear.rs` for why).

use super::flex_tensor::written_vec;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Multiply-adds below which a product runs on one thread.
const PARALLEL_WORK: usize = 1 << 20;
/// The fewest output rows (or columns) one thread gets.
const MIN_BLOCK: usize = 16;

/// A read-only matrix operand: its values from its first element on, and the strides of its
/// rows and columns.
#[derive(Clone, Copy)]
pub(crate) struct Matrix<'a> {
    pub values: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Matrix<'a> {
    pub fn row_major(values: &'a [f32], columns: usize) -> Self {
        Self {
            values,
            row_stride: columns,
            col_stride: 1,
        }
    }

    /// The same values read as the transpose.
    pub fn transposed(self) -> Self {
        Self {
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// The matrix from row `row` and column `col` on.
    pub(crate) fn from(self, row: usize, col: usize) -> Self {
        Self {
            values: &self.values[row * self.row_stride + col * self.col_stride..],
            ..self
        }
    }

    /// Whether an `rows × cols` matrix with these strides lies within the values.
    fn holds(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.values.len()
    }
}

/// `out = lhs · rhs` for a row-major `m×n` output, `lhs` `m×k` and `rhs` `k×n`. The output is
/// split into blocks of rows (or of columns, when it is wider than tall), one per thread, and
/// `finish(block, first_row)` runs on every block of rows after its product.
pub(crate) fn product(
    out: &mut [f32],
    dims: [usize; 3],
    lhs: Matrix,
    rhs: Matrix,
    finish: impl Fn(&mut [f32], usize) + Sync,
) {
    // SAFETY: `MaybeUninit<f32>` has `f32`'s layout, and only initialised values (the
    // product's) are written through the view.
    let out = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast(), out.len()) };
    product_into(out, dims, lhs, rhs, finish);
}

/// [`product`] into a new vector, which is not zero-filled first: the product writes every
/// element without reading it (a memset of the output was 4% of a dense model's inference).
pub(crate) fn new_product(
    dims @ [m, n, k]: [usize; 3],
    lhs: Matrix,
    rhs: Matrix,
    finish: impl Fn(&mut [f32], usize) + Sync,
) -> Vec<f32> {
    if k == 0 {
        // Nothing to multiply: gemm would leave the output as it found it.
        let mut out = vec![0f32; m * n];
        finish(&mut out, 0);
        return out;
    }
    // SAFETY: `product_into` writes all `m * n` values (for `k > 0`).
    unsafe { written_vec(m * n, |out| product_into(out, dims, lhs, rhs, finish)) }.0
}

/// [`product`] into possibly uninitialised memory, every element of which it writes (for
/// `k > 0`).
fn product_into(
    out: &mut [MaybeUninit<f32>],
    [m, n, k]: [usize; 3],
    lhs: Matrix,
    rhs: Matrix,
    finish: impl Fn(&mut [f32], usize) + Sync,
) {
    assert_eq!(out.len(), m * n);
    if out.is_empty() {
        return;
    }
    assert!(lhs.holds(m, k) && rhs.holds(k, n));
    let threads = rayon::current_num_threads();
    let along_rows = m >= n;
    let extent = if along_rows { m } else { n };
    let blocks = if m * n * k < PARALLEL_WORK {
        1
    } else {
        threads.min(extent / MIN_BLOCK).max(1)
    };
    if along_rows {
        let rows = m.div_ceil(blocks);
        out.par_chunks_mut(rows * n)
            .enumerate()
            .for_each(|(i, block)| {
                let first = i * rows;
                let count = block.len() / n;
                let dst = block.as_mut_ptr().cast::<f32>();
                // SAFETY: `dst` is this block's `count × n` rows, which no other thread
                // touches; the operands hold their matrices (checked above).
                unsafe { gemm_raw(dst, n, [count, n, k], lhs.from(first, 0), rhs, false) };
                // SAFETY: the product has written every value of the block.
                finish(unsafe { initialised(block) }, first);
            });
    } else {
        // Column blocks of a row-major output are not contiguous: each thread writes its own
        // columns through a raw pointer.
        let cols = n.div_ceil(blocks);
        let base = out.as_mut_ptr() as usize;
        (0..blocks).into_par_iter().for_each(|i| {
            let first = i * cols;
            let count = cols.min(n - first);
            let dst = (base as *mut f32).wrapping_add(first);
            // SAFETY: `dst` is column `first` of the `m × n` output, whose columns
            // `first..first + count` no other block writes; the operands hold their
            // matrices (checked above).
            unsafe { gemm_raw(dst, n, [m, count, k], lhs, rhs.from(0, first), false) };
        });
        // SAFETY: the blocks' products have written every column.
        finish(unsafe { initialised(out) }, 0);
    }
}

/// # Safety
/// Every value of `values` must have been written.
pub(crate) unsafe fn initialised(values: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast(), values.len()) }
}

/// `dst = lhs · rhs` on the calling thread, `dst` `m×n` with row stride `dst_row_stride`.
pub(crate) fn serial_product(
    dst: &mut [f32],
    dst_row_stride: usize,
    [m, n, k]: [usize; 3],
    lhs: Matrix,
    rhs: Matrix,
) {
    let dst_holds = m == 0 || n == 0 || (m - 1) * dst_row_stride + n <= dst.len();
    assert!(dst_holds && lhs.holds(m, k) && rhs.holds(k, n));
    // SAFETY: every operand holds its matrix (checked above) and `dst` is borrowed mutably.
    unsafe { gemm_raw(dst.as_mut_ptr(), dst_row_stride, [m, n, k], lhs, rhs, false) };
}

/// `dst += lhs · rhs` on the calling thread, `dst` a contiguous `m×n` matrix.
pub(crate) fn serial_product_add(dst: &mut [f32], [m, n, k]: [usize; 3], lhs: Matrix, rhs: Matrix) {
    assert!(dst.len() == m * n && lhs.holds(m, k) && rhs.holds(k, n));
    // SAFETY: as in `serial_product`.
    unsafe { gemm_raw(dst.as_mut_ptr(), n, [m, n, k], lhs, rhs, true) };
}

/// [`serial_product`] into a contiguous `m×n` output that may be uninitialised, every value
/// of which it writes (zeros for `k == 0`, where gemm would leave it as it found it), so
/// that a fresh output need not be zero-filled first.
pub(crate) fn serial_product_into<'a>(
    dst: &'a mut [MaybeUninit<f32>],
    [m, n, k]: [usize; 3],
    lhs: Matrix,
    rhs: Matrix,
) -> &'a mut [f32] {
    assert!(dst.len() == m * n && lhs.holds(m, k) && rhs.holds(k, n));
    if k == 0 {
        dst.fill(MaybeUninit::new(0.0));
    } else {
        // SAFETY: `dst` holds the `m×n` output (checked above) and is borrowed mutably; the
        // operands hold their matrices.
        unsafe { gemm_raw(dst.as_mut_ptr().cast(), n, [m, n, k], lhs, rhs, false) };
    }
    // SAFETY: every value was written above.
    unsafe { initialised(dst) }
}

/// # Safety
/// `dst` must be valid for writes of every element of an `m×n` matrix with row stride
/// `dst_row_stride` (column stride 1) that no other thread touches meanwhile (and hold
/// initialised values when `accumulate`); `lhs` and `rhs` must hold their `m×k` and `k×n`
/// matrices.
unsafe fn gemm_raw(
    dst: *mut f32,
    dst_row_stride: usize,
    [m, n, k]: [usize; 3],
    lhs: Matrix,
    rhs: Matrix,
    accumulate: bool,
) {
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_row_stride as isize,
            accumulate,
            lhs.values.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.values.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The lower triangle (diagonal included) of the Gram matrix `Xᵀ X` of the row-major `n×d`
/// matrix `x`, as a row-major `d×d` matrix whose upper triangle is left 0: the output's
/// columns are cut into strips, and strip `j` (columns `j·w..(j+1)·w`) computes only the rows
/// from `j·w` down, so the work is about half a full product; the strips run in parallel.
pub(crate) fn gram_lower(x: &[f32], [n, d]: [usize; 2]) -> Vec<f32> {
    assert_eq!(x.len(), n * d);
    const STRIPS_PER_THREAD: usize = 4;
    let strips = (rayon::current_num_threads() * STRIPS_PER_THREAD).clamp(1, d.max(1));
    let width = d.div_ceil(strips).max(1);
    let lhs = Matrix::row_major(x, d).transposed();
    let rhs = Matrix::row_major(x, d);
    let blocks: Vec<(usize, usize, Vec<f32>)> = (0..d.div_ceil(width))
        .into_par_iter()
        .map(|strip| {
            let first = strip * width;
            let cols = width.min(d - first);
            let rows = d - first;
            let mut block = vec![0f32; rows * cols];
            if n > 0 {
                serial_product(
                    &mut block,
                    cols,
                    [rows, cols, n],
                    lhs.from(first, 0),
                    rhs.from(0, first),
                );
            }
            (first, cols, block)
        })
        .collect();
    let mut gram = vec![0f32; d * d];
    for (first, cols, block) in blocks {
        for (r, row) in block.chunks(cols).enumerate() {
            let i = first + r;
            for (c, &v) in row.iter().enumerate() {
                if first + c <= i {
                    gram[i * d + first + c] = v;
                }
            }
        }
    }
    gram
}

#[cfg(test)]
mod gram_tests {
    use super::*;

    #[test]
    fn gram_lower_is_the_lower_triangle_of_xt_x() {
        let (n, d) = (37, 29);
        let x: Vec<f32> = (0..n * d)
            .map(|i| ((i * 7919) % 23) as f32 / 7.0 - 1.5)
            .collect();
        let gram = gram_lower(&x, [n, d]);
        for i in 0..d {
            for j in 0..d {
                let expected: f32 = if j <= i {
                    (0..n).map(|r| x[r * d + i] * x[r * d + j]).sum()
                } else {
                    0.0
                };
                assert!(
                    (gram[i * d + j] - expected).abs() < 1e-3,
                    "({i}, {j}): {} vs {expected}",
                    gram[i * d + j]
                );
            }
        }
    }
}
