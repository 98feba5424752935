//! Compositing a scene's frame on YUV 4:2:0 planes: the canvas, its background, and each host's
//! picture scaled to its box with cover-crop, clipped to its shape with anti-aliased edges.
//!
//! [`Compositor`] owns one I420 canvas and a cache of prepared layers: for a (source size, box,
//! shape) it computes once the bilinear coordinate tables ([`scale`]) and the coverage masks for
//! luma and chroma ([`mask`]), so a frame costs only the scaling and the blend. Boxes are given
//! in canvas fractions and snapped to whole luma pixels here (one rule for every caller); a
//! rounded corner's radius is a fraction of the canvas's shorter side. Pictures are borrowed
//! planes with strides (I420, chroma `ceil(w/2) x ceil(h/2)`), checked before use: no input
//! makes it panic, a wrong size is a [`ComposeError`].

pub mod mask;
pub mod scale;

use std::collections::HashMap;

use mask::{chroma_mask, luma_mask};
use scale::{Axis, Scaler};

/// Largest canvas side and area the compositor takes (8K UHD).
pub const MAX_CANVAS_SIDE: usize = 7680;
/// Largest canvas area.
pub const MAX_CANVAS_PIXELS: usize = 7680 * 4320;
/// Largest source picture side.
pub const MAX_PICTURE_SIDE: usize = 16_384;
/// Rounding slack for boxes that touch the canvas edge (0.1 + 0.9 is not exactly 1.0).
const EDGE: f64 = 1e-6;
/// Prepared layers kept before the cache starts over (memory stays flat with many layouts)...
const MAX_CACHED_LAYERS: usize = 256;
/// ...and the bytes they may hold (tables, masks, scaled pictures), at least.
const MIN_CACHE_BYTES: usize = 64 << 20;

/// Why a composite cannot be made.
#[derive(thiserror::Error, Debug, PartialEq)]
pub enum ComposeError {
    /// The canvas size is zero, odd, or over the limits.
    #[error("canvas {width}x{height}: sides must be even, at least 2 and at most {MAX_CANVAS_SIDE}, area at most {MAX_CANVAS_PIXELS} pixels")]
    Canvas {
        /// Width asked for.
        width: usize,
        /// Height asked for.
        height: usize,
    },
    /// A box with no area, not finite, or outside the canvas.
    #[error("box ({x}, {y}, {w}, {h}): {problem}")]
    Box {
        /// Left edge (canvas fraction).
        x: f64,
        /// Top edge.
        y: f64,
        /// Width.
        w: f64,
        /// Height.
        h: f64,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A picture whose planes are too short for its size and strides, or of no size.
    #[error("picture {width}x{height}: {problem}")]
    Picture {
        /// Width.
        width: usize,
        /// Height.
        height: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// An unknown shape name.
    #[error("unknown shape {0:?} (rect, rounded, circle)")]
    Shape(String),
}

/// How a box clips its picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// The whole box.
    Rect,
    /// Rounded corners of `radius`, a fraction of the canvas's shorter side.
    Rounded(f64),
    /// The largest circle centred in the box.
    Circle,
}

impl Shape {
    /// A shape from its scene name (`radius` only matters for `rounded`).
    pub fn parse(name: &str, radius: f64) -> Result<Self, ComposeError> {
        match name {
            "rect" => Ok(Self::Rect),
            "rounded" => Ok(Self::Rounded(radius)),
            "circle" => Ok(Self::Circle),
            other => Err(ComposeError::Shape(other.to_owned())),
        }
    }
}

/// One plane of a borrowed picture: `stride` bytes per row.
#[derive(Debug, Clone, Copy)]
pub struct Plane<'a> {
    /// The rows.
    pub data: &'a [u8],
    /// Bytes from one row to the next.
    pub stride: usize,
}

/// A borrowed I420 picture: luma `width x height`, chroma `ceil(width/2) x ceil(height/2)`.
#[derive(Debug, Clone, Copy)]
pub struct Picture<'a> {
    /// Luma width.
    pub width: usize,
    /// Luma height.
    pub height: usize,
    /// Y, U, V.
    pub planes: [Plane<'a>; 3],
}

