//! Video extraction into Matroska or WebM: captures of one track in, a playable file out.
//!
//! [`extract_video`] makes two passes over the captures. The first runs the frame assembly only
//! to learn what the track header needs up front (the largest picture size and the first decoder
//! configuration record); the second writes every decodable frame, remuxed and never re-encoded,
//! at its exact RTP time plus its segment's offset. VP8, VP9 and AV1 go into WebM, H.264 into
//! Matroska. Stretches without frames are reported for the caller to fill.

use std::io::{Seek, Write};

use crate::mux::matroska::{DocType, MatroskaWriter, TrackEntry};
use crate::video::{
    assemble_segment, GapTracker, VideoCodec, VideoError, VideoEvent, VideoExtractConfig,
    VideoReport, VIDEO_CLOCK,
};

/// One capture of the track and where it sits on the output.
#[derive(Debug, Clone, Copy)]
pub struct VideoSegmentInput<'a> {
    /// The rtpdump capture.
    pub capture: &'a [u8],
    /// Where this segment's first packet sits on the output timeline, in ms (0 = output start).
    pub offset_ms: i64,
}

/// Nanoseconds of a 90 kHz time, exact to the nanosecond below.
fn ns(pts_90k: u64) -> u64 {
    (u128::from(pts_90k) * 1_000_000_000 / u128::from(VIDEO_CLOCK)) as u64
}

/// What the first pass learns.
#[derive(Debug, Default)]
struct Survey {
    size: Option<(u32, u32)>,
    config: Option<Vec<u8>>,
}

