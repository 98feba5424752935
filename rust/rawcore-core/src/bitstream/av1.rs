//! AV1 OBUs (AV1 spec 5.3), the sequence header (5.5) and the `av1C` record (AV1-ISOBMFF 2.3).
//!
//! rawcore rewrites OBUs into the low-overhead bitstream format (every OBU with a size field),
//! so it needs the OBU header layout; from the sequence header it takes the maximum frame size,
//! the fields the `AV1CodecConfigurationRecord` repeats and those a frame header's length
//! depends on; from a frame header (5.9.2) its type and, up to `ref_frame_idx`, which reference
//! slots it reads and writes and its `order_hint`.

use super::{read_leb128, BitReader, BitstreamError, SlotRefs};

/// OBU types rawcore treats specially.
pub mod obu_type {
    /// Sequence header.
    pub const SEQUENCE_HEADER: u8 = 1;
    /// Temporal delimiter (dropped: Matroska and WebM store temporal units without it).
    pub const TEMPORAL_DELIMITER: u8 = 2;
    /// Frame header.
    pub const FRAME_HEADER: u8 = 3;
    /// Frame (header and tile group).
    pub const FRAME: u8 = 6;
    /// Redundant frame header.
    pub const REDUNDANT_FRAME_HEADER: u8 = 7;
    /// Tile list (dropped: only for large-scale tile decoding, never in RTP streams to play).
    pub const TILE_LIST: u8 = 8;
}

/// An OBU split into its parts, borrowing the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Obu<'a> {
    /// `obu_type`.
    pub obu_type: u8,
    /// The header byte and, when present, the extension byte, size flag as found.
    pub header: &'a [u8],
    /// The OBU payload.
    pub payload: &'a [u8],
}

/// Splits one OBU from the start of `data`. With `obu_has_size_field` the payload is the coded
/// size and the rest of `data` is returned as the remainder; without it the payload runs to the
/// end of `data` (the RTP element boundary says where the OBU ends).
pub fn split_obu(data: &[u8]) -> Result<(Obu<'_>, &[u8]), BitstreamError> {
    let &first = data.first().ok_or(BitstreamError::Exhausted {
        what: "OBU header",
        bit: 0,
    })?;
    if first & 0x80 != 0 {
        return Err(BitstreamError::Invalid {
            what: "OBU forbidden bit",
            value: 1,
        });
    }
    let has_extension = first & 0x04 != 0;
    let has_size = first & 0x02 != 0;
    let header_len = 1 + usize::from(has_extension);
    let header = data.get(..header_len).ok_or(BitstreamError::Exhausted {
        what: "OBU extension header",
        bit: 8,
    })?;
    let rest = data.get(header_len..).unwrap_or_default();
    let (payload, remainder) = if has_size {
        let (size, used) = read_leb128(rest)?;
        let body = rest.get(used..).unwrap_or_default();
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let payload = body.get(..size).ok_or(BitstreamError::Exhausted {
            what: "OBU payload shorter than its size field",
            bit: data.len() * 8,
        })?;
        (payload, body.get(size..).unwrap_or_default())
    } else {
        (rest, &[][..])
    };
    Ok((
        Obu {
            obu_type: first >> 3 & 0x0F,
            header,
            payload,
        },
        remainder,
    ))
}

/// The fields of a sequence header that rawcore uses.
#[allow(clippy::struct_excessive_bools)] // one field per flag of the wire format
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SequenceHeader {
    /// `seq_profile`.
    pub profile: u8,
    /// `seq_level_idx[0]`.
    pub level_idx0: u8,
    /// `seq_tier[0]`.
    pub tier0: bool,
    /// `reduced_still_picture_header`: every frame is a keyframe without a frame type.
    pub reduced_still_picture_header: bool,
    /// `high_bitdepth`.
    pub high_bitdepth: bool,
    /// `twelve_bit`.
    pub twelve_bit: bool,
    /// `mono_chrome`.
    pub monochrome: bool,
    /// `subsampling_x`.
    pub subsampling_x: bool,
    /// `subsampling_y`.
    pub subsampling_y: bool,
    /// `chroma_sample_position`.
    pub chroma_sample_position: u8,
    /// `max_frame_width_minus_1 + 1`.
    pub max_width: u32,
    /// `max_frame_height_minus_1 + 1`.
    pub max_height: u32,
    /// The fields a frame header's layout depends on.
    pub frames: FrameHeaderLayout,
}

