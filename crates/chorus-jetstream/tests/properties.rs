//! Properties of the encodings and of the duplicate window.

use chorus_jetstream::go::{
    Timestamp, base64_decode, base64_encode, duration_string, parse_duration, to_json_string,
};
use chorus_jetstream::stream::config::StreamConfig;
use chorus_jetstream::stream::headers;
use chorus_jetstream::stream::publish::DedupeWindow;
use proptest::prelude::*;

proptest! {
    #[test]
    fn timestamps_round_trip(nanos in any::<i64>()) {
        let t = Timestamp::from_unix_nanos(nanos);
        let s = t.to_string();
        let back = Timestamp::parse(&s).unwrap();
        prop_assert_eq!(back, t);
        prop_assert_eq!(back.unix_nanos(), nanos);
        // Go trims the fraction's trailing zeros and never leaves a bare dot.
        if s.contains('.') {
            prop_assert!(!s.ends_with("0Z") && !s.ends_with(".Z"), "{}", s);
        }
    }

    #[test]
    fn durations_print_what_they_parse(n in -(1i64 << 62)..(1i64 << 62)) {
        let s = duration_string(n);
        prop_assert_eq!(parse_duration(&s), Ok(n), "{}", s);
    }

    #[test]
    fn base64_round_trips(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let s = base64_encode(&data);
        prop_assert_eq!(s.len() % 4, 0);
        prop_assert_eq!(base64_decode(&s).unwrap(), data);
    }

    #[test]
    fn appended_headers_read_back(
        pairs in proptest::collection::vec(("X-[A-Za-z-]{1,8}", "[!-~]{1,12}"), 1..6)
    ) {
        let mut block = Vec::new();
        for (k, v) in &pairs {
            block = headers::append(&block, k, v);
        }
        prop_assert!(block.starts_with(b"NATS/1.0\r\n") && block.ends_with(b"\r\n\r\n"));
        for (k, v) in &pairs {
            // The first occurrence wins, as in nats-server.
            let first = &pairs.iter().find(|(k2, _)| k2 == k).unwrap().1;
            prop_assert_eq!(headers::get(&block, k), Some(first.as_bytes()), "{} = {}", k, v);
        }
        let parsed = headers::parse(&block).unwrap();
        prop_assert_eq!(parsed.entries.len(), pairs.len());
    }

    #[test]
    fn go_json_is_json(name in "\\PC{0,20}", desc in "[<>&a-z\u{2028} ]{0,20}") {
        let cfg = StreamConfig { name: name.clone(), description: desc.clone(), ..Default::default() };
        let s = to_json_string(&cfg);
        prop_assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        let back: StreamConfig = serde_json::from_str(&s).unwrap();
        prop_assert_eq!(back, cfg);
    }

    /// The window against a brute-force model: an id is a duplicate exactly when it was
    /// recorded less than `window` before `now`, reporting its latest sequence.
    #[test]
    fn dedupe_window_matches_a_log(
        ops in proptest::collection::vec((0u8..4, 0u64..6), 1..80),
        window in 1i64..30,
    ) {
        let mut dd = DedupeWindow::new(window);
        let mut log: Vec<(String, u64, i64)> = vec![];
        let mut now = 0i64;
        for (i, (id, step)) in ops.iter().enumerate() {
            now += *step as i64;
            let id = format!("m{id}");
            let expect = log
                .iter()
                .rev()
                .find(|(k, _, _)| *k == id)
                .filter(|(_, _, ts)| now - ts < window)
                .map(|(_, s, _)| *s);
            prop_assert_eq!(dd.check(&id, now), expect);
            if expect.is_none() {
                dd.record(&id, i as u64 + 1, now);
                log.push((id, i as u64 + 1, now));
            }
            if i % 7 == 0 {
                dd.purge(now);
            }
        }
    }
}
