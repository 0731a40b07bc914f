//! Fuzzes the route protocol decoder (what another server sends): arbitrary bytes, fed in
//! arbitrary chunks, pinned or not, must never panic, never buffer beyond its limits, and
//! decode the same operations whatever the chunking.
#![no_main]

use bytes::BytesMut;
use chorus_proto::{RouteDecoder, RouteOp};
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8], chunk: usize, pinned: bool) -> (Vec<RouteOp>, bool) {
    let mut d = RouteDecoder::new(256, 4096);
    d.set_pinned(pinned);
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
        // Unterminated input is bounded by the INFO/CONNECT line limit (1 MiB) or a
        // pending payload.
        assert!(buf.len() <= (1 << 20) + 8 + 1 + 4096 + 2, "buffered {}", buf.len());
    }
    (ops, false)
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let chunk = (data[0] as usize % 17) + 1;
    let pinned = data[0] & 0x80 != 0;
    let body = &data[1..];
    let (whole, whole_err) = run(body, body.len().max(1), pinned);
    let (split, split_err) = run(body, chunk, pinned);
    assert_eq!(whole, split, "chunking changed the decoded operations");
    assert_eq!(whole_err, split_err, "chunking changed whether the input is an error");
});
