//! Bilinear scaling by precomputed tables: for every output column and row, the source index
//! and an 8-bit weight, computed once per (source size, box) and reused for every frame.
//!
//! A row is made in two passes over contiguous memory: the two source rows are mixed
//! vertically into a `u16` row (only the columns the box reads), then every output pixel
//! mixes two neighbours of that row. Both loops are plain integer arithmetic the compiler
//! vectorises.

use super::Plane;

/// Positions along one axis: `index[i]` and `index[i] + 1` mixed by `weight[i] / 256`.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Left (top) source sample of each output sample.
    pub index: Vec<u32>,
    /// Weight of the right (bottom) sample, 0..=256.
    pub weight: Vec<u16>,
    /// Source samples on this axis.
    pub size: usize,
    /// When every output sample is exactly one source sample, in order (a box the picture
    /// covers at scale 1, only cropped): the first of them. Rows are then copied, not mixed.
    pub copy_from: Option<usize>,
}

impl Axis {
    /// `n` output samples whose centres are at source coordinate `pos(i)` (in samples, 0 the
    /// first sample's centre); positions beyond the edges take the edge sample.
    pub fn new(n: usize, pos: impl Fn(usize) -> f64, size: usize) -> Self {
        let last = size.saturating_sub(1) as f64;
        let mut index = Vec::with_capacity(n);
        let mut weight = Vec::with_capacity(n);
        for i in 0..n {
            let p = pos(i);
            let p = if p.is_finite() {
                p.clamp(0.0, last)
            } else {
                0.0
            };
            let i0 = p.floor();
            let mut w = ((p - i0) * 256.0).round() as u16;
            let mut i0 = i0 as u32;
            if w >= 256 {
                i0 += 1;
                w = 0;
            }
            index.push(i0);
            weight.push(w);
        }
        let first = index.first().copied().unwrap_or(0);
        let copies = (0u32..)
            .zip(index.iter().zip(&weight))
            .all(|(k, (&i, &w))| w == 0 && i == first + k);
        let copy_from = copies.then_some(first as usize);
        Self {
            index,
            weight,
            size,
            copy_from,
        }
    }

    fn span(&self) -> (usize, usize) {
        let lo = self.index.first().copied().unwrap_or(0) as usize;
        let hi = self.index.last().copied().unwrap_or(0) as usize;
        (lo, hi.max(lo))
    }
}

/// The tables of one plane of one layer.
#[derive(Debug, Clone)]
pub struct Scaler {
    /// Columns.
    pub x: Axis,
    /// Rows.
    pub y: Axis,
}

impl Scaler {
    /// Bytes its tables hold.
    #[must_use]
    pub fn bytes(&self) -> usize {
        (self.x.index.len() + self.y.index.len()) * 6
    }

    /// The whole scaled plane into `out` (`x.index.len()` bytes per row, every row).
    pub fn plane(&self, src: Plane<'_>, out: &mut [u8], tmp: &mut Vec<u16>) {
        let w = self.x.index.len();
        if w == 0 {
            return;
        }
        for (j, row) in out.chunks_exact_mut(w).enumerate() {
            self.row(src, j, tmp, row);
        }
    }

    /// Output row `j` into `out` (one byte per output column); `tmp` is scratch space.
    /// `src` was checked to hold `x.size x y.size` samples.
    // a and b (the two source rows), j, k, l and r read as the arithmetic they stand for.
    #[allow(clippy::many_single_char_names)]
    pub fn row(&self, src: Plane<'_>, j: usize, tmp: &mut Vec<u16>, out: &mut [u8]) {
        let (lo, hi) = self.x.span();
        let r0 = self.y.index[j] as usize;
        let r1 = (r0 + 1).min(self.y.size - 1);
        let wy = self.y.weight[j];
        if let (Some(x0), 0) = (self.x.copy_from, wy) {
            // Source row r0, cropped: the mix below would give these bytes exactly.
            let start = r0 * src.stride + x0;
            out.copy_from_slice(&src.data[start..start + out.len()]);
            return;
        }
        let a = &src.data[r0 * src.stride + lo..=r0 * src.stride + hi];
        let b = &src.data[r1 * src.stride + lo..=r1 * src.stride + hi];
        tmp.clear();
        tmp.extend(
            a.iter()
                .zip(b)
                .map(|(&a, &b)| u16::from(a) * (256 - wy) + u16::from(b) * wy),
        );
        // The right neighbour of the last column is itself.
        let edge = tmp.last().copied().unwrap_or(0);
        tmp.push(edge);
        for ((o, &i), &wx) in out.iter_mut().zip(&self.x.index).zip(&self.x.weight) {
            let k = i as usize - lo;
            let (l, r) = (u32::from(tmp[k]), u32::from(tmp[k + 1]));
            let wx = u32::from(wx);
            *o = ((l * (256 - wx) + r * wx + 32_768) >> 16) as u8;
        }
    }
}
