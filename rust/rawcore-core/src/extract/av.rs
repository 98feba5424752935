//! Video extraction into Matroska or WebM, with Opus audio beside it when asked: captures of one
//! track in, a playable file out.
//!
//! [`extract_video`] makes one pass over the captures: the file is opened at the first decodable
//! frame, when the stream has already said what the track header needs (the keyframe's size, the
//! decoder configuration record, the orientation); every decodable frame is then written,
//! remuxed and never re-encoded, at its exact RTP time plus its segment's offset, and a picture
//! size that grows later is patched into the header at the end. VP8, VP9 and AV1 go into WebM, H.264 into
//! Matroska. Stretches without frames are reported for the caller to fill.

use std::io::{Seek, Write};

use super::video::{each_output_event, ns, segment_order, OutputEvent, VideoSegmentInput};
use super::OpusPackets;
use crate::mux::matroska::{DocType, MatroskaWriter, TrackEntry};
use crate::mux::MuxError;
use crate::video::{GapTracker, VideoCodec, VideoError, VideoExtractConfig, VideoReport};

/// A frame the caller supplies to fill a gap (black pictures encoded once), placed at its time
/// on the output timeline among the real frames.
#[derive(Debug, Clone, Copy)]
pub struct FillFrame<'a> {
    /// Output time in 90 kHz units.
    pub pts_90k: u64,
    /// The coded frame, in the track's bitstream format (AVCC for H.264).
    pub data: &'a [u8],
    /// Whether it is a keyframe.
    pub keyframe: bool,
}

/// Extracts a video track into Matroska (H.264) or WebM (VP8, VP9, AV1).
///
/// Segments without packets of the track are skipped; the report merges all segments, with gaps
/// measured on the output timeline (pauses between segments included). The output is complete
/// when this returns `Ok`.
pub fn extract_video<W: Write + Seek>(
    segments: &[VideoSegmentInput<'_>],
    cfg: &VideoExtractConfig,
    out: W,
) -> Result<VideoReport, VideoError> {
    extract_video_filled(segments, cfg, &[], DocChoice::ByCodec, out)
}

/// Which container family to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocChoice {
    /// WebM for VP8, VP9 and AV1; Matroska for H.264.
    ByCodec,
    /// Always Matroska.
    Matroska,
    /// Always WebM (an error for H.264).
    Webm,
}

