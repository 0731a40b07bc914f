//! Accept/reject parity with nats-server on every file in testdata/.
//!
//! Each row records what `nats-server -t -c FILE` (v2.15.2, run from testdata/) printed; the
//! test itself does not need the Go binary. Where we differ on purpose, the row says why.

use std::path::Path;

use chorus_conf::Options;

#[derive(Debug, PartialEq)]
enum Verdict {
    Accept,
    Reject,
}
use Verdict::*;

/// (file, nats-server's verdict, ours, what nats-server said)
const TABLE: &[(&str, Verdict, Verdict, &str)] = &[
    // Ours differs: TLS files are loaded by the TLS layer, not while reading options.
    (
        "choiros.conf",
        Reject,
        Accept,
        "error parsing X509 certificate/key pair: open /etc/nats/cert.pem",
    ),
    (
        "errors/bad_size.conf",
        Reject,
        Reject,
        "3:1: interface conversion: interface {} is string, not int64",
    ),
    (
        "errors/syntax.conf",
        Reject,
        Reject,
        "Parse error on line 4: 'Expected a map value terminator ...'",
    ),
    (
        "errors/undefined_var.conf",
        Reject,
        Reject,
        "variable reference for '...' on line 4 can not be found",
    ),
    // Ours differs: unknown keys are warnings in Chorus (nats-server -t makes them errors).
    (
        "errors/unknown_keys.conf",
        Reject,
        Accept,
        "2:1: unknown field \"colour\" / 5:3: unknown field \"shape\"",
    ),
    (
        "include/bad_child.conf",
        Reject,
        Reject,
        "error parsing include file './sub/broken.conf', Parse error on line 3",
    ),
    // nats-server overflows its stack; we stop at a depth limit.
    (
        "include/cycle.conf",
        Reject,
        Reject,
        "runtime: goroutine stack exceeds 1000000000-byte limit",
    ),
    ("include/main.conf", Accept, Accept, "valid"),
    ("include/missing.conf", Reject, Reject, "error parsing include file './does_not_exist.conf'"),
    ("include/sub/broken.conf", Reject, Reject, "Parse error on line 3"),
    ("include/sub/child.conf", Accept, Accept, "valid"),
    ("include/sub/grandchild.conf", Accept, Accept, "valid"),
    ("nats/accounts.conf", Accept, Accept, "valid"),
    ("nats/authorization.conf", Accept, Accept, "valid"),
    ("nats/cluster.conf", Accept, Accept, "valid"),
    ("nats/jetstream.conf", Accept, Accept, "valid"),
    ("nats/listen.conf", Accept, Accept, "valid"),
    ("nats/tls.conf", Accept, Accept, "valid"),
    ("nats/websocket.conf", Accept, Accept, "valid"),
    // Ours differs: unknown keys are warnings.
    ("syntax/all_forms.conf", Reject, Accept, "unknown field \"d\", \"e\", ... (no parse error)"),
    ("syntax/json_style.conf", Accept, Accept, "valid"),
    (
        "vars.conf",
        Reject,
        Reject,
        "variable reference for 'CHORUS_CONF_TEST_CLUSTER_NAME' on line 11 can not be found",
    ),
];

fn ours(path: &Path) -> Verdict {
    match Options::from_file(path).and_then(|(o, _)| o.validate().map(|()| o)) {
        Ok(_) => Accept,
        Err(_) => Reject,
    }
}

#[test]
fn same_verdicts_as_nats_server() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    for (file, _nats, expected, _said) in TABLE {
        assert_eq!(&ours(&dir.join(file)), expected, "{file}");
    }
    // Every .conf in testdata is in the table.
    let mut stack = vec![dir.clone()];
    let mut count = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "conf") {
                let rel = p.strip_prefix(&dir).unwrap().to_string_lossy().replace('\\', "/");
                assert!(TABLE.iter().any(|(f, ..)| *f == rel), "{rel} missing from TABLE");
                count += 1;
            }
        }
    }
    assert_eq!(count, TABLE.len());
}
