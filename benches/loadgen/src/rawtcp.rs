//! Raw loopback TCP throughput: one thread writes `bytes` in `chunk`-sized writes, another
//! reads them, no server and no protocol in between. It is the ceiling for any pub/sub figure
//! on this machine: a message server relays each byte over (at least) two such hops.
//! Blocking std sockets on plain threads, so no async runtime cost lowers the ceiling.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::json;

pub fn run(bytes: u64, chunk: usize) -> Result<serde_json::Value> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding the receiver")?;
    let addr = listener.local_addr()?;
    let receiver = thread::spawn(move || -> Result<(u64, Instant)> {
        let (mut s, _) = listener.accept().context("accepting")?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        loop {
            let n = s.read(&mut buf).context("receiving")?;
            if n == 0 {
                return Ok((got, Instant::now()));
            }
            got += n as u64;
        }
    });

    let mut s = TcpStream::connect(addr).context("connecting the sender")?;
    s.set_nodelay(true)?;
    let buf = vec![0xA5u8; chunk];
    let start = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left).map_or(chunk, |l| l.min(chunk));
        s.write_all(&buf[..n]).context("sending")?;
        left -= n as u64;
    }
    s.shutdown(Shutdown::Write)?;
    let (got, end) = receiver.join().map_err(|_| anyhow!("receiver thread panicked"))??;
    ensure!(got == bytes, "received {got} of {bytes} bytes");

    let secs = end.duration_since(start).as_secs_f64().max(1e-9);
    Ok(json!({
        "mode": "rawtcp",
        "bytes": bytes,
        "chunk": chunk,
        "secs": secs,
        "bytes_per_sec": bytes as f64 / secs,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_exactly_the_requested_bytes() {
        // An uneven tail (not a multiple of the chunk) must still arrive in full.
        let v = run(100_003, 4096).unwrap();
        assert_eq!(v["bytes"], 100_003);
        assert!(v["bytes_per_sec"].as_f64().unwrap() > 0.0);
    }
}
