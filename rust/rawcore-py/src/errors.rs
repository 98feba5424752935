//! The one mapping from core errors to the Python hierarchy in `rawcore.errors`.
//!
//! The classes are defined in Python (so pure-Python layers raise the same types) and imported
//! here by name. Every error the binding raises goes through [`CoreError`]: each core error enum
//! has a variant, and the match below names every variant that needs its own class, so a new
//! core error cannot reach Python without a decision about its class. Only a wrong argument type
//! (not a buffer, not an array) stays a built-in `TypeError`, as Python itself raises it.

use std::io;
use std::path::{Path, PathBuf};

use pyo3::PyErr;
use rawcore_core::bitstream::BitstreamError;
use rawcore_core::compose::ComposeError;
use rawcore_core::depacketize::opus::OpusError;
use rawcore_core::depacketize::VideoDepacketizeError;
use rawcore_core::{
    ExtractError, MuxError, RemuxError, RtcpError, RtpError, RtpdumpError, SdpError, SplitError,
    TimelineError, VideoError,
};

/// The Python classes, imported from `rawcore.errors` by name.
mod class {
    use pyo3::import_exception;

    import_exception!(rawcore.errors, RawcoreError);
    import_exception!(rawcore.errors, InputError);
    import_exception!(rawcore.errors, CaptureError);
    import_exception!(rawcore.errors, SdpError);
    import_exception!(rawcore.errors, OutputError);
    import_exception!(rawcore.errors, TimelineError);
}

use class::{CaptureError, InputError, OutputError, RawcoreError};

/// Declares [`CoreError`]: a variant wrapping each core error enum (with its `From`, so `?`
/// converts), then the binding's own variants, from one list.
macro_rules! core_error {
    (
        $( $(#[$doc:meta])* $variant:ident($error:ty), )*
        ; $($own:tt)*
    ) => {
        /// Any error the binding hands to Python.
        #[derive(Debug)]
        pub enum CoreError {
            $( $(#[$doc])* $variant($error), )*
            $($own)*
        }

        $(impl From<$error> for CoreError {
            fn from(e: $error) -> Self {
                Self::$variant(e)
            }
        })*
    };
}

core_error! {
    /// An unusable capture file (header or framing).
    Rtpdump(RtpdumpError),
    /// A packet that is not RTP.
    Rtp(RtpError),
    /// A datagram that is not RTCP.
    Rtcp(RtcpError),
    /// A malformed session description.
    Sdp(SdpError),
    /// A malformed codec header.
    Bitstream(BitstreamError),
    /// A malformed video payload.
    VideoDepacketize(VideoDepacketizeError),
    /// A malformed Opus packet.
    Opus(OpusError),
    /// A container that could not be written.
    Mux(MuxError),
    /// An audio extraction that failed.
    Extract(ExtractError),
    /// A video assembly or extraction that failed.
    Video(VideoError),
    /// Timeline fits that cannot be made.
    Timeline(TimelineError),
    /// A pcap, pcapng or .mjr capture that cannot be read.
    Split(SplitError),
    /// A canvas, box, shape or picture the compositor cannot take.
    Compose(ComposeError),
    /// A Matroska file that cannot be remuxed into MP4.
    Remux(RemuxError),
    ;
    /// An argument the core cannot take (an unknown codec name, a drift out of range).
    Argument(String),
    /// The output file could not be created.
    CreateOutput {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// An input file that could not be read.
    ReadInput {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl CoreError {
    /// An input file that cannot be read.
    pub fn read_input(path: &Path) -> impl Fn(io::Error) -> Self + '_ {
        move |source| Self::ReadInput {
            path: path.to_path_buf(),
            source,
        }
    }

    /// An output file that cannot be created.
    pub fn create_output(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::CreateOutput {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The Python class of a container error: the caller's choice of container, the disk, or a
/// writer invariant (a bug).
fn mux_err(e: &MuxError, msg: String) -> PyErr {
    match e {
        MuxError::NotInWebm { .. } => InputError::new_err(msg),
        MuxError::Io { .. } => OutputError::new_err(msg),
        MuxError::NoSuchTrack { .. } | MuxError::NonMonotonic { .. } | MuxError::NoTracks => {
            RawcoreError::new_err(msg)
        }
    }
}

impl From<CoreError> for PyErr {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Rtpdump(e) => CaptureError::new_err(e.to_string()),
            CoreError::Rtp(e) => CaptureError::new_err(e.to_string()),
            CoreError::Rtcp(e) => CaptureError::new_err(e.to_string()),
            CoreError::Sdp(e) => class::SdpError::new_err(e.to_string()),
            CoreError::Bitstream(e) => InputError::new_err(e.to_string()),
            CoreError::VideoDepacketize(e) => InputError::new_err(e.to_string()),
            CoreError::Opus(e) => InputError::new_err(e.to_string()),
            CoreError::Mux(e) => mux_err(&e, e.to_string()),
            CoreError::Extract(e) => {
                let msg = e.to_string();
                match e {
                    ExtractError::Capture { .. }
                    | ExtractError::NoPackets { .. }
                    | ExtractError::SsrcNotFound { .. } => CaptureError::new_err(msg),
                    ExtractError::UnsupportedCodec { .. } | ExtractError::NegativeOffset { .. } => {
                        InputError::new_err(msg)
                    }
                    ExtractError::Mux(e) => mux_err(&e, msg),
                    // Only a sink stops an extraction; the binding re-raises the sink's own error.
                    ExtractError::Stopped { .. } => RawcoreError::new_err(msg),
                }
            }
            CoreError::Video(e) => {
                let msg = e.to_string();
                match e {
                    VideoError::Capture { .. }
                    | VideoError::NoPackets { .. }
                    | VideoError::SsrcNotFound { .. }
                    | VideoError::NoFrames { .. } => CaptureError::new_err(msg),
                    VideoError::NegativeOffset { .. } => InputError::new_err(msg),
                    VideoError::Mux(e) => mux_err(&e, msg),
                    VideoError::Stopped { .. } => RawcoreError::new_err(msg),
                }
            }
            CoreError::Timeline(e) => class::TimelineError::new_err(e.to_string()),
            CoreError::Split(e) => match e {
                // Readable, but nothing rawcore extracts: the caller's choice of input.
                SplitError::DataChannel => InputError::new_err(e.to_string()),
                SplitError::Pcap(_) | SplitError::Mjr(_) | SplitError::UnknownFormat => {
                    CaptureError::new_err(e.to_string())
                }
            },
            CoreError::Compose(e) => InputError::new_err(e.to_string()),
            // A file that is not Matroska, broken, of a codec MP4 does not take, or that changed
            // while it was read: all the caller's input.
            CoreError::Remux(e) => InputError::new_err(e.to_string()),
            CoreError::ReadInput { path, source } => {
                InputError::new_err(format!("{}: cannot read ({source})", path.display()))
            }
            CoreError::Argument(msg) => InputError::new_err(msg),
            CoreError::CreateOutput { path, source } => {
                OutputError::new_err(format!("{}: cannot create ({source})", path.display()))
            }
        }
    }
}