/// [`extract_video`] with caller-made `fill` frames merged in by time (sorted by `pts_90k`) and
/// the container family chosen by `doc`.
pub fn extract_video_filled<W: Write + Seek>(
    segments: &[VideoSegmentInput<'_>],
    cfg: &VideoExtractConfig,
    fill: &[FillFrame<'_>],
    doc: DocChoice,
    out: W,
) -> Result<VideoReport, VideoError> {
    write_video(segments, cfg, fill, doc, None, out)
}

/// Audio to mux beside the video: the packets and where the audio's t=0 sits relative to the
/// video's t=0 on the call's timeline (positive: audio starts later), in ns.
#[derive(Debug, Clone, Copy)]
pub struct AudioBeside<'a> {
    /// The audio packets, already on their own exact timeline.
    pub packets: &'a OpusPackets,
    /// Audio t=0 minus video t=0, in ns.
    pub offset_ns: i64,
}

/// Video and Opus audio of one participant in one Matroska file, interleaved by time. The
/// earlier of the two starts at 0; the other is shifted by the offset the call timeline gives.
pub fn extract_av<W: Write + Seek>(
    segments: &[VideoSegmentInput<'_>],
    cfg: &VideoExtractConfig,
    fill: &[FillFrame<'_>],
    audio: AudioBeside<'_>,
    out: W,
) -> Result<VideoReport, VideoError> {
    write_video(segments, cfg, fill, DocChoice::Matroska, Some(audio), out)
}

/// The output file, opened at the first frame: by then the stream has said everything the
/// track header needs (the keyframe's size, the decoder configuration, the orientation), so
/// one assembly pass both learns and writes.
struct Output<'a, W: Write + Seek> {
    out: Option<W>,
    writer: Option<MatroskaWriter<W>>,
    codec: VideoCodec,
    doc: DocChoice,
    audio: Option<AudioBeside<'a>>,
    config: Option<Vec<u8>>,
    rotation: Option<u16>,
    declared: (u16, u16),
    largest: (u16, u16),
}

fn clamp_size((w, h): (u32, u32)) -> (u16, u16) {
    (
        w.min(u32::from(u16::MAX)) as u16,
        h.min(u32::from(u16::MAX)) as u16,
    )
}

impl<W: Write + Seek> Output<'_, W> {
    fn writer(&mut self, size: (u32, u32)) -> Result<&mut MatroskaWriter<W>, VideoError> {
        if self.writer.is_none() {
            let (width, height) = clamp_size(size);
            let config = self.config.clone().unwrap_or_default();
            let (natural, track) = match self.codec {
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
            let doc_type = match self.doc {
                DocChoice::ByCodec => natural,
                DocChoice::Matroska => DocType::Matroska,
                DocChoice::Webm => DocType::Webm,
            };
            let mut tracks = vec![track];
            if let Some(a) = self.audio {
                tracks.push(TrackEntry::Opus(a.packets.head));
            }
            let out = self.out.take().ok_or(VideoError::Stopped {
                reason: "the output was already used".to_owned(),
            })?;
            self.writer = Some(MatroskaWriter::with_rotation(
                out,
                doc_type,
                tracks,
                self.rotation,
            )?);
            self.declared = (width, height);
        }
        self.writer.as_mut().ok_or(VideoError::Stopped {
            reason: "the output could not be opened".to_owned(),
        })
    }
}

fn write_video<W: Write + Seek>(
    segments: &[VideoSegmentInput<'_>],
    cfg: &VideoExtractConfig,
    fill: &[FillFrame<'_>],
    doc: DocChoice,
    audio: Option<AudioBeside<'_>>,
    out: W,
) -> Result<VideoReport, VideoError> {
    let order = segment_order(segments)?;
    let mut output = Output {
        out: Some(out),
        writer: None,
        codec: cfg.codec,
        doc,
        audio,
        config: None,
        rotation: None,
        declared: (0, 0),
        largest: (0, 0),
    };
    // The earlier stream starts at 0; the later one is shifted by the timeline's offset.
    let audio_shift = audio.map_or(0, |a| a.offset_ns.max(0).unsigned_abs());
    let video_shift = audio.map_or(0, |a| a.offset_ns.min(0).unsigned_abs());
    let mut audio_packets = audio.map(|a| a.packets.iter().peekable());
    let mut audio_end = 0u64;
    let mut write_audio_until = |writer: &mut MatroskaWriter<W>, t: Option<u64>| {
        if let Some(it) = audio_packets.as_mut() {
            while let Some((at, data)) =
                it.next_if(|&(at, _)| t.is_none_or(|t| at + audio_shift <= t))
            {
                audio_end = audio_end.max(at + audio_shift);
                writer.write_frame(1, at + audio_shift, data, true)?;
            }
        }
        Ok::<(), MuxError>(())
    };
    let mut gaps = GapTracker::default();
    let mut last_ns: Option<u64> = None;
    let mut end_pts = 0u64;
    let mut pending = fill.iter().peekable();
    let mut write = |writer: &mut MatroskaWriter<W>, pts: u64, data: &[u8], key: bool| {
        // Overlapping segments must not make the track go back in time.
        let t = last_ns.map_or(ns(pts), |last| ns(pts).max(last)) + video_shift;
        last_ns = Some(t - video_shift);
        end_pts = end_pts.max(pts);
        write_audio_until(writer, Some(t))?;
        writer.write_frame(0, t, data, key)
    };
    let (mut report, any_packets) = each_output_event(segments, cfg, &order, |event| {
        match event {
            OutputEvent::Config(private) => {
                if output.config.is_none() {
                    output.config = Some(private.to_vec());
                }
            }
            OutputEvent::Rotation(degrees) => {
                // A container holds one rotation: the first the sender signalled.
                output.rotation.get_or_insert(degrees);
            }
            OutputEvent::Frame { pts, size, frame } => {
                let size = frame.size.unwrap_or(size);
                let (w, h) = clamp_size(size);
                output.largest = (output.largest.0.max(w), output.largest.1.max(h));
                let writer = output.writer(size)?;
                while let Some(ff) = pending.next_if(|ff| ff.pts_90k < pts) {
                    write(writer, ff.pts_90k, ff.data, ff.keyframe)?;
                }
                gaps.frame(pts, size);
                write(writer, pts, frame.data, frame.keyframe)?;
            }
        }
        Ok(())
    })?;
    if !any_packets {
        return Err(VideoError::NoPackets {
            payload_type: cfg.payload_type,
        });
    }
    let Some(mut writer) = output.writer.take() else {
        return Err(VideoError::NoFrames {
            frames_incomplete: report.frames_incomplete,
            frames_undecodable: report.frames_undecodable,
        });
    };
    for ff in pending {
        write(&mut writer, ff.pts_90k, ff.data, ff.keyframe)?;
    }
    write_audio_until(&mut writer, None)?;
    if output.largest != output.declared {
        // Pictures grew after the headers were written: declare a size that fits them all.
        writer.set_video_size(0, output.largest.0, output.largest.1);
    }
    let video_end = gaps
        .interval()
        .map_or(0, |interval| ns(end_pts + interval) + video_shift);
    let audio_tail = audio.map_or(0, |a| a.packets.last_end_ns() + audio_shift);
    writer.set_duration_ns(video_end.max(audio_tail).max(audio_end));
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
                drift_ppm: 0.0,
            },
            VideoSegmentInput {
                capture: &b,
                offset_ms: 1000,
                drift_ppm: 0.0,
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
            drift_ppm: 0.0,
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
