//! H.264 sequence parameter sets (ITU-T H.264 7.3.2.1.1) and the `avcC` record (ISO/IEC 14496-15
//! 5.3.3.1).
//!
//! rawcore reads an SPS for the displayed picture size (macroblock counts minus the cropping
//! window), the profile/level bytes the `AVCDecoderConfigurationRecord` repeats and what it takes
//! to read a slice header's `frame_num` (7.3.3), which tells after a loss whether a reference
//! picture went missing. Everything after the cropping window (VUI) is left unread. [`annexb_to_avcc`] turns an
//! encoder's start-code framing into the length prefixes a Matroska H.264 track stores.

use super::{unescape_rbsp, BitReader, BitstreamError};

/// The fields of an SPS that rawcore uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sps {
    /// `profile_idc`.
    pub profile_idc: u8,
    /// The constraint flags byte.
    pub constraint_flags: u8,
    /// `level_idc`.
    pub level_idc: u8,
    /// `seq_parameter_set_id`.
    pub id: u32,
    /// Displayed width in pixels (cropping applied).
    pub width: u32,
    /// Displayed height in pixels (cropping applied).
    pub height: u32,
    /// `log2_max_frame_num_minus4 + 4`: the width of `frame_num`.
    pub log2_max_frame_num: u8,
    /// `separate_colour_plane_flag`: slices carry a `colour_plane_id`.
    pub separate_colour_plane: bool,
    /// `gaps_in_frame_num_value_allowed_flag`.
    pub gaps_in_frame_num_allowed: bool,
    /// The VUI's `max_num_reorder_frames` (frames a decoder holds before output: B-frames),
    /// when the SPS has a readable `bitstream_restriction`.
    pub max_num_reorder_frames: Option<u32>,
}

fn skip_hrd_parameters(r: &mut BitReader<'_>) -> Result<(), BitstreamError> {
    let cpb_cnt = r.ue()?.min(31) + 1;
    r.skip(8)?; // bit_rate_scale, cpb_size_scale
    for _ in 0..cpb_cnt {
        r.ue()?; // bit_rate_value_minus1
        r.ue()?; // cpb_size_value_minus1
        r.bit()?; // cbr_flag
    }
    r.skip(20) // four 5-bit lengths and delays
}

/// `max_num_reorder_frames` from the VUI (E.1.1), None when the VUI or its
/// `bitstream_restriction` is absent or cut short.
fn vui_reorder_frames(r: &mut BitReader<'_>) -> Result<Option<u32>, BitstreamError> {
    if !r.bit()? {
        return Ok(None); // vui_parameters_present_flag
    }
    if r.bit()? && r.bits(8)? == 255 {
        r.skip(32)?; // aspect_ratio_idc Extended_SAR: sar_width, sar_height
    }
    if r.bit()? {
        r.bit()?; // overscan_appropriate_flag
    }
    if r.bit()? {
        r.skip(4)?; // video_format, video_full_range_flag
        if r.bit()? {
            r.skip(24)?; // colour primaries, transfer, matrix
        }
    }
    if r.bit()? {
        r.ue()?; // chroma_sample_loc_type_top_field
        r.ue()?; // chroma_sample_loc_type_bottom_field
    }
    if r.bit()? {
        r.skip(65)?; // num_units_in_tick, time_scale, fixed_frame_rate_flag
    }
    let nal_hrd = r.bit()?;
    if nal_hrd {
        skip_hrd_parameters(r)?;
    }
    let vcl_hrd = r.bit()?;
    if vcl_hrd {
        skip_hrd_parameters(r)?;
    }
    if nal_hrd || vcl_hrd {
        r.bit()?; // low_delay_hrd_flag
    }
    r.bit()?; // pic_struct_present_flag
    if !r.bit()? {
        return Ok(None); // bitstream_restriction_flag
    }
    r.bit()?; // motion_vectors_over_pic_boundaries_flag
    for _ in 0..4 {
        r.ue()?; // max_bytes_per_pic_denom .. log2_max_mv_length_vertical
    }
    Ok(Some(r.ue()?))
}

