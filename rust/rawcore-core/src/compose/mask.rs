//! Coverage masks: how much of each pixel of a box its shape covers (0..=255), anti-aliased.
//!
//! Coverage is taken from the signed distance of the pixel's centre to the shape's outline
//! (`0.5 - d`, clamped): exact for straight edges, within a small fraction of a pixel on
//! curves. The chroma mask averages the luma coverage of the 2x2 pixels each chroma sample
//! stands for (pixels outside the box count as uncovered), so chroma edges match luma ones.

use super::{PixelBox, Shape};

/// The luma mask of a `w x h` box, or None when the shape covers every pixel fully.
#[must_use]
pub fn luma_mask(w: usize, h: usize, shape: Shape, radius_px: f64) -> Option<Vec<u8>> {
    let (hw, hh) = (w as f64 / 2.0, h as f64 / 2.0);
    let sdf: Box<dyn Fn(f64, f64) -> f64> = match shape {
        Shape::Rect => return None,
        Shape::Rounded(_) => {
            let r = radius_px.clamp(0.0, hw.min(hh));
            if r <= 0.0 {
                return None;
            }
            Box::new(move |px, py| {
                let qx = px.abs() - (hw - r);
                let qy = py.abs() - (hh - r);
                let outside = qx.max(0.0).hypot(qy.max(0.0));
                outside + qx.max(qy).min(0.0) - r
            })
        }
        Shape::Circle => {
            let r = hw.min(hh);
            Box::new(move |px, py| px.hypot(py) - r)
        }
    };
    let mut mask = Vec::with_capacity(w * h);
    for j in 0..h {
        let py = j as f64 + 0.5 - hh;
        for i in 0..w {
            let px = i as f64 + 0.5 - hw;
            mask.push(coverage(sdf(px, py)));
        }
    }
    Some(mask)
}

/// Coverage of a pixel whose centre is `d` pixels outside the outline (negative: inside).
#[must_use]
pub fn coverage(d: f64) -> u8 {
    ((0.5 - d).clamp(0.0, 1.0) * 255.0).round() as u8
}

/// The chroma mask over `cbox` for a box `pb` with luma mask `mask` (None: fully covered).
/// None when every chroma sample is fully covered.
#[must_use]
pub fn chroma_mask(pb: &PixelBox, cbox: &PixelBox, mask: Option<&[u8]>) -> Option<Vec<u8>> {
    let bw = pb.width();
    let mut out = Vec::with_capacity(cbox.width() * cbox.height());
    let mut partial = false;
    for cy in cbox.y0..cbox.y1 {
        for cx in cbox.x0..cbox.x1 {
            let mut sum = 0u32;
            for y in 2 * cy..2 * cy + 2 {
                for x in 2 * cx..2 * cx + 2 {
                    if (pb.x0..pb.x1).contains(&x) && (pb.y0..pb.y1).contains(&y) {
                        sum += mask.map_or(255, |m| u32::from(m[(y - pb.y0) * bw + (x - pb.x0)]));
                    }
                }
            }
            let c = ((sum + 2) / 4) as u8;
            partial |= c != 255;
            out.push(c);
        }
    }
    partial.then_some(out)
}