impl Picture<'_> {
    /// Check that every plane holds its rows, so that indexing cannot go out of bounds.
    pub fn check(&self) -> Result<(), ComposeError> {
        let fail = |problem: String| ComposeError::Picture {
            width: self.width,
            height: self.height,
            problem,
        };
        if self.width == 0 || self.height == 0 {
            return Err(fail("a picture needs a positive size".into()));
        }
        if self.width > MAX_PICTURE_SIDE || self.height > MAX_PICTURE_SIDE {
            return Err(fail(format!("larger than {MAX_PICTURE_SIDE} on a side")));
        }
        let (cw, ch) = (self.width.div_ceil(2), self.height.div_ceil(2));
        for (i, (p, w, h)) in [
            (self.planes[0], self.width, self.height),
            (self.planes[1], cw, ch),
            (self.planes[2], cw, ch),
        ]
        .into_iter()
        .enumerate()
        {
            let need = p.stride * (h - 1) + w;
            if p.stride < w || p.data.len() < need {
                return Err(fail(format!(
                    "plane {i}: {} bytes with stride {} for {w}x{h}",
                    p.data.len(),
                    p.stride
                )));
            }
        }
        Ok(())
    }
}

/// A box snapped to luma pixels: `[x0, x1) x [y0, y1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PixelBox {
    /// Left column.
    pub x0: usize,
    /// Top row.
    pub y0: usize,
    /// One past the right column.
    pub x1: usize,
    /// One past the bottom row.
    pub y1: usize,
}

impl PixelBox {
    /// Width in pixels.
    #[must_use]
    pub fn width(&self) -> usize {
        self.x1 - self.x0
    }
    /// Height in pixels.
    #[must_use]
    pub fn height(&self) -> usize {
        self.y1 - self.y0
    }
}

/// Snap a box in canvas fractions to luma pixels (edges rounded to the nearest pixel).
// x, y, w, h are a box's own names.
#[allow(clippy::many_single_char_names)]
pub fn pixel_box(canvas: (usize, usize), [x, y, w, h]: [f64; 4]) -> Result<PixelBox, ComposeError> {
    let fail = |problem| ComposeError::Box {
        x,
        y,
        w,
        h,
        problem,
    };
    if ![x, y, w, h].iter().all(|v| v.is_finite()) {
        return Err(fail("not a finite number"));
    }
    if w <= 0.0 || h <= 0.0 {
        return Err(fail("a box needs a positive width and height"));
    }
    if x < -EDGE || y < -EDGE || x + w > 1.0 + EDGE || y + h > 1.0 + EDGE {
        return Err(fail("the box reaches outside the canvas"));
    }
    let (cw, ch) = (canvas.0 as f64, canvas.1 as f64);
    let snap = |v: f64, side: f64| (v.clamp(0.0, 1.0) * side).round() as usize;
    let b = PixelBox {
        x0: snap(x, cw),
        y0: snap(y, ch),
        x1: snap(x + w, cw),
        y1: snap(y + h, ch),
    };
    if b.x1 <= b.x0 || b.y1 <= b.y0 {
        return Err(fail("smaller than one pixel on the canvas"));
    }
    Ok(b)
}