/// The sequence header fields that decide how a frame header reads (AV1 5.5 and 5.9.2).
#[allow(clippy::struct_excessive_bools)] // one field per flag of the wire format
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameHeaderLayout {
    /// `decoder_model_info_present_flag`.
    pub decoder_model_info_present: bool,
    /// `equal_picture_interval` (timing info).
    pub equal_picture_interval: bool,
    /// `buffer_removal_time_length_minus_1 + 1`.
    pub buffer_removal_time_length: u8,
    /// `frame_presentation_time_length_minus_1 + 1`.
    pub frame_presentation_time_length: u8,
    /// Operating points with a decoder model: `operating_point_idc` of each (bit 31 set when
    /// `decoder_model_present_for_this_op`), at most 32.
    pub operating_points: [u32; 32],
    /// How many of `operating_points` are used.
    pub operating_point_count: u8,
    /// `frame_id_numbers_present_flag`.
    pub frame_id_numbers_present: bool,
    /// `additional_frame_id_length_minus_1 + delta_frame_id_length_minus_2 + 3`.
    pub frame_id_length: u8,
    /// `delta_frame_id_length_minus_2 + 2`.
    pub delta_frame_id_length: u8,
    /// `seq_force_screen_content_tools` (2: chosen per frame).
    pub force_screen_content_tools: u8,
    /// `seq_force_integer_mv` (2: chosen per frame).
    pub force_integer_mv: u8,
    /// `OrderHintBits` (0 without `enable_order_hint`).
    pub order_hint_bits: u8,
}

/// Bit 31 of an operating point in [`FrameHeaderLayout::operating_points`]: it has a decoder model.
const HAS_DECODER_MODEL: u32 = 1 << 31;

/// Parses a sequence header OBU payload.
#[allow(clippy::too_many_lines)] // the syntax is one long sequence of fields
pub fn parse_sequence_header(payload: &[u8]) -> Result<SequenceHeader, BitstreamError> {
    let mut r = BitReader::new(payload, "AV1 sequence header");
    let mut s = SequenceHeader {
        profile: r.bits(3)? as u8,
        ..SequenceHeader::default()
    };
    if s.profile > 2 {
        return Err(BitstreamError::Invalid {
            what: "seq_profile",
            value: u64::from(s.profile),
        });
    }
    let _still_picture = r.bit()?;
    s.reduced_still_picture_header = r.bit()?;
    let f = &mut s.frames;
    let mut buffer_delay_length = 0;
    if s.reduced_still_picture_header {
        s.level_idx0 = r.bits(5)? as u8;
    } else {
        if r.bit()? {
            // timing_info
            r.skip(64)?;
            f.equal_picture_interval = r.bit()?;
            if f.equal_picture_interval {
                let _num_ticks_per_picture_minus_1 = r.uvlc()?;
            }
            f.decoder_model_info_present = r.bit()?;
            if f.decoder_model_info_present {
                buffer_delay_length = r.bits(5)? + 1;
                r.skip(32)?; // num_units_in_decoding_tick
                f.buffer_removal_time_length = r.bits(5)? as u8 + 1;
                f.frame_presentation_time_length = r.bits(5)? as u8 + 1;
            }
        }
        let initial_display_delay_present = r.bit()?;
        let operating_points = r.bits(5)? + 1;
        for i in 0..operating_points {
            let mut idc = r.bits(12)?;
            let level = r.bits(5)? as u8;
            let tier = if level > 7 { r.bit()? } else { false };
            if i == 0 {
                s.level_idx0 = level;
                s.tier0 = tier;
            }
            if f.decoder_model_info_present && r.bit()? {
                idc |= HAS_DECODER_MODEL;
                r.skip(2 * buffer_delay_length as usize + 1)?;
            }
            if let Some(slot) = f.operating_points.get_mut(i as usize) {
                *slot = idc;
            }
            if initial_display_delay_present && r.bit()? {
                r.skip(4)?;
            }
        }
        f.operating_point_count = operating_points as u8;
    }
    let width_bits = r.bits(4)? + 1;
    let height_bits = r.bits(4)? + 1;
    s.max_width = r.bits(width_bits)? + 1;
    s.max_height = r.bits(height_bits)? + 1;
    let f = &mut s.frames;
    f.force_screen_content_tools = 2;
    f.force_integer_mv = 2;
    if !s.reduced_still_picture_header && r.bit()? {
        f.frame_id_numbers_present = true;
        let delta = r.bits(4)? as u8 + 2;
        let additional = r.bits(3)? as u8 + 1;
        f.delta_frame_id_length = delta;
        f.frame_id_length = additional + delta;
    }
    r.skip(3)?; // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
    if !s.reduced_still_picture_header {
        r.skip(4)?; // interintra, masked compound, warped motion, dual filter
        let enable_order_hint = r.bit()?;
        if enable_order_hint {
            r.skip(2)?; // jnt_comp, ref_frame_mvs
        }
        f.force_screen_content_tools = if r.bit()? { 2 } else { r.bits(1)? as u8 };
        if f.force_screen_content_tools > 0 {
            f.force_integer_mv = if r.bit()? { 2 } else { r.bits(1)? as u8 };
        }
        if enable_order_hint {
            f.order_hint_bits = r.bits(3)? as u8 + 1;
        }
    }
    r.skip(3)?; // superres, cdef, restoration
                // color_config
    s.high_bitdepth = r.bit()?;
    if s.profile == 2 && s.high_bitdepth {
        s.twelve_bit = r.bit()?;
    }
    s.monochrome = if s.profile == 1 { false } else { r.bit()? };
    let (mut primaries, mut transfer, mut matrix) = (2, 2, 2);
    if r.bit()? {
        primaries = r.bits(8)?;
        transfer = r.bits(8)?;
        matrix = r.bits(8)?;
    }
    if s.monochrome {
        s.subsampling_x = true;
        s.subsampling_y = true;
        return Ok(s);
    }
    // sRGB: BT.709 primaries, sRGB transfer, identity matrix.
    if primaries == 1 && transfer == 13 && matrix == 0 {
        return Ok(s);
    }
    let _color_range = r.bit()?;
    match s.profile {
        0 => (s.subsampling_x, s.subsampling_y) = (true, true),
        1 => {}
        _ => {
            if s.twelve_bit {
                s.subsampling_x = r.bit()?;
                if s.subsampling_x {
                    s.subsampling_y = r.bit()?;
                }
            } else {
                s.subsampling_x = true;
            }
        }
    }
    if s.subsampling_x && s.subsampling_y {
        s.chroma_sample_position = r.bits(2)? as u8;
    }
    Ok(s)
}

