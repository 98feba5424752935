//! The reorder buffer takes any push/pop sequence without panicking; it releases sequence
//! numbers strictly increasing, each at most once, and holds no more than its window allows.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use rawcore_core::reorder::ReorderBuffer;
use rawcore_core::seq::SeqUnwrapper;

fuzz_target!(|data: &[u8]| {
    let Some((&window, ops)) = data.split_first() else {
        return;
    };
    let mut buffer = ReorderBuffer::<u16>::new(usize::from(window));
    let mut unwrapper = SeqUnwrapper::new();
    let mut last = None;
    let mut released = HashSet::new();
    let mut check = |seq: rawcore_core::SeqNo| {
        if let Some(prev) = last {
            assert!(seq > prev, "released {seq:?} after {prev:?}");
        }
        assert!(released.insert(seq), "released {seq:?} twice");
        last = Some(seq);
    };
    let mut wire = 0u16;
    for chunk in ops.chunks(3) {
        match chunk {
            [0, ..] => {
                if let Some(p) = buffer.pop() {
                    check(p.seq);
                }
            }
            [1, ..] => {
                if let Some(p) = buffer.pop_forced() {
                    check(p.seq);
                }
            }
            [2, ..] => {
                let seqs: Vec<_> = buffer.flush().map(|p| p.seq).collect();
                seqs.into_iter().for_each(&mut check);
            }
            [op, a, b] => {
                wire = if op & 0x80 != 0 {
                    u16::from_be_bytes([*a, *b])
                } else {
                    wire.wrapping_add(u16::from(*a)).wrapping_sub(u16::from(*b) / 16)
                };
                let seq = unwrapper.unwrap(wire);
                let _ = buffer.push(seq, wire);
            }
            _ => {}
        }
    }
    let seqs: Vec<_> = buffer.flush().map(|p| p.seq).collect();
    seqs.into_iter().for_each(&mut check);
    assert!(buffer.is_empty());
});
