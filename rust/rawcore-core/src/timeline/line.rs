//! The robust line fits under both timeline steps: least squares over the points still kept,
//! dropping the worst ones round by round, never below two.

/// Rejection rounds; each one peels a layer, and real data settles in two or three.
pub(super) const MAX_ROUNDS: usize = 8;

/// `y = a + b·x`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Line {
    pub(super) a: f64,
    pub(super) b: f64,
}

impl Line {
    pub(super) fn at(self, x: f64) -> f64 {
        self.a + self.b * x
    }
}

pub(super) fn kept(keep: &[bool]) -> impl Iterator<Item = usize> + '_ {
    keep.iter().enumerate().filter_map(|(i, &k)| k.then_some(i))
}

/// Drops kept points whose `score` exceeds `limit`, but always leaves the two lowest-scoring
/// ones, since a line needs two. Returns how many were dropped.
pub(super) fn reject(keep: &mut [bool], score: impl Fn(usize) -> f64, limit: f64) -> usize {
    let mut scored: Vec<(f64, usize)> = kept(keep).map(|i| (score(i), i)).collect();
    scored.sort_unstable_by(|x, y| x.0.total_cmp(&y.0));
    let mut dropped = 0;
    for &(s, i) in scored.iter().skip(2) {
        if s > limit {
            keep[i] = false;
            dropped += 1;
        }
    }
    dropped
}

/// Least squares over the kept points; `fallback_b` when they share one x.
pub(super) fn least_squares(xs: &[f64], ys: &[f64], keep: &[bool], fallback_b: f64) -> Line {
    let n = kept(keep).count() as f64;
    let mx = kept(keep).map(|i| xs[i]).sum::<f64>() / n;
    let my = kept(keep).map(|i| ys[i]).sum::<f64>() / n;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for i in kept(keep) {
        let dx = xs[i] - mx;
        sxx += dx * dx;
        sxy += dx * (ys[i] - my);
    }
    let b = if sxx > 0.0 { sxy / sxx } else { fallback_b };
    Line { a: my - b * mx, b }
}

/// The least-squares line over the kept points with its slope fixed at `b`.
pub(super) fn mean_line(xs: &[f64], ys: &[f64], keep: &[bool], b: f64) -> Line {
    let n = kept(keep).count() as f64;
    let a = kept(keep).map(|i| ys[i] - b * xs[i]).sum::<f64>() / n;
    Line { a, b }
}

pub(super) fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// Median absolute deviation from the median.
pub(super) fn mad(v: &mut [f64]) -> f64 {
    let m = median(v);
    for x in v.iter_mut() {
        *x = (*x - m).abs();
    }
    median(v)
}
