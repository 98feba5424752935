use super::mask::coverage;
use super::*;

/// A solid I420 picture.
struct Solid {
    w: usize,
    h: usize,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

impl Solid {
    fn new(w: usize, h: usize, yuv: (u8, u8, u8)) -> Self {
        let c = w.div_ceil(2) * h.div_ceil(2);
        Self {
            w,
            h,
            y: vec![yuv.0; w * h],
            u: vec![yuv.1; c],
            v: vec![yuv.2; c],
        }
    }
    fn picture(&self) -> Picture<'_> {
        let cw = self.w.div_ceil(2);
        Picture {
            width: self.w,
            height: self.h,
            planes: [
                Plane {
                    data: &self.y,
                    stride: self.w,
                },
                Plane {
                    data: &self.u,
                    stride: cw,
                },
                Plane {
                    data: &self.v,
                    stride: cw,
                },
            ],
        }
    }
}

fn luma(c: &Compositor, x: usize, y: usize) -> u8 {
    c.frame()[y * c.width() + x]
}

#[test]
fn blend_is_exact_at_the_ends_and_rounds_in_between() {
    for s in 0..=255u8 {
        for d in [0u8, 1, 77, 128, 254, 255] {
            let mut out = [d, d, d];
            blend(&mut out, &[s, s, s], &[255, 0, 128]);
            assert_eq!(out[0], s, "alpha 255 gives the source");
            assert_eq!(out[1], d, "alpha 0 keeps the destination");
            let want = ((f64::from(s) * 128.0 + f64::from(d) * 127.0) / 255.0).round();
            assert!((f64::from(out[2]) - want).abs() <= 1.0);
        }
    }
}

#[test]
fn colours_convert_to_bt601_limited_range() {
    let cases = [
        ("black", (0, 0, 0), (16, 128, 128)),
        ("white", (255, 255, 255), (235, 128, 128)),
        ("red", (255, 0, 0), (81, 90, 240)),
        ("green", (0, 255, 0), (145, 54, 34)),
        ("blue", (0, 0, 255), (41, 240, 110)),
    ];
    for (name, (r, g, b), want) in cases {
        assert_eq!(rgb_to_yuv(r, g, b), want, "{name}");
    }
}

#[test]
fn boxes_snap_to_pixels_or_are_refused() {
    let ok = [
        ("whole canvas", [0.0, 0.0, 1.0, 1.0], (0, 0, 640, 360)),
        ("right half", [0.5, 0.0, 0.5, 1.0], (320, 0, 640, 360)),
        (
            "rounding slack at the edge",
            [0.1, 0.1, 0.9, 0.9],
            (64, 36, 640, 360),
        ),
    ];
    for (name, b, (x0, y0, x1, y1)) in ok {
        assert_eq!(
            pixel_box((640, 360), b),
            Ok(PixelBox { x0, y0, x1, y1 }),
            "{name}"
        );
    }
    let bad = [
        ("zero width", [0.0, 0.0, 0.0, 0.5]),
        ("negative height", [0.0, 0.0, 0.5, -0.5]),
        ("outside right", [0.8, 0.0, 0.5, 0.5]),
        ("left of the canvas", [-0.5, 0.0, 0.5, 0.5]),
        ("not a number", [f64::NAN, 0.0, 0.5, 0.5]),
        ("under one pixel", [0.0, 0.0, 0.0001, 0.5]),
    ];
    for (name, b) in bad {
        assert!(
            matches!(pixel_box((640, 360), b), Err(ComposeError::Box { .. })),
            "{name}"
        );
    }
}

#[test]
fn canvases_of_bad_sizes_are_refused() {
    for (w, h) in [
        (0, 0),
        (641, 360),
        (640, 361),
        (100_000, 100_000),
        (7680, 7680),
    ] {
        assert!(Compositor::new(w, h).is_err(), "{w}x{h}");
    }
    assert!(Compositor::new(7680, 4320).is_ok());
}

#[test]
fn pictures_with_short_planes_are_refused_not_read() {
    let p = Solid::new(16, 16, (100, 100, 100));
    let mut c = Compositor::new(64, 64).unwrap();
    let mut pic = p.picture();
    pic.planes[1].data = &p.u[..10];
    assert!(matches!(
        c.draw(&pic, [0.0, 0.0, 1.0, 1.0], Shape::Rect, None),
        Err(ComposeError::Picture { .. })
    ));
    let mut pic = p.picture();
    pic.width = 0;
    assert!(c
        .draw(&pic, [0.0, 0.0, 1.0, 1.0], Shape::Rect, None)
        .is_err());
    let mut pic = p.picture();
    pic.planes[0].stride = 8; // shorter than a row
    assert!(c
        .draw(&pic, [0.0, 0.0, 1.0, 1.0], Shape::Rect, None)
        .is_err());
}

