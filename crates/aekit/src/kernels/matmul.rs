//! Matrix products on `f32` slices through the `gemm` crate (the one flex uses): operands
//! with any row and column strides, one single-threaded call ([`serial_product`]) or the
//! output split into one block per thread ([`product`]; see `linear.rs` for why).

use rayon::prelude::*;

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
    fn from(self, row: usize, col: usize) -> Self {
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
    [m, n, k]: [usize; 3],
    lhs: Matrix,
    rhs: Matrix,
    finish: impl Fn(&mut [f32], usize) + Sync,
) {
    assert_eq!(out.len(), m * n);
    if out.is_empty() {
        return;
    }
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
                serial_product(block, n, [count, n, k], lhs.from(first, 0), rhs);
                finish(block, first);
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
            assert!(lhs.holds(m, k) && rhs.from(0, first).holds(k, count));
            // SAFETY: `dst` is column `first` of the `m × n` output, whose columns
            // `first..first + count` no other block writes; the operands hold their
            // matrices (checked above).
            unsafe { gemm_raw(dst, n, [m, count, k], lhs, rhs.from(0, first)) };
        });
        finish(out, 0);
    }
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
    unsafe { gemm_raw(dst.as_mut_ptr(), dst_row_stride, [m, n, k], lhs, rhs) };
}

/// # Safety
/// `dst` must be valid for writes of every element of an `m×n` matrix with row stride
/// `dst_row_stride` (column stride 1) that no other thread touches meanwhile; `lhs` and `rhs`
/// must hold their `m×k` and `k×n` matrices.
unsafe fn gemm_raw(
    dst: *mut f32,
    dst_row_stride: usize,
    [m, n, k]: [usize; 3],
    lhs: Matrix,
    rhs: Matrix,
) {
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_row_stride as isize,
            false,
            lhs.values.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.values.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