fn segment_order(segments: &[VideoSegmentInput<'_>]) -> Result<Vec<(usize, u64)>, VideoError> {
    let mut order = Vec::with_capacity(segments.len());
    for (i, s) in segments.iter().enumerate() {
        let offset = u64::try_from(s.offset_ms).map_err(|_| VideoError::NegativeOffset {
            segment: i,
            offset_ms: s.offset_ms,
        })?;
        order.push((i, offset * (VIDEO_CLOCK / 1000)));
    }
    order.sort_by_key(|&(i, offset)| (offset, i));
    Ok(order)
}

/// Extracts a video track into Matroska (H.264) or WebM (VP8, VP9, AV1).
///
/// Segments without packets of the track are skipped; the report merges all segments, with gaps
/// measured on the output timeline (pauses between segments included). The output is complete
/// when this returns `Ok`.
#[allow(clippy::too_many_lines)] // survey, header and write passes read best together
pub fn extract_video<W: Write + Seek>(
    segments: &[VideoSegmentInput<'_>],
    cfg: &VideoExtractConfig,
    out: W,
) -> Result<VideoReport, VideoError> {
    let order = segment_order(segments)?;
    let mut survey = Survey::default();
    let mut any_packets = false;
    for &(i, _) in &order {
        let Some(seg) = segments.get(i) else { continue };
        let mut sink = |e: VideoEvent<'_>| {
            match e {
                VideoEvent::Frame(f) => {
                    if let Some((w, h)) = f.size {
                        let (mw, mh) = survey.size.unwrap_or((0, 0));
                        survey.size = Some((mw.max(w), mh.max(h)));
                    }
                }
                VideoEvent::Config { codec_private, .. } => {
                    if survey.config.is_none() {
                        survey.config = Some(codec_private.to_vec());
                    }
                }
                VideoEvent::Rotation { .. } => {}
            }
            Ok::<(), VideoError>(())
        };
        match assemble_segment(seg.capture, i, cfg, &mut sink) {
            Ok(r) => {
                r?;
                any_packets = true;
            }
            Err(VideoError::NoPackets { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    if !any_packets {
        return Err(VideoError::NoPackets {
            payload_type: cfg.payload_type,
        });
    }
    let Some((w, h)) = survey.size else {
        return Err(VideoError::NoFrames {
            frames_incomplete: 0,
            frames_undecodable: 0,
        });
    };
    let (width, height) = (
        w.min(u32::from(u16::MAX)) as u16,
        h.min(u32::from(u16::MAX)) as u16,
    );
    let config = survey.config.unwrap_or_default();
    let (doc, track) = match cfg.codec {
        VideoCodec::Vp8 => (DocType::Webm, TrackEntry::Vp8 { width, height }),
        VideoCodec::Vp9 => (DocType::Webm, TrackEntry::Vp9 { width, height }),
        VideoCodec::H264 => (
            DocType::Matroska,
            TrackEntry::Avc {
                width,
                height,
                avcc: config,
            },
        ),
        VideoCodec::Av1 => (
            DocType::Webm,
            TrackEntry::Av1 {
                width,
                height,
                av1c: config,
            },
        ),
    };
    let mut writer = MatroskaWriter::new(out, doc, vec![track])?;
    let mut report: Option<VideoReport> = None;
    let mut gaps = GapTracker::default();
    let mut last_ns: Option<u64> = None;
    let mut end_pts = 0u64;
    let mut size = (u32::from(width), u32::from(height));
    for &(i, offset) in &order {
        let Some(seg) = segments.get(i) else { continue };
        let mut sink = |e: VideoEvent<'_>| {
            if let VideoEvent::Frame(f) = e {
                if let Some(s) = f.size {
                    size = s;
                }
                let pts = offset + f.pts_90k;
                gaps.frame(pts, size);
                // Overlapping segments must not make the track go back in time.
                let t = last_ns.map_or(ns(pts), |last| ns(pts).max(last));
                last_ns = Some(t);
                end_pts = end_pts.max(pts);
                writer.write_frame(0, t, f.data, f.keyframe)?;
            }
            Ok::<(), VideoError>(())
        };
        let seg_report = match assemble_segment(seg.capture, i, cfg, &mut sink) {
            Ok(r) => r?,
            Err(VideoError::NoPackets { .. }) => VideoReport {
                ssrcs: vec![None],
                ..VideoReport::default()
            },
            Err(e) => return Err(e),
        };
        match &mut report {
            Some(r) => r.merge(seg_report),
            None => report = Some(seg_report),
        }
    }
    let mut report = report.unwrap_or_default();
    if let Some(interval) = gaps.interval() {
        writer.set_duration_ns(ns(end_pts + interval));
    }
    writer.finish()?;
    report.gaps = gaps.gaps;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::tests::{capture, vp8_stream};
    use std::io::Cursor;

    #[test]
    fn vp8_segments_become_one_webm_with_a_pause_gap() {
        let frames: Vec<_> = (0..6).map(|i| (i == 0, None)).collect();
        let a = capture(&vp8_stream(0, 1000, &frames).concat());
        let b = capture(&vp8_stream(500, 77_000, &frames).concat());
        let segments = [
            VideoSegmentInput {
                capture: &a,
                offset_ms: 0,
            },
            VideoSegmentInput {
                capture: &b,
                offset_ms: 1000,
            },
        ];
        let mut file = Cursor::new(Vec::new());
        let out = extract_video(&segments, &VideoExtractConfig::default(), &mut file)
            .expect("extraction succeeds");
        let bytes = file.into_inner();
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]), "EBML header");
        assert!(has(b"webm") && has(b"V_VP8"), "WebM with a VP8 track");
        assert_eq!(out.frames_emitted, 12);
        assert_eq!(out.ssrcs.len(), 2);
        // Segment a ends at 15000 (90 kHz); segment b starts at 90000.
        assert_eq!(out.gaps.len(), 1);
        assert_eq!(
            (out.gaps[0].start_pts_90k, out.gaps[0].end_pts_90k),
            (18_000, 90_000)
        );
        assert_eq!((out.gaps[0].width, out.gaps[0].height), (320, 180));
    }

    #[test]
    fn negative_offset_is_refused() {
        let a = capture(&vp8_stream(0, 0, &[(true, None)]).concat());
        let segments = [VideoSegmentInput {
            capture: &a,
            offset_ms: -5,
        }];
        let err = extract_video(
            &segments,
            &VideoExtractConfig::default(),
            Cursor::new(Vec::new()),
        )
        .expect_err("negative offset");
        assert!(matches!(
            err,
            VideoError::NegativeOffset {
                segment: 0,
                offset_ms: -5
            }
        ));
    }

    #[test]
    fn ns_conversion_is_exact() {
        assert_eq!(ns(90_000), 1_000_000_000);
        assert_eq!(ns(3000), 33_333_333);
        assert_eq!(ns(90_000 * 3600 * 30), 108_000_000_000_000);
    }
}
