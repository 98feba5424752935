//! `av1pay [MTU]`: AV1 temporal units in, RTP payloads out, packetized by webrtc-rs'
//! `Av1Payloader` (a port of libwebrtc's `RtpPacketizerAv1`), so that the tests hold rawcore's
//! AV1 depacketizer to a payloader it shares no code with.
//!
//! stdin: temporal units, each a 4-byte big-endian length and the OBUs in the low-overhead
//! format (size fields set), as an encoder writes them. stdout: per temporal unit a 2-byte
//! big-endian payload count, then each payload as a 2-byte big-endian length and its bytes. The
//! caller adds the RTP headers (the marker goes on a unit's last payload). MTU: the largest
//! payload, 1200 bytes by default.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use bytes::Bytes;
use rtp::codecs::av1::Av1Payloader;
use rtp::packetizer::Payloader;

fn run() -> Result<(), String> {
    let mtu = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|e| format!("MTU {arg:?}: {e}"))?,
        None => 1200,
    };
    let mut input = Vec::new();
    io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| format!("stdin: {e}"))?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut payloader = Av1Payloader {};
    let mut rest = input.as_slice();
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or("a temporal unit's length is cut short")?;
        let len = u32::from_be_bytes(*len) as usize;
        let unit = tail.get(..len).ok_or("a temporal unit is cut short")?;
        rest = tail.get(len..).unwrap_or_default();
        let payloads = payloader
            .payload(mtu, &Bytes::copy_from_slice(unit))
            .map_err(|e| format!("payloader: {e}"))?;
        let count = u16::try_from(payloads.len()).map_err(|_| "too many payloads")?;
        let mut write = |bytes: &[u8]| out.write_all(bytes).map_err(|e| format!("stdout: {e}"));
        write(&count.to_be_bytes())?;
        for p in &payloads {
            let n = u16::try_from(p.len()).map_err(|_| "a payload over 64 KiB")?;
            write(&n.to_be_bytes())?;
            write(p)?;
        }
    }
    out.flush().map_err(|e| format!("stdout: {e}"))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("av1pay: {e}");
            ExitCode::FAILURE
        }
    }
}
