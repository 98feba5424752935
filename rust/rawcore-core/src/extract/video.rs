//! A video track's segments on the output timeline: their order and offsets, clock drift applied
//! to frame times, every segment's assembly in output order (`each_output_event`) and the
//! frame survey that plans the gap fills ([`video_frames`]).

use crate::timeline::MAX_DRIFT_PPM;
use crate::video::{
    assemble_segment, FillPlan, GapTracker, PictureLog, VideoError, VideoEvent, VideoExtractConfig,
    VideoReport, VIDEO_CLOCK,
};

/// One capture of the track and where it sits on the output.
#[derive(Debug, Clone, Copy)]
pub struct VideoSegmentInput<'a> {
    /// The rtpdump capture.
    pub capture: &'a [u8],
    /// Where this segment's first packet sits on the output timeline, in ms (0 = output start).
    pub offset_ms: i64,
    /// How fast the segment's media clock runs against the output's (wall) clock, in ppm:
    /// a frame at media time `t` is written at `t · (1 + drift_ppm / 10⁶)`.
    pub drift_ppm: f64,
}

/// Nanoseconds of a 90 kHz time, exact to the nanosecond below.
pub(super) fn ns(pts_90k: u64) -> u64 {
    (u128::from(pts_90k) * 1_000_000_000 / u128::from(VIDEO_CLOCK)) as u64
}

/// A segment-relative time stretched by the segment's clock drift. Monotone for any drift the
/// timeline fits allow (far inside ±10⁶ ppm), so frame order is kept.
fn drifted(pts_90k: u64, drift_ppm: f64) -> u64 {
    if drift_ppm == 0.0 || !drift_ppm.is_finite() {
        return pts_90k;
    }
    let drift = drift_ppm.clamp(-MAX_DRIFT_PPM, MAX_DRIFT_PPM);
    let stretched = (pts_90k as f64 * (1.0 + drift / 1e6)).round();
    if stretched <= 0.0 {
        0
    } else {
        stretched as u64
    }
}

pub(super) fn segment_order(
    segments: &[VideoSegmentInput<'_>],
) -> Result<Vec<(usize, u64)>, VideoError> {
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

/// Every frame the output would hold, as columns on the output timeline (segment offsets
/// included), without writing anything: what the caller needs to plan gap fills.
#[derive(Debug, Default, Clone)]
pub struct VideoFrameColumns {
    /// Output time of each frame, 90 kHz.
    pub pts_90k: Vec<u64>,
    /// Whether each frame is a keyframe.
    pub keyframe: Vec<bool>,
    /// Picture width in force at each frame (0 before the first known size).
    pub width: Vec<u32>,
    /// Picture height in force at each frame.
    pub height: Vec<u32>,
    /// Coded size of each frame in bytes.
    pub bytes: Vec<u32>,
}

/// What the assembly hands the output stage, on the output timeline.
pub(super) enum OutputEvent<'e, 'f> {
    /// A decodable frame at `pts` (90 kHz, segment offset included) while pictures are `size`.
    Frame {
        pts: u64,
        size: (u32, u32),
        frame: &'e crate::video::VideoFrame<'f>,
    },
    /// A picture that arrived but is not written, at `pts` while pictures are `size`.
    Missed {
        pts: u64,
        size: (u32, u32),
        loss_before: bool,
    },
    /// A new decoder configuration record (H.264 `avcC`, AV1 `av1C`).
    Config(&'e [u8]),
    /// The sender's video orientation, clockwise degrees.
    Rotation(u16),
}

/// Runs the frame assembly of every segment in output order, handing `on_event` every
/// decodable frame (with its output time and the picture size in force), every picture that is
/// not written, and every change of codec configuration or orientation; returns the merged report and whether any segment had
/// packets of the track.
pub(super) fn each_output_event(
    segments: &[VideoSegmentInput<'_>],
    cfg: &VideoExtractConfig,
    order: &[(usize, u64)],
    mut on_event: impl FnMut(OutputEvent<'_, '_>) -> Result<(), VideoError>,
) -> Result<(VideoReport, bool), VideoError> {
    let mut report: Option<VideoReport> = None;
    let mut any_packets = false;
    let mut size = (0u32, 0u32);
    for &(i, offset) in order {
        let Some(seg) = segments.get(i) else { continue };
        let mut sink = |e: VideoEvent<'_>| match e {
            VideoEvent::Frame(f) => {
                if let Some(s) = f.size {
                    size = s;
                }
                on_event(OutputEvent::Frame {
                    pts: offset + drifted(f.pts_90k, seg.drift_ppm),
                    size,
                    frame: f,
                })
            }
            VideoEvent::Missed {
                pts_90k,
                loss_before,
            } => on_event(OutputEvent::Missed {
                pts: offset + drifted(pts_90k, seg.drift_ppm),
                size,
                loss_before,
            }),
            VideoEvent::Config { codec_private, .. } => {
                on_event(OutputEvent::Config(codec_private))
            }
            VideoEvent::Rotation { rotation, .. } => {
                on_event(OutputEvent::Rotation(rotation.degrees))
            }
        };
        let seg_report = match assemble_segment(seg.capture, i, cfg, &mut sink) {
            Ok(r) => {
                any_packets = true;
                r?
            }
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
    Ok((report.unwrap_or_default(), any_packets))
}

/// The frames [`super::extract_video`] would write, as columns, and the assembly report with the
/// plan of what the output shows where no new picture comes ([`FillPlan::plan`], by
/// `cfg.on_loss` and `cfg.fill_gaps`): the same plan the writer makes, known before writing so
/// that the caller can make the black pictures it asks for.
pub fn video_frames(
    segments: &[VideoSegmentInput<'_>],
    cfg: &VideoExtractConfig,
) -> Result<(VideoFrameColumns, VideoReport), VideoError> {
    let order = segment_order(segments)?;
    let mut cols = VideoFrameColumns::default();
    let mut gaps = GapTracker::default();
    let mut log = PictureLog::default();
    let (mut report, any_packets) = each_output_event(segments, cfg, &order, |event| {
        match event {
            OutputEvent::Frame { pts, size, frame } => {
                gaps.frame(pts, size);
                log.written(pts, frame.keyframe, size, frame.loss_before);
                cols.pts_90k.push(pts);
                cols.keyframe.push(frame.keyframe);
                cols.width.push(size.0);
                cols.height.push(size.1);
                cols.bytes
                    .push(u32::try_from(frame.data.len()).unwrap_or(u32::MAX));
            }
            OutputEvent::Missed {
                pts,
                size,
                loss_before,
            } => log.missed(pts, size, loss_before),
            OutputEvent::Config(_) | OutputEvent::Rotation(_) => {}
        }
        Ok(())
    })?;
    if !any_packets {
        return Err(VideoError::NoPackets {
            payload_type: cfg.payload_type,
        });
    }
    report.gaps = gaps.gaps;
    report.fill_plan = FillPlan::plan(&log, cfg.on_loss, cfg.fill_gaps);
    Ok((cols, report))
}
