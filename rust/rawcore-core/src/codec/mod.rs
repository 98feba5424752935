//! Decoders for the narrowband telephony codecs whose output rawcore writes as PCM.
//!
//! G.711 ([`g711`]) maps each byte to one sample through a fixed companding law; G.722
//! ([`g722`]) is a two-band ADPCM codec with state carried from byte to byte. Both produce
//! 16-bit linear samples and never fail: every byte is a valid code.

pub mod g711;
pub mod g722;