/// Whether a frame (or frame header) OBU payload starts a keyframe: `frame_type == KEY_FRAME`
/// and not `show_existing_frame`. Needs the sequence header for the reduced header form.
pub fn frame_is_key(payload: &[u8], seq: &SequenceHeader) -> Result<bool, BitstreamError> {
    if seq.reduced_still_picture_header {
        return Ok(true);
    }
    let mut r = BitReader::new(payload, "AV1 frame header");
    if r.bit()? {
        return Ok(false); // show_existing_frame
    }
    Ok(r.bits(2)? == 0)
}

/// `frame_type` values.
mod frame_type {
    pub const KEY: u32 = 0;
    pub const INTRA_ONLY: u32 = 2;
    pub const SWITCH: u32 = 3;
}

/// What a frame header (5.9.2) says about references, read up to `ref_frame_idx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameRefs {
    /// A key frame (shown or not).
    pub key: bool,
    /// `show_frame`, or a `show_existing_frame`.
    pub shown: bool,
    /// A `show_existing_frame` header.
    pub shows_existing: bool,
    /// Slots read and written; with `frame_refs_short_signaling` every slot counts as read.
    pub refs: SlotRefs,
    /// `order_hint`, when the sequence enables order hints (not for shown-existing frames).
    pub order_hint: Option<u32>,
}