/// `max_num_reorder_frames` of the first SPS in an `AVCDecoderConfigurationRecord` (a
/// Matroska H.264 track's `CodecPrivate`), None when it has none or it cannot be read.
#[must_use]
pub fn avcc_reorder_frames(avcc: &[u8]) -> Option<u32> {
    let count = avcc.get(5)? & 0x1f;
    if count == 0 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*avcc.get(6)?, *avcc.get(7)?]));
    let nal = avcc.get(8..8 + len)?;
    parse_sps(nal).ok()?.max_num_reorder_frames
}

/// Profiles whose SPS carries chroma format, bit depths and scaling matrices (7.3.2.1.1).
const HIGH_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), BitstreamError> {
    let mut last = 8i32;
    let mut next = 8i32;
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            next = (last + delta + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// Parses an SPS NAL unit (header byte included, emulation prevention still in place).
#[allow(clippy::too_many_lines)] // the syntax is one long sequence of fields
pub fn parse_sps(nal: &[u8]) -> Result<Sps, BitstreamError> {
    let rbsp = unescape_rbsp(nal.get(1..).unwrap_or_default());
    let mut r = BitReader::new(&rbsp, "H.264 SPS");
    let profile_idc = r.bits(8)? as u8;
    let constraint_flags = r.bits(8)? as u8;
    let level_idc = r.bits(8)? as u8;
    let id = r.ue()?;
    if id > 31 {
        return Err(BitstreamError::Invalid {
            what: "seq_parameter_set_id",
            value: u64::from(id),
        });
    }
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if HIGH_PROFILES.contains(&profile_idc) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc > 3 {
            return Err(BitstreamError::Invalid {
                what: "chroma_format_idc",
                value: u64::from(chroma_format_idc),
            });
        }
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()?;
        }
        let _bit_depth_luma_minus8 = r.ue()?;
        let _bit_depth_chroma_minus8 = r.ue()?;
        let _qpprime_y_zero_transform_bypass = r.bit()?;
        if r.bit()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    let log2_max_frame_num_minus4 = r.ue()?;
    if log2_max_frame_num_minus4 > 12 {
        return Err(BitstreamError::Invalid {
            what: "log2_max_frame_num_minus4",
            value: u64::from(log2_max_frame_num_minus4),
        });
    }
    match r.ue()? {
        0 => {
            let _log2_max_poc_lsb_minus4 = r.ue()?;
        }
        1 => {
            let _delta_pic_order_always_zero = r.bit()?;
            let _offset_for_non_ref_pic = r.se()?;
            let _offset_for_top_to_bottom_field = r.se()?;
            let cycle = r.ue()?;
            if cycle > 255 {
                return Err(BitstreamError::Invalid {
                    what: "num_ref_frames_in_pic_order_cnt_cycle",
                    value: u64::from(cycle),
                });
            }
            for _ in 0..cycle {
                let _offset_for_ref_frame = r.se()?;
            }
        }
        2 => {}
        other => {
            return Err(BitstreamError::Invalid {
                what: "pic_order_cnt_type",
                value: u64::from(other),
            })
        }
    }
    let _max_num_ref_frames = r.ue()?;
    let gaps_in_frame_num_allowed = r.bit()?;
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only {
        let _mb_adaptive_frame_field = r.bit()?;
    }
    let _direct_8x8_inference = r.bit()?;
    let (mut crop_l, mut crop_r, mut crop_t, mut crop_b) = (0u64, 0u64, 0u64, 0u64);
    if r.bit()? {
        crop_l = u64::from(r.ue()?);
        crop_r = u64::from(r.ue()?);
        crop_t = u64::from(r.ue()?);
        crop_b = u64::from(r.ue()?);
    }
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (crop_unit_x, crop_unit_y) = match chroma_array_type {
        1 => (2, 2 * field_factor),
        2 => (2, field_factor),
        // Monochrome or 4:4:4 (or separate planes): chroma is not subsampled.
        _ => (1, field_factor),
    };
    let full_w = width_mbs * 16;
    let full_h = field_factor * height_map_units * 16;
    let width = full_w.checked_sub(crop_unit_x * (crop_l + crop_r));
    let height = full_h.checked_sub(crop_unit_y * (crop_t + crop_b));
    let (Some(width), Some(height)) = (width, height) else {
        return Err(BitstreamError::Invalid {
            what: "frame cropping larger than the picture",
            value: crop_l + crop_r + crop_t + crop_b,
        });
    };
    // The VUI is optional reading: an SPS cut short after the size still gives the size.
    let max_num_reorder_frames = vui_reorder_frames(&mut r).ok().flatten();
    if width == 0 || height == 0 || width > u64::from(u16::MAX) || height > u64::from(u16::MAX) {
        return Err(BitstreamError::Invalid {
            what: "picture size",
            value: width.max(height),
        });
    }
    Ok(Sps {
        profile_idc,
        constraint_flags,
        level_idc,
        id,
        width: width as u32,
        height: height as u32,
        log2_max_frame_num: log2_max_frame_num_minus4 as u8 + 4,
        separate_colour_plane,
        gaps_in_frame_num_allowed,
        max_num_reorder_frames,
    })
}

/// The `pic_parameter_set_id` of a PPS NAL unit (header byte included).
pub fn pps_id(nal: &[u8]) -> Result<u32, BitstreamError> {
    pps_ids(nal).map(|(pps, _)| pps)
}

/// The `pic_parameter_set_id` and `seq_parameter_set_id` of a PPS NAL unit.
pub fn pps_ids(nal: &[u8]) -> Result<(u32, u32), BitstreamError> {
    let rbsp = unescape_rbsp(nal.get(1..nal.len().min(12)).unwrap_or_default());
    let mut r = BitReader::new(&rbsp, "H.264 PPS");
    Ok((r.ue()?, r.ue()?))
}

/// The start of a slice header (7.3.3): which PPS it uses and, with that PPS's SPS, its
/// `frame_num`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceStart {
    /// `first_mb_in_slice`.
    pub first_mb: u32,
    /// `pic_parameter_set_id`.
    pub pps_id: u32,
}

