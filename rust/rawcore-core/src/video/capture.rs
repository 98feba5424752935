//! One rtpdump capture through a fresh assembler: the track chosen, the other records counted.

use super::{VideoAssembler, VideoError, VideoEvent, VideoExtractConfig, VideoReport};
use crate::rtp::{looks_like_rtcp, RtpPacket};
use crate::rtpdump::RtpdumpReader;
use crate::track::{choose_track, count_sources, Source};

/// Runs one segment's capture through a fresh assembler.
pub(crate) fn assemble_segment<E>(
    capture: &[u8],
    segment: usize,
    cfg: &VideoExtractConfig,
    sink: &mut impl FnMut(VideoEvent<'_>) -> Result<(), E>,
) -> Result<Result<VideoReport, E>, VideoError> {
    let reader =
        RtpdumpReader::new(capture).map_err(|source| VideoError::Capture { segment, source })?;
    // The track: as the caller names it (an earlier pass chose it), else by the one rule of
    // `crate::track`, per capture.
    let named = cfg
        .payload_type
        .zip(cfg.ssrcs.get(segment).copied().flatten());
    let track = named.or_else(|| {
        count_sources(capture)
            .ok()
            .and_then(|sources| choose_track(&sources, cfg.payload_type))
            .map(|s: Source| (s.payload_type, s.ssrc))
    });
    let Some((pt, ssrc)) = track else {
        return Err(VideoError::NoPackets {
            payload_type: cfg.payload_type,
        });
    };
    let mut matched = 0u64;
    let mut asm = VideoAssembler::new(cfg);
    let (mut rtcp, mut invalid, mut other, mut padding, mut truncated) = (0, 0, 0, 0, 0);
    let mut capture_warning = None;
    for record in reader {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                capture_warning = Some(format!(
                    "segment {segment}: {e}; rest of the capture skipped"
                ));
                break;
            }
        };
        if record.is_rtcp() {
            rtcp += 1;
            continue;
        }
        let packet = match RtpPacket::parse(record.data) {
            Ok(p) => p,
            Err(_) if looks_like_rtcp(record.data) => {
                rtcp += 1;
                continue;
            }
            Err(_) => {
                invalid += 1;
                continue;
            }
        };
        if packet.payload_type != pt || packet.ssrc != ssrc {
            other += 1;
            continue;
        }
        matched += 1;
        if record.truncated {
            // A packet cut by the snap length would make its frame look complete but be short.
            truncated += 1;
            continue;
        }
        if packet.is_padding_only() {
            padding += 1;
            continue;
        }
        if let Err(e) = asm.push(&packet, sink) {
            return Ok(Err(e));
        }
    }
    if named.is_some() && matched == 0 {
        return Err(VideoError::SsrcNotFound {
            segment,
            ssrc,
            payload_type: pt,
        });
    }
    let mut report = match asm.finish(sink) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    report.payload_type = pt;
    report.ssrcs = vec![Some(ssrc)];
    report.rtcp_records = rtcp;
    report.invalid_records = invalid;
    report.other_records = other;
    report.padding_only = padding;
    report.truncated = truncated;
    if let Some(w) = capture_warning {
        report.warn(|| w);
    }
    Ok(Ok(report))
}

/// Assembles the video track of one rtpdump capture, handing events to `sink` in order.
///
/// The track is `cfg.payload_type` (or the capture's dominant payload type) with its busiest SSRC
/// ([`crate::track`]), or the SSRC `cfg.ssrcs` names for segment 0; RTX, other payload types and SSRCs, RTCP, padding-only packets and garbage
/// are skipped and counted.
/// An error from `sink` stops the assembly as [`VideoError::Stopped`].
pub fn assemble_video<E: std::fmt::Display>(
    capture: &[u8],
    cfg: &VideoExtractConfig,
    mut sink: impl FnMut(VideoEvent<'_>) -> Result<(), E>,
) -> Result<VideoReport, VideoError> {
    assemble_segment(capture, 0, cfg, &mut sink)?.map_err(|e| VideoError::Stopped {
        reason: e.to_string(),
    })
}