/// Reads the reference information of a frame (or frame header) OBU payload. `temporal_id` and
/// `spatial_id` come from the OBU extension header (0 without one). A shown-existing frame reads
/// the slot it shows; since the header does not say whether that slot holds a key frame (which
/// would then refresh every slot), it counts as writing every slot, so that missing it damages
/// them all.
pub fn parse_frame_refs(
    payload: &[u8],
    seq: &SequenceHeader,
    temporal_id: u8,
    spatial_id: u8,
) -> Result<FrameRefs, BitstreamError> {
    let f = &seq.frames;
    let mut out = FrameRefs::default();
    if seq.reduced_still_picture_header {
        out.key = true;
        out.shown = true;
        out.refs.refreshes = 0xFF;
        return Ok(out);
    }
    let mut r = BitReader::new(payload, "AV1 frame header");
    let temporal_point_info = f.decoder_model_info_present && !f.equal_picture_interval;
    if r.bit()? {
        // show_existing_frame
        out.shown = true;
        out.shows_existing = true;
        out.refs = SlotRefs {
            uses: 1 << r.bits(3)?,
            refreshes: 0xFF,
        };
        return Ok(out);
    }
    let kind = r.bits(2)?;
    out.key = kind == frame_type::KEY;
    let intra = out.key || kind == frame_type::INTRA_ONLY;
    out.shown = r.bit()?;
    if out.shown && temporal_point_info {
        r.skip(usize::from(f.frame_presentation_time_length))?;
    }
    if !out.shown {
        r.skip(1)?; // showable_frame
    }
    let error_resilient = if kind == frame_type::SWITCH || (out.key && out.shown) {
        true
    } else {
        r.bit()?
    };
    r.skip(1)?; // disable_cdf_update
    let screen_content = if f.force_screen_content_tools == 2 {
        r.bit()?
    } else {
        f.force_screen_content_tools == 1
    };
    if screen_content && f.force_integer_mv == 2 {
        r.skip(1)?; // force_integer_mv
    }
    if f.frame_id_numbers_present {
        r.skip(usize::from(f.frame_id_length))?; // current_frame_id
    }
    if kind != frame_type::SWITCH {
        r.skip(1)?; // frame_size_override_flag
    }
    if f.order_hint_bits > 0 {
        out.order_hint = Some(r.bits(u32::from(f.order_hint_bits))?);
    }
    if !(intra || error_resilient) {
        r.skip(3)?; // primary_ref_frame
    }
    if f.decoder_model_info_present && r.bit()? {
        // buffer_removal_time for every operating point with a decoder model that holds
        // this frame's layers.
        for &idc in f
            .operating_points
            .iter()
            .take(usize::from(f.operating_point_count))
        {
            if idc & HAS_DECODER_MODEL == 0 {
                continue;
            }
            let idc = idc & !HAS_DECODER_MODEL;
            let in_temporal = idc >> temporal_id & 1 == 1;
            let in_spatial = idc >> (u32::from(spatial_id) + 8) & 1 == 1;
            if idc == 0 || (in_temporal && in_spatial) {
                r.skip(usize::from(f.buffer_removal_time_length))?;
            }
        }
    }
    out.refs.refreshes = if kind == frame_type::SWITCH || (out.key && out.shown) {
        0xFF
    } else {
        r.bits(8)? as u8
    };
    if intra {
        return Ok(out);
    }
    if error_resilient && f.order_hint_bits > 0 {
        r.skip(8 * usize::from(f.order_hint_bits))?; // ref_order_hint[]
    }
    if f.order_hint_bits > 0 && r.bit()? {
        // frame_refs_short_signaling: the references are derived from order hints.
        out.refs.uses = 0xFF;
        return Ok(out);
    }
    for _ in 0..7 {
        out.refs.uses |= 1 << r.bits(3)?; // ref_frame_idx
        if f.frame_id_numbers_present {
            r.skip(usize::from(f.delta_frame_id_length))?; // delta_frame_id_minus_1
        }
    }
    Ok(out)
}

/// Builds the `AV1CodecConfigurationRecord` for a sequence header OBU (written in the
/// low-overhead format, header included).
#[must_use]
pub fn build_av1c(seq: &SequenceHeader, sequence_header_obu: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + sequence_header_obu.len());
    out.push(0x81); // marker, version 1
    out.push(seq.profile << 5 | (seq.level_idx0 & 0x1F));
    out.push(
        u8::from(seq.tier0) << 7
            | u8::from(seq.high_bitdepth) << 6
            | u8::from(seq.twelve_bit) << 5
            | u8::from(seq.monochrome) << 4
            | u8::from(seq.subsampling_x) << 3
            | u8::from(seq.subsampling_y) << 2
            | (seq.chroma_sample_position & 3),
    );
    out.push(0); // no initial presentation delay
    out.extend_from_slice(sequence_header_obu);
    out
}

#[cfg(test)]
mod tests {
    // Case tables spell their row types inline, next to the rows.
    #![allow(clippy::type_complexity, clippy::items_after_statements)]

    use super::*;
    use proptest::prelude::*;