/// Reads `first_mb_in_slice`, `slice_type` and `pic_parameter_set_id` of a slice NAL unit
/// (header byte included); [`slice_frame_num`] reads on with the SPS.
pub fn slice_start(nal: &[u8]) -> Result<SliceStart, BitstreamError> {
    let rbsp = unescape_rbsp(nal.get(1..nal.len().min(16)).unwrap_or_default());
    let mut r = BitReader::new(&rbsp, "H.264 slice header");
    let first_mb = r.ue()?;
    let _slice_type = r.ue()?;
    Ok(SliceStart {
        first_mb,
        pps_id: r.ue()?,
    })
}

/// The `frame_num` of a slice NAL unit whose PPS refers to `sps`.
pub fn slice_frame_num(nal: &[u8], sps: &Sps) -> Result<u32, BitstreamError> {
    let rbsp = unescape_rbsp(nal.get(1..nal.len().min(20)).unwrap_or_default());
    let mut r = BitReader::new(&rbsp, "H.264 slice header");
    let _first_mb = r.ue()?;
    let _slice_type = r.ue()?;
    let _pps_id = r.ue()?;
    if sps.separate_colour_plane {
        r.skip(2)?; // colour_plane_id
    }
    r.bits(u32::from(sps.log2_max_frame_num))
}

/// Builds an `AVCDecoderConfigurationRecord` with 4-byte NAL lengths from SPS and PPS NAL units;
/// profile, compatibility and level come from the first SPS. `None` without an SPS or a PPS.
#[must_use]
pub fn build_avcc(sps: &[&[u8]], pps: &[&[u8]]) -> Option<Vec<u8>> {
    let first = sps.first()?;
    if pps.is_empty() {
        return None;
    }
    let mut out = vec![
        1,
        *first.get(1)?,
        *first.get(2)?,
        *first.get(3)?,
        0xFC | 3, // reserved bits, lengthSizeMinusOne = 3
        0xE0 | (sps.len().min(31) as u8),
    ];
    for nal in sps.iter().take(31) {
        out.extend_from_slice(&(nal.len().min(0xFFFF) as u16).to_be_bytes());
        out.extend_from_slice(nal.get(..0xFFFF).unwrap_or(nal));
    }
    out.push(pps.len().min(255) as u8);
    for nal in pps.iter().take(255) {
        out.extend_from_slice(&(nal.len().min(0xFFFF) as u16).to_be_bytes());
        out.extend_from_slice(nal.get(..0xFFFF).unwrap_or(nal));
    }
    Some(out)
}

