//! Fuzzes the client protocol decoder: arbitrary bytes, fed in arbitrary chunks, must never
//! panic, must never buffer beyond the control-line limit, and must decode the same
//! operations whatever the chunking.
#![no_main]

use bytes::BytesMut;
use chorus_proto::{ClientOp, Decoder};
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8], chunk: usize) -> (Vec<ClientOp>, bool) {
    let mut d = Decoder::new(256, 4096);
    let mut buf = BytesMut::new();
    let mut ops = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match d.decode(&mut buf) {
                Ok(Some(op)) => ops.push(op),
                Ok(None) => break,
                Err(_) => return (ops, true),
            }
        }
        // Unterminated input is bounded by max_control_line (+ op name) or a pending payload.
        assert!(buf.len() <= 256 + 8 + 4096 + 2 + 4096, "buffered {}", buf.len());
    }
    (ops, false)
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let chunk = (data[0] as usize % 17) + 1;
    let body = &data[1..];
    let (whole, whole_err) = run(body, body.len().max(1));
    let (split, split_err) = run(body, chunk);
    assert_eq!(whole, split, "chunking changed the decoded operations");
    assert_eq!(whole_err, split_err, "chunking changed whether the input is an error");
});