#[test]
fn a_rect_covers_its_box_exactly_in_luma_and_chroma() {
    let mut c = Compositor::new(64, 32).unwrap();
    c.fill(16, 128, 128);
    let p = Solid::new(10, 10, (200, 60, 220));
    // x 0.25..0.75 -> columns 16..48; y 0.25..0.75 -> rows 8..24.
    c.draw(&p.picture(), [0.25, 0.25, 0.5, 0.5], Shape::Rect, None)
        .unwrap();
    for y in 0..32 {
        for x in 0..64 {
            let inside = (16..48).contains(&x) && (8..24).contains(&y);
            assert_eq!(luma(&c, x, y), if inside { 200 } else { 16 }, "({x}, {y})");
        }
    }
    let u = &c.frame()[64 * 32..64 * 32 + 32 * 16];
    assert_eq!(u[4 * 32 + 8], 60);
    assert_eq!(u[4 * 32 + 7], 128);
}

#[test]
fn an_odd_edge_gives_chroma_half_coverage() {
    let mut c = Compositor::new(64, 32).unwrap();
    let p = Solid::new(9, 7, (200, 28, 228));
    // Columns 13..45 (x0 odd): the chroma sample over columns 12..14 is half covered.
    c.draw(
        &p.picture(),
        [13.0 / 64.0, 0.0, 32.0 / 64.0, 1.0],
        Shape::Rect,
        None,
    )
    .unwrap();
    let u = &c.frame()[64 * 32..64 * 32 + 32 * 16];
    assert_eq!(u[6], 78, "half of 28 over half of 128");
    assert_eq!(u[7], 28);
    assert_eq!(luma(&c, 12, 5), 16);
    assert_eq!(luma(&c, 13, 5), 200);
}

#[test]
fn cover_crops_the_longer_side_and_keeps_the_centre() {
    // A 40x10 source: columns 0..10 at 50, 10..30 at 150, 30..40 at 250. Into a square box it
    // is scaled by box/10 and only its middle 10x10 shows: all 150.
    let (w, h) = (40, 10);
    let mut p = Solid::new(w, h, (0, 128, 128));
    for y in 0..h {
        for x in 0..w {
            p.y[y * w + x] = match x {
                0..=9 => 50,
                10..=29 => 150,
                _ => 250,
            };
        }
    }
    let mut c = Compositor::new(64, 64).unwrap();
    c.draw(&p.picture(), [0.0, 0.0, 0.5, 0.5], Shape::Rect, None)
        .unwrap();
    for y in 0..32 {
        for x in 0..32 {
            assert_eq!(luma(&c, x, y), 150, "({x}, {y})");
        }
    }
    // A tall box shows the whole width (scaled by 32/40), with the bands where they belong.
    let mut c = Compositor::new(64, 64).unwrap();
    c.draw(
        &p.picture(),
        [0.0, 0.0, 0.5, 0.5 * 8.0 / 32.0],
        Shape::Rect,
        None,
    )
    .unwrap();
    assert_eq!(luma(&c, 2, 3), 50);
    assert_eq!(luma(&c, 16, 3), 150);
    assert_eq!(luma(&c, 30, 3), 250);
}

#[test]
fn circle_edges_are_within_a_pixel_and_anti_aliased() {
    let (size, bx) = (200usize, [0.25, 0.25, 0.5, 0.5]); // box 50..150, circle r = 50 at (100, 100)
    let mut c = Compositor::new(size, size).unwrap();
    c.fill(16, 128, 128);
    let p = Solid::new(30, 30, (235, 128, 128));
    c.draw(&p.picture(), bx, Shape::Circle, None).unwrap();
    let mut partial = 0;
    for y in 0..size {
        for x in 0..size {
            let d = ((x as f64 + 0.5 - 100.0).hypot(y as f64 + 0.5 - 100.0)) - 50.0;
            let v = luma(&c, x, y);
            if d < -1.0 {
                assert_eq!(v, 235, "inside ({x}, {y})");
            } else if d > 1.0 {
                assert_eq!(v, 16, "outside ({x}, {y})");
            } else if v != 235 && v != 16 {
                partial += 1;
            }
        }
    }
    assert!(
        partial > 100,
        "the edge is anti-aliased ({partial} partial pixels)"
    );
}

#[test]
fn rounded_corners_cut_the_corner_and_keep_the_sides() {
    let mut c = Compositor::new(200, 100).unwrap();
    let p = Solid::new(8, 8, (235, 128, 128));
    // Radius 0.2 of the shorter side (100) = 20 px, box the whole canvas.
    c.draw(
        &p.picture(),
        [0.0, 0.0, 1.0, 1.0],
        Shape::Rounded(0.2),
        None,
    )
    .unwrap();
    let cases = [
        ("corner pixel", (0, 0), 16),
        ("inside the corner's arc", (10, 10), 235),
        ("middle of the top side", (100, 0), 235),
        ("middle of the left side", (0, 50), 235),
        ("far corner", (199, 99), 16),
    ];
    for (name, (x, y), want) in cases {
        assert_eq!(luma(&c, x, y), want, "{name}");
    }
}

#[test]
fn coverage_is_half_on_the_outline() {
    assert_eq!(coverage(0.0), 128);
    assert_eq!(coverage(-0.5), 255);
    assert_eq!(coverage(0.5), 0);
    assert_eq!(coverage(f64::INFINITY), 0);
}