/// Annex B framing (start codes) to 4-byte big-endian length prefixes, as a Matroska (`avcC`)
/// H.264 track stores access units: the data is split at every `00 00 01`, each piece loses its
/// trailing zero bytes (the extra zero of a 4-byte start code, `trailing_zero_8bits`) and empty
/// pieces are dropped. Bytes before the first start code count as a NAL unit too.
#[must_use]
pub fn annexb_to_avcc(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    let mut push = |piece: &[u8]| {
        let end = piece
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |last| last + 1);
        if let Some(nal) = piece.get(..end).filter(|nal| !nal.is_empty()) {
            out.extend_from_slice(&u32::try_from(nal.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(nal);
        }
    };
    let mut start = 0;
    let mut at = 0;
    while let Some(window) = data.get(at..at + 3) {
        if window == [0, 0, 1] {
            push(data.get(start..at).unwrap_or_default());
            at += 3;
            start = at;
        } else {
            at += 1;
        }
    }
    push(data.get(start..).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    // Case tables spell their row types inline, next to the rows.
    #![allow(clippy::type_complexity, clippy::items_after_statements)]

    use super::*;
    use proptest::prelude::*;

    /// SPS NAL units written by x264 (GStreamer `x264enc`, see tests/data/README.md).
    const SPS_HIGH444_320X180: &[u8] = &[
        0x67, 0xf4, 0x00, 0x0d, 0x90, 0xd9, 0xb2, 0x82, 0x83, 0x3f, 0x1b, 0x80, 0xb5, 0x06, 0x06,
        0x06, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0f, 0x23, 0xc5, 0x0a, 0x65, 0x80,
    ];
    const SPS_HIGH_320X180: &[u8] = &[
        0x67, 0x64, 0x00, 0x14, 0xac, 0xd9, 0x41, 0x41, 0x9f, 0x9f, 0x01, 0x6a, 0x0c, 0x0c, 0x0d,
        0x4a, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x79, 0x1e, 0x28, 0x53, 0x2c,
    ];
    const SPS_HIGH444_1280X720: &[u8] = &[
        0x67, 0xf4, 0x00, 0x1f, 0x90, 0xd9, 0xb2, 0x80, 0xa0, 0x0b, 0x76, 0x02, 0xd4, 0x04, 0x04,
        0x05, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x8f, 0x18, 0x31, 0x96,
    ];
    const SPS_HIGH_1280X720: &[u8] = &[
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x6a, 0x02, 0x02, 0x02,
        0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x47, 0x8c, 0x18, 0xcb,
    ];

    #[test]
    fn sps_cases() {
        let cases: [(&str, &[u8], (u8, u8, u32, u32)); 4] = [
            (
                "High 4:4:4, 180 rows cropped from 192",
                SPS_HIGH444_320X180,
                (244, 13, 320, 180),
            ),
            (
                "High 4:2:0, 180 rows cropped from 192",
                SPS_HIGH_320X180,
                (100, 20, 320, 180),
            ),
            (
                "High 4:4:4 720p needs no cropping",
                SPS_HIGH444_1280X720,
                (244, 31, 1280, 720),
            ),
            ("High 4:2:0 720p", SPS_HIGH_1280X720, (100, 31, 1280, 720)),
        ];
        for (name, nal, (profile, level, w, h)) in cases {
            let sps = parse_sps(nal).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                (sps.profile_idc, sps.level_idc, sps.width, sps.height),
                (profile, level, w, h),
                "{name}"
            );
        }
    }

    #[test]
    fn slice_frame_num_is_read_with_the_sps_width() {
        let sps = parse_sps(SPS_HIGH_320X180).expect("x264 SPS");
        assert_eq!(
            (
                sps.log2_max_frame_num,
                sps.separate_colour_plane,
                sps.gaps_in_frame_num_allowed
            ),
            (4, false, false)
        );
        // A P slice (nal_ref_idc 2): first_mb 0, slice_type 5, pps 0, frame_num 11 in 4 bits.
        let bits = "1" /* first_mb */
            .to_owned()
            + "00110"
            + "1"
            + "1011"
            + "1";
        let mut nal = vec![0x41];
        nal.extend(bits.as_bytes().chunks(8).map(|c| {
            u8::from_str_radix(&format!("{:0<8}", std::str::from_utf8(c).unwrap_or("")), 2)
                .unwrap_or(0)
        }));
        assert_eq!(
            slice_start(&nal).map(|s| (s.first_mb, s.pps_id)),
            Ok((0, 0))
        );
        assert_eq!(slice_frame_num(&nal, &sps), Ok(11));
        assert_eq!(pps_ids(&[0x68, 0xeb, 0xec, 0xb2, 0x2c]), Ok((0, 0)));
    }

    #[test]
    fn sps_cut_before_the_cropping_window_is_an_error() {
        // The cropping window of this SPS ends in byte 10; the VUI after it is never read.
        for len in 0..10 {
            assert!(parse_sps(&SPS_HIGH_320X180[..len]).is_err(), "length {len}");
        }
    }

    #[test]
    fn avcc_layout() {
        let pps: &[u8] = &[0x68, 0xeb, 0xec, 0xb2, 0x2c];
        let avcc = build_avcc(&[SPS_HIGH_320X180], &[pps]).expect("sps and pps given");
        assert_eq!(&avcc[..6], &[1, 0x64, 0x00, 0x14, 0xFF, 0xE1]);
        assert_eq!(&avcc[6..8], &(SPS_HIGH_320X180.len() as u16).to_be_bytes());
        let after = 8 + SPS_HIGH_320X180.len();
        assert_eq!(avcc[after], 1, "one PPS");
        assert_eq!(&avcc[after + 3..], pps);
        assert_eq!(
            build_avcc(&[SPS_HIGH_320X180], &[]),
            None,
            "no PPS, no record"
        );
        assert_eq!(pps_id(pps), Ok(0));
    }

    proptest! {
        #[test]
        fn sps_parser_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_sps(&data);
            let _ = pps_ids(&data);
            let _ = build_avcc(&[&data], &[&data]);
            let _ = slice_start(&data);
            if let Ok(sps) = parse_sps(SPS_HIGH_320X180) {
                let _ = slice_frame_num(&data, &sps);
            }
        }
    }

    #[test]
    fn annexb_to_avcc_cases() {
        let cases: [(&str, &[u8], &[u8]); 7] = [
            ("nothing", &[], &[]),
            (
                "4-byte start codes",
                &[0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3],
                &[0, 0, 0, 3, 0x67, 1, 2, 0, 0, 0, 2, 0x68, 3],
            ),
            (
                "3-byte start codes",
                &[0, 0, 1, 0x65, 9, 0, 0, 1, 0x41],
                &[0, 0, 0, 2, 0x65, 9, 0, 0, 0, 1, 0x41],
            ),
            (
                "trailing zero bytes are dropped",
                &[0, 0, 1, 0x65, 9, 0, 0, 0, 0],
                &[0, 0, 0, 2, 0x65, 9],
            ),
            (
                "bytes before the first start code are a NAL unit",
                &[0x09, 0x10, 0, 0, 1, 0x65],
                &[0, 0, 0, 2, 0x09, 0x10, 0, 0, 0, 1, 0x65],
            ),
            ("only start codes give nothing", &[0, 0, 0, 1, 0, 0, 1], &[]),
            (
                "an emulation-prevented 00 00 03 is kept",
                &[0, 0, 1, 0x65, 0, 0, 3, 1],
                &[0, 0, 0, 5, 0x65, 0, 0, 3, 1],
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(annexb_to_avcc(input), want, "{name}");
        }
    }
}
