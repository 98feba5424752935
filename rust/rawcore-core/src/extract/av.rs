//! Video extraction into Matroska or WebM, with Opus audio beside it when asked: captures of one
//! track in, a playable file out.
//!
//! [`extract_video`] makes one pass over the captures: the file is opened at the first decodable
//! frame, when the stream has already said what the track header needs (the keyframe's size, the
//! decoder configuration record, the orientation); every decodable frame is then written,
//! remuxed and never re-encoded, at its exact RTP time plus its segment's offset, and a picture
//! size that grows later is patched into the header at the end. VP8, VP9 and AV1 go into WebM, H.264 into
//! Matroska. Stretches without frames are planned ([`FillPlan`]) with the pictures the assembly
//! met: the caller's black pictures fill what has no picture, a lost stretch keeps the last
//! picture on screen (the next block's timestamp holds it), and the last frame is written with a
//! `BlockDuration` that runs to the track's end (one frame interval after its last picture,
//! written or lost), as does the Segment's `Duration`.

use std::io::{Seek, Write};

use super::video::{each_output_event, ns, segment_order, OutputEvent, VideoSegmentInput};
use super::OpusPackets;
use crate::mux::matroska::{DocType, MatroskaWriter, TrackEntry};
use crate::mux::MuxError;
use crate::video::{
    FillPlan, GapTracker, PictureLog, VideoCodec, VideoError, VideoExtractConfig, VideoReport,
};

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
    let mut mux = Interleaver {
        audio: audio.map(|a| a.packets.iter().peekable()),
        audio_shift,
        audio_end: 0,
        video_shift,
        last_ns: None,
        last_video: None,
    };
    let mut gaps = GapTracker::default();
    let mut log = PictureLog::default();
    let mut pending = fill.iter().peekable();
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
            OutputEvent::Missed {
                pts,
                size,
                loss_before,
            } => log.missed(pts, size, loss_before),
            OutputEvent::Frame { pts, size, frame } => {
                let size = frame.size.unwrap_or(size);
                let (w, h) = clamp_size(size);
                output.largest = (output.largest.0.max(w), output.largest.1.max(h));
                let writer = output.writer(size)?;
                while let Some(ff) = pending.next_if(|ff| ff.pts_90k < pts) {
                    mux.video(writer, ff.pts_90k, ff.data, ff.keyframe)?;
                }
                gaps.frame(pts, size);
                log.written(pts, frame.keyframe, size, frame.loss_before);
                mux.video(writer, pts, frame.data, frame.keyframe)?;
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
        mux.video(&mut writer, ff.pts_90k, ff.data, ff.keyframe)?;
    }
    let plan = FillPlan::plan(&log, cfg.on_loss, cfg.fill_gaps);
    let video_end = ns(plan.end_pts_90k) + video_shift;
    let audio_end = mux.finish(&mut writer, video_end)?;
    if output.largest != output.declared {
        // Pictures grew after the headers were written: declare a size that fits them all.
        writer.set_video_size(0, output.largest.0, output.largest.1);
    }
    let audio_tail = audio.map_or(0, |a| a.packets.last_end_ns() + audio_shift);
    writer.set_duration_ns(video_end.max(audio_tail).max(audio_end));
    writer.finish()?;
    report.gaps = gaps.gaps;
    report.fill_plan = plan;
    Ok(report)
}

/// Interleaves the video frames with the audio packets due before each. Only at the end is a
/// frame known to be the last, which is to last until the track's end: the writer turns the
/// frame it wrote last into one that lasts ([`MatroskaWriter::last_frame_lasts`]), so no frame
/// is held back (nor copied) waiting for the next.
struct Interleaver<'a, I: Iterator<Item = (u64, &'a [u8])>> {
    audio: Option<std::iter::Peekable<I>>,
    audio_shift: u64,
    audio_end: u64,
    video_shift: u64,
    last_ns: Option<u64>,
    /// Output time of the last video frame written.
    last_video: Option<u64>,
}