#[test]
fn odd_sources_and_tiny_boxes_draw_without_panicking() {
    for (sw, sh) in [(1, 1), (1, 9), (9, 1), (3, 5), (641, 359)] {
        let p = Solid::new(sw, sh, (100, 110, 120));
        let mut c = Compositor::new(66, 34).unwrap();
        for shape in [Shape::Rect, Shape::Rounded(0.5), Shape::Circle] {
            for b in [
                [0.0, 0.0, 1.0, 1.0],
                [0.5, 0.5, 1.0 / 66.0, 1.0 / 34.0],
                [1.0 / 66.0, 3.0 / 34.0, 7.0 / 66.0, 5.0 / 34.0],
            ] {
                c.draw(&p.picture(), b, shape, None).unwrap();
            }
        }
        assert_eq!(luma(&c, 1, 3), 100, "{sw}x{sh}");
    }
}

#[test]
fn the_layer_cache_stays_bounded() {
    let p = Solid::new(4, 4, (100, 128, 128));
    let mut c = Compositor::new(1000, 2).unwrap();
    for i in 0..600 {
        let x = f64::from(i) / 1000.0;
        c.draw(&p.picture(), [x, 0.0, 0.001, 1.0], Shape::Rect, None)
            .unwrap();
        assert!(c.layers.len() <= MAX_CACHED_LAYERS);
    }
}

#[test]
fn a_picture_drawn_again_under_its_id_is_reused_and_a_new_id_is_scaled() {
    let a = Solid::new(8, 8, (100, 128, 128));
    let b = Solid::new(8, 8, (200, 128, 128));
    let mut c = Compositor::new(32, 32).unwrap();
    let whole = [0.0, 0.0, 1.0, 1.0];
    c.draw(&a.picture(), whole, Shape::Rect, Some(1)).unwrap();
    assert_eq!(luma(&c, 5, 5), 100);
    // Same id: the scaled pixels of picture 1 are used (what the id promises).
    c.draw(&b.picture(), whole, Shape::Rect, Some(1)).unwrap();
    assert_eq!(luma(&c, 5, 5), 100);
    c.draw(&b.picture(), whole, Shape::Rect, Some(2)).unwrap();
    assert_eq!(luma(&c, 5, 5), 200);
    c.draw(&a.picture(), whole, Shape::Rect, None).unwrap();
    assert_eq!(luma(&c, 5, 5), 100, "no id: always scaled");
}

#[test]
fn copy_into_writes_each_plane_row_by_row_and_refuses_short_planes() {
    let mut c = Compositor::new(4, 2).expect("a valid canvas");
    c.fill(50, 60, 70);
    // Padded rows (stride 8 luma, 4 chroma), as an encoder's frame buffers have them.
    let (mut y, mut u, mut v) = (vec![0u8; 16], vec![0u8; 4], vec![0u8; 4]);
    c.copy_into([&mut y, &mut u, &mut v], [8, 4, 4])
        .expect("planes large enough");
    assert_eq!(y, [50, 50, 50, 50, 0, 0, 0, 0, 50, 50, 50, 50, 0, 0, 0, 0]);
    assert_eq!(u, [60, 60, 0, 0]);
    assert_eq!(v, [70, 70, 0, 0]);
    let cases: [(&str, usize, usize); 2] = [
        ("stride shorter than a row", 3, 16),
        ("plane too short", 4, 7),
    ];
    for (what, stride, len) in cases {
        let (mut y, mut u, mut v) = (vec![0u8; len], vec![0u8; 4], vec![0u8; 4]);
        assert!(
            c.copy_into([&mut y, &mut u, &mut v], [stride, 2, 2])
                .is_err(),
            "{what}"
        );
    }
}

#[test]
fn a_crop_at_scale_one_is_copied_and_equals_the_mix() {
    use super::scale::{Axis, Scaler};
    // A 6x3 picture with distinct samples.
    let data: Vec<u8> = (0u8..18).map(|v| v * 13).collect();
    let src = Plane {
        data: &data,
        stride: 6,
    };
    let cases: [(&str, f64, Option<usize>); 3] = [
        ("whole samples from 2: copied", 2.0, Some(2)),
        ("whole samples from 0: copied", 0.0, Some(0)),
        ("half-sample offset: mixed", 1.5, None),
    ];
    for (what, offset, expected) in cases {
        let x = Axis::new(3, |i| offset + i as f64, 6);
        assert_eq!(x.copy_from, expected, "{what}");
        let mut mixed_x = x.clone();
        mixed_x.copy_from = None;
        let y = Axis::new(3, |j| j as f64, 3);
        let fast = Scaler { x, y: y.clone() };
        let slow = Scaler { x: mixed_x, y };
        let (mut a, mut b, mut tmp) = (vec![0u8; 9], vec![0u8; 9], Vec::new());
        fast.plane(src, &mut a, &mut tmp);
        slow.plane(src, &mut b, &mut tmp);
        assert_eq!(a, b, "{what}");
    }
}