    /// The start of `tests/data/av1_160x90_4tu.obu`: temporal delimiter, then the sequence header.
    const STREAM_START: &[u8] = &[
        0x12, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x03, 0xb4, 0xfd, 0x9e, 0x06, 0xd7, 0xc8, 0x02,
    ];

    #[test]
    fn libaom_sequence_header() {
        let (td, rest) = split_obu(STREAM_START).expect("temporal delimiter");
        assert_eq!(
            (td.obu_type, td.payload.len()),
            (obu_type::TEMPORAL_DELIMITER, 0)
        );
        let (sh, _) = split_obu(rest).expect("sequence header");
        assert_eq!(sh.obu_type, obu_type::SEQUENCE_HEADER);
        let seq = parse_sequence_header(sh.payload).expect("valid header");
        assert_eq!((seq.max_width, seq.max_height), (160, 90));
        assert_eq!(
            (seq.profile, seq.monochrome, seq.subsampling_x),
            (0, false, true)
        );
        let av1c = build_av1c(&seq, &rest[..13]);
        assert_eq!(av1c[0], 0x81);
        assert_eq!(av1c[1] >> 5, 0, "profile 0");
        assert_eq!(av1c[2] & 0x0C, 0x0C, "4:2:0 subsampling");
        assert_eq!(&av1c[4..], &rest[..13]);
    }

    #[test]
    fn libaom_frame_headers_tell_their_reference_slots_and_order() {
        let stream: &[u8] = include_bytes!("../../tests/data/av1_160x90_4tu.obu");
        let mut rest = stream;
        let mut seq = None;
        let mut frames = Vec::new();
        while !rest.is_empty() {
            let (obu, next) = split_obu(rest).expect("valid stream");
            rest = next;
            match obu.obu_type {
                obu_type::SEQUENCE_HEADER => seq = parse_sequence_header(obu.payload).ok(),
                obu_type::FRAME | obu_type::FRAME_HEADER => {
                    let seq = seq.as_ref().expect("a sequence header first");
                    frames.push(parse_frame_refs(obu.payload, seq, 0, 0).expect("frame header"));
                }
                _ => {}
            }
        }
        // libaom numbers its frames (15-bit ids, 14-bit deltas): the header reads on past them.
        let seq = seq.expect("sequence header").frames;
        assert_eq!(
            (
                seq.frame_id_numbers_present,
                seq.frame_id_length,
                seq.delta_frame_id_length
            ),
            (true, 15, 14)
        );
        assert_eq!(seq.order_hint_bits, 7);
        let got: Vec<_> = frames
            .iter()
            .map(|f| (f.key, f.shown, f.refs.uses, f.refs.refreshes, f.order_hint))
            .collect();
        // The keyframe writes every slot; each inter frame reads the slots written before it
        // and writes the next one.
        assert_eq!(
            got,
            [
                (true, true, 0, 0xFF, Some(0)),
                (false, true, 0b1, 0b10, Some(1)),
                (false, true, 0b11, 0b100, Some(2)),
                (false, true, 0b111, 0b1000, Some(3)),
            ]
        );
    }

    #[test]
    fn split_obu_cases() {
        let cases: [(&str, &[u8], Result<(u8, usize, usize), ()>); 5] = [
            (
                "sized OBU leaves the remainder",
                &[0x32, 0x01, 0xAA, 0xBB],
                Ok((6, 1, 1)),
            ),
            (
                "unsized OBU runs to the end",
                &[0x30, 1, 2, 3],
                Ok((6, 3, 0)),
            ),
            (
                "extension byte belongs to the header",
                &[0x36, 0x10, 0x00],
                Ok((6, 0, 0)),
            ),
            ("forbidden bit set", &[0x80], Err(())),
            ("size larger than the data", &[0x32, 0x05, 1], Err(())),
        ];
        for (name, input, want) in cases {
            let got = split_obu(input)
                .map(|(o, rest)| (o.obu_type, o.payload.len(), rest.len()))
                .map_err(|_| ());
            assert_eq!(got, want, "{name}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..48)) {
            let _ = split_obu(&data);
            if let Ok(seq) = parse_sequence_header(&data) {
                let _ = frame_is_key(&data, &seq);
                let _ = parse_frame_refs(&data, &seq, 7, 3);
            }
            let _ = frame_is_key(&data, &SequenceHeader::default());
            let _ = parse_frame_refs(&data, &SequenceHeader::default(), 0, 0);
        }
    }
}