impl<'a, I: Iterator<Item = (u64, &'a [u8])>> Interleaver<'a, I> {
    /// Writes the audio packets up to `t` (all of them for `None`).
    fn audio_until<W: Write + Seek>(
        &mut self,
        writer: &mut MatroskaWriter<W>,
        t: Option<u64>,
    ) -> Result<(), MuxError> {
        let shift = self.audio_shift;
        if let Some(it) = self.audio.as_mut() {
            while let Some((at, data)) = it.next_if(|&(at, _)| t.is_none_or(|t| at + shift <= t)) {
                self.audio_end = self.audio_end.max(at + shift);
                writer.write_frame(1, at + shift, data, true)?;
            }
        }
        Ok(())
    }

    /// Writes the next video frame (output time `pts`, 90 kHz), after the audio due before it.
    fn video<W: Write + Seek>(
        &mut self,
        writer: &mut MatroskaWriter<W>,
        pts: u64,
        data: &[u8],
        key: bool,
    ) -> Result<(), MuxError> {
        // Overlapping segments must not make the track go back in time.
        let t = self.last_ns.map_or(ns(pts), |last| ns(pts).max(last)) + self.video_shift;
        self.last_ns = Some(t - self.video_shift);
        self.audio_until(writer, Some(t))?;
        writer.write_frame(0, t, data, key)?;
        self.last_video = Some(t);
        Ok(())
    }

    /// Makes the last video frame last until `video_end` (ns) and writes the rest of the audio;
    /// returns where the audio ends.
    fn finish<W: Write + Seek>(
        mut self,
        writer: &mut MatroskaWriter<W>,
        video_end: u64,
    ) -> Result<u64, MuxError> {
        if let Some(t) = self.last_video {
            // Nothing was written after it: the audio due before it went first.
            let lasts = writer.last_frame_lasts(0, video_end.saturating_sub(t));
            debug_assert!(lasts, "the last block written is the last video frame");
        }
        self.audio_until(writer, None)?;
        Ok(self.audio_end)
    }
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
    fn lost_pictures_at_the_end_are_held_to_the_tracks_end() {
        use crate::mux::ebml::reader::parse;
        use crate::mux::ids;
        // 30 frames at 30 fps; the last 10 each lose their last packet.
        let frames: Vec<_> = (0..30).map(|i| (i == 0, None)).collect();
        let stream = vp8_stream(0, 1000, &frames);
        let packets: Vec<_> = stream
            .iter()
            .enumerate()
            .flat_map(|(i, f)| {
                let keep = if i >= 20 { f.len() - 1 } else { f.len() };
                f[..keep].to_vec()
            })
            .collect();
        let a = capture(&packets);
        let segments = [VideoSegmentInput {
            capture: &a,
            offset_ms: 0,
            drift_ppm: 0.0,
        }];
        let mut file = Cursor::new(Vec::new());
        let report = extract_video(&segments, &VideoExtractConfig::default(), &mut file)
            .expect("extraction succeeds");
        assert_eq!(report.frames_emitted, 20);
        let plan = &report.fill_plan;
        assert_eq!(
            plan.end_pts_90k, 90_000,
            "one interval after the last picture"
        );
        assert_eq!(
            plan.stretches.iter().map(|s| s.kind).collect::<Vec<_>>(),
            [crate::video::StretchKind::Freeze]
        );
        let data = file.into_inner();
        let top = parse(&data, 0..data.len());
        let segment = &top[1];
        let info = segment.find(ids::INFO).expect("info");
        let duration = info.find(ids::DURATION).expect("duration").float(&data);
        assert!((duration - 1000.0).abs() < 1e-9, "{duration}");
        // The last frame (19, at 633 ms) is a BlockGroup lasting to 1000 ms; an inter frame, so
        // it names the block before it.
        let cluster = segment.all(ids::CLUSTER).last().expect("a cluster");
        let group = cluster
            .find(ids::BLOCK_GROUP)
            .expect("the last frame in a BlockGroup");
        let cluster_ms = cluster.find(ids::TIMESTAMP).expect("time").uint(&data);
        let block = &data[group.find(ids::BLOCK).expect("block").body.clone()];
        let at = cluster_ms as i64 + i64::from(i16::from_be_bytes([block[1], block[2]]));
        assert_eq!(at, 633);
        assert_eq!(
            group
                .find(ids::BLOCK_DURATION)
                .expect("duration")
                .uint(&data),
            367
        );
        let reference = &data[group
            .find(ids::REFERENCE_BLOCK)
            .expect("reference")
            .body
            .clone()];
        assert_eq!(reference, [(-33i8) as u8]);
        assert_eq!(
            cluster.all(ids::BLOCK_GROUP).count(),
            1,
            "one BlockGroup only"
        );
    }

    /// The VP8 track (its last packets of a few frames lost) with a stray stream of the same
    /// payload type (a sender restart's few packets) interleaved.
    fn busy_vp8_capture() -> Vec<u8> {
        use crate::rtp::{build, PacketSpec};
        use crate::rtpdump::{write_header, write_rtp_record};
        use crate::video::tests::file_header;
        let frames: Vec<_> = (0..40).map(|i| (i % 15 == 0, None)).collect();
        let mut out = Vec::new();
        write_header(&mut out, &file_header());
        for (i, p) in vp8_stream(100, 5000, &frames).concat().iter().enumerate() {
            if i % 17 == 5 {
                continue; // lost
            }
            let mut record = |ssrc, seq, ts, marker, payload: &[u8]| {
                let spec = PacketSpec {
                    marker,
                    payload_type: p.pt,
                    sequence_number: seq,
                    timestamp: ts,
                    ssrc,
                    ..PacketSpec::default()
                };
                write_rtp_record(&mut out, i as u32, &build(&spec, payload)).expect("fits");
            };
            record(0x1234_5678, p.seq, p.ts, p.marker, &p.payload);
            if i % 10 == 0 {
                record(0xBEEF, i as u16, i as u32 * 3000, true, &p.payload);
            }
        }
        out
    }

    #[test]
    fn an_ssrc_from_the_analysis_gives_the_bytes_extraction_chooses_itself() {
        let a = busy_vp8_capture();
        let report = crate::analyze::analyze_capture(&a, &crate::AnalyzeConfig::default())
            .expect("analyses");
        let segments = [
            VideoSegmentInput {
                capture: &a,
                offset_ms: 0,
                drift_ppm: 0.0,
            },
            VideoSegmentInput {
                capture: &a,
                offset_ms: 3000,
                drift_ppm: 0.0,
            },
        ];
        let chosen = VideoExtractConfig {
            payload_type: Some(96),
            ..VideoExtractConfig::default()
        };
        let run = |cfg: &VideoExtractConfig| {
            let mut out = Cursor::new(Vec::new());
            let report = extract_video(&segments, cfg, &mut out).expect("extracts");
            (out.into_inner(), report)
        };
        let (want, want_report) = run(&chosen);
        assert_eq!(want_report.ssrcs, [Some(0x1234_5678); 2]);
        for (name, ssrcs) in [
            ("both named", vec![report.primary_ssrc; 2]),
            ("one left to the core", vec![None, report.primary_ssrc]),
        ] {
            let (got, got_report) = run(&VideoExtractConfig {
                ssrcs,
                ..chosen.clone()
            });
            assert!(got == want, "{name}: the same bytes");
            assert_eq!(got_report.ssrcs, want_report.ssrcs, "{name}");
            assert_eq!(
                got_report.frames_emitted, want_report.frames_emitted,
                "{name}"
            );
        }
        let wrong = VideoExtractConfig {
            ssrcs: vec![None, Some(0x0BAD)],
            ..chosen
        };
        let err = extract_video(&segments, &wrong, Cursor::new(Vec::new())).expect_err("wrong");
        assert!(
            matches!(
                err,
                VideoError::SsrcNotFound {
                    segment: 1,
                    ssrc: 0x0BAD,
                    payload_type: 96
                }
            ),
            "{err}"
        );
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