/// ITU-R BT.601 limited-range `Y'CbCr` of an sRGB colour (what swscale and x264 assume by
/// default).
// r, g, b, y, u, v are the colour science's own names.
#[allow(clippy::many_single_char_names)]
#[must_use]
pub fn rgb_to_yuv(r: u8, g: u8, b: u8) -> (u8, u8, u8) {
    let (r, g, b) = (f64::from(r), f64::from(g), f64::from(b));
    let y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0;
    let u = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0;
    let v = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0;
    let q = |c: f64| c.round().clamp(0.0, 255.0) as u8;
    (q(y), q(u), q(v))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct LayerKey {
    source: (usize, usize),
    bx: PixelBox,
    shape: u8,
    radius_px_x16: u64,
}

/// What is computed once per (source size, box, shape) and reused for every frame.
#[derive(Debug)]
struct Layer {
    bx: PixelBox,
    luma: Scaler,
    chroma: Scaler,
    /// Chroma rectangle `[cx0, cx1) x [cy0, cy1)` touched by the box.
    cbox: PixelBox,
    /// Coverage per luma pixel of the box (None: every pixel fully covered).
    mask: Option<Vec<u8>>,
    /// Coverage per chroma pixel of `cbox` (None: every pixel fully covered).
    cmask: Option<Vec<u8>>,
    /// The picture scaled to the box (Y, U, V), and the caller's id of that picture: a
    /// picture drawn again (a held frame, a screen share slower than the canvas, a tile) is
    /// only blended, not scaled again.
    scaled: [Vec<u8>; 3],
    scaled_id: Option<u64>,
}

impl Layer {
    fn bytes(&self) -> usize {
        let tables = self.luma.bytes() + self.chroma.bytes();
        let masks =
            self.mask.as_ref().map_or(0, Vec::len) + self.cmask.as_ref().map_or(0, Vec::len);
        tables + masks + self.scaled.iter().map(Vec::len).sum::<usize>()
    }
}

/// One I420 canvas and the prepared layers drawn on it.
#[derive(Debug)]
pub struct Compositor {
    width: usize,
    height: usize,
    /// Y then U then V, contiguous (`width * height * 3 / 2` bytes).
    frame: Vec<u8>,
    layers: HashMap<LayerKey, Layer>,
    /// Bytes held by `layers`.
    cached_bytes: usize,
    row: Vec<u16>,
}

impl Compositor {
    /// A canvas of `width x height` (even sides), black.
    pub fn new(width: usize, height: usize) -> Result<Self, ComposeError> {
        if width < 2
            || height < 2
            || width % 2 == 1
            || height % 2 == 1
            || width > MAX_CANVAS_SIDE
            || height > MAX_CANVAS_SIDE
            || width * height > MAX_CANVAS_PIXELS
        {
            return Err(ComposeError::Canvas { width, height });
        }
        let mut c = Self {
            width,
            height,
            frame: vec![0; width * height * 3 / 2],
            layers: HashMap::new(),
            cached_bytes: 0,
            row: Vec::new(),
        };
        c.fill(16, 128, 128);
        Ok(c)
    }

    /// Canvas width.
    #[must_use]
    pub fn width(&self) -> usize {
        self.width
    }

    /// Canvas height.
    #[must_use]
    pub fn height(&self) -> usize {
        self.height
    }

    /// The frame as it stands: Y, U, V planes back to back.
    #[must_use]
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// Copy the frame into an I420 picture of the canvas's size laid out by its caller (an
    /// encoder's frame buffers): rows `strides` bytes apart in each plane.
    ///
    /// # Errors
    /// `ComposeError::Picture` when a stride is shorter than its plane's row or a plane is too
    /// short for the canvas's rows.
    pub fn copy_into(
        &self,
        planes: [&mut [u8]; 3],
        strides: [usize; 3],
    ) -> Result<(), ComposeError> {
        let (w, h) = (self.width, self.height);
        let luma = w * h;
        let sources = [
            (&self.frame[..luma], w, h),
            (&self.frame[luma..luma + luma / 4], w / 2, h / 2),
            (&self.frame[luma + luma / 4..], w / 2, h / 2),
        ];
        for ((dst, stride), (src, row, rows)) in planes.into_iter().zip(strides).zip(sources) {
            if stride < row || dst.len() < stride * (rows - 1) + row {
                return Err(ComposeError::Picture {
                    width: w,
                    height: h,
                    problem: "destination plane too short for the canvas".to_string(),
                });
            }
            for (d, s) in dst.chunks_mut(stride).zip(src.chunks_exact(row)) {
                d[..row].copy_from_slice(s);
            }
        }
        Ok(())
    }

    /// Paint the whole canvas one colour.
    pub fn fill(&mut self, y: u8, u: u8, v: u8) {
        let luma = self.width * self.height;
        let quarter = luma / 4;
        self.frame[..luma].fill(y);
        self.frame[luma..luma + quarter].fill(u);
        self.frame[luma + quarter..].fill(v);
    }

    /// Draw `picture` into the box (canvas fractions), scaled to cover it keeping its aspect,
    /// centred, clipped to `shape`, over what is already there. `picture_id` names the
    /// picture's content: drawn again into the same box with the same id, its scaled pixels
    /// are reused (None: always scale).
    pub fn draw(
        &mut self,
        picture: &Picture<'_>,
        bx: [f64; 4],
        shape: Shape,
        picture_id: Option<u64>,
    ) -> Result<(), ComposeError> {
        picture.check()?;
        let pb = pixel_box((self.width, self.height), bx)?;
        let radius_px = match shape {
            Shape::Rounded(r) if r.is_finite() && r > 0.0 => {
                r.min(0.5) * self.width.min(self.height) as f64
            }
            _ => 0.0,
        };
        let key = LayerKey {
            source: (picture.width, picture.height),
            bx: pb,
            shape: match shape {
                Shape::Rect => 0,
                Shape::Rounded(_) => 1,
                Shape::Circle => 2,
            },
            radius_px_x16: (radius_px * 16.0).round() as u64,
        };
        if !self.layers.contains_key(&key) {
            let layer = prepare(pb, picture.width, picture.height, shape, radius_px);
            let budget = MIN_CACHE_BYTES.max(8 * self.frame.len());
            if self.layers.len() >= MAX_CACHED_LAYERS || self.cached_bytes + layer.bytes() > budget
            {
                self.layers.clear();
                self.cached_bytes = 0;
            }
            self.cached_bytes += layer.bytes();
            self.layers.insert(key, layer);
        }
        let Some(layer) = self.layers.get_mut(&key) else {
            return Ok(()); // inserted just above
        };
        if picture_id.is_none() || layer.scaled_id != picture_id {
            let src = picture.planes;
            let [sy, su, sv] = &mut layer.scaled;
            layer.luma.plane(src[0], sy, &mut self.row);
            layer.chroma.plane(src[1], su, &mut self.row);
            layer.chroma.plane(src[2], sv, &mut self.row);
            layer.scaled_id = picture_id;
        }
        let (w, h) = (self.width, self.height);
        let (cw, ch) = (w / 2, h / 2);
        let (y_plane, rest) = self.frame.split_at_mut(w * h);
        let (u_plane, v_plane) = rest.split_at_mut(cw * ch);
        let [sy, su, sv] = &layer.scaled;
        blit(y_plane, w, &layer.bx, sy, layer.mask.as_deref());
        blit(u_plane, cw, &layer.cbox, su, layer.cmask.as_deref());
        blit(v_plane, cw, &layer.cbox, sv, layer.cmask.as_deref());
        Ok(())
    }
}

/// The scale tables and masks of one layer.
fn prepare(pb: PixelBox, sw: usize, sh: usize, shape: Shape, radius_px: f64) -> Layer {
    let (bw, bh) = (pb.width() as f64, pb.height() as f64);
    // Cover: the larger of the two scales, the source centred and cropped on the other axis.
    let s = (bw / sw as f64).max(bh / sh as f64);
    let ox = (sw as f64 - bw / s) / 2.0;
    let oy = (sh as f64 - bh / s) / 2.0;
    let luma = Scaler {
        x: Axis::new(pb.width(), |i| ox + (i as f64 + 0.5) / s - 0.5, sw),
        y: Axis::new(pb.height(), |j| oy + (j as f64 + 0.5) / s - 0.5, sh),
    };
    let cbox = PixelBox {
        x0: pb.x0 / 2,
        y0: pb.y0 / 2,
        x1: pb.x1.div_ceil(2),
        y1: pb.y1.div_ceil(2),
    };
    // A chroma sample covers luma [2c, 2c + 2); its centre, in source chroma coordinates.
    let (scw, sch) = (sw.div_ceil(2), sh.div_ceil(2));
    let cx0 = cbox.x0 as f64;
    let cy0 = cbox.y0 as f64;
    let chroma = Scaler {
        x: Axis::new(
            cbox.width(),
            |i| (ox + (2.0 * (cx0 + i as f64) + 1.0 - pb.x0 as f64) / s) / 2.0 - 0.5,
            scw,
        ),
        y: Axis::new(
            cbox.height(),
            |j| (oy + (2.0 * (cy0 + j as f64) + 1.0 - pb.y0 as f64) / s) / 2.0 - 0.5,
            sch,
        ),
    };
    let mask = luma_mask(pb.width(), pb.height(), shape, radius_px);
    let cmask = chroma_mask(&pb, &cbox, mask.as_deref());
    let chroma_len = cbox.width() * cbox.height();
    Layer {
        bx: pb,
        luma,
        chroma,
        cbox,
        mask,
        cmask,
        scaled: [
            vec![0; pb.width() * pb.height()],
            vec![0; chroma_len],
            vec![0; chroma_len],
        ],
        scaled_id: None,
    }
}

/// Copy the scaled rows `src` into `bx` of `dst` (rows of `stride`), blended by `mask`.
fn blit(dst: &mut [u8], stride: usize, bx: &PixelBox, src: &[u8], mask: Option<&[u8]>) {
    let bw = bx.width();
    for (j, row) in src.chunks_exact(bw).enumerate() {
        let start = (bx.y0 + j) * stride + bx.x0;
        let target = &mut dst[start..start + bw];
        match mask {
            None => target.copy_from_slice(row),
            Some(m) => blend(target, row, &m[j * bw..(j + 1) * bw]),
        }
    }
}

/// `dst = (src * a + dst * (255 - a)) / 255`, rounded.
fn blend(dst: &mut [u8], src: &[u8], alpha: &[u8]) {
    for ((d, &s), &a) in dst.iter_mut().zip(src).zip(alpha) {
        let a = u32::from(a);
        let t = u32::from(s) * a + u32::from(*d) * (255 - a) + 127;
        *d = ((t + 1 + (t >> 8)) >> 8) as u8;
    }
}

#[cfg(test)]
mod tests;
