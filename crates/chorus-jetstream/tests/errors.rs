//! The error table against nats-server's own `errors.json`, and the codes clients depend on
//! most, pinned independently of the generator.

use chorus_jetstream::api::errors::{ErrorId, ErrorInfo};
use serde::Deserialize;

#[derive(Deserialize)]
struct GoError {
    constant: String,
    code: u16,
    error_code: u16,
    description: String,
}

/// Compares every entry with the reference's `errors.json` when the Go module cache has it
/// (skipped otherwise: the file is nats-server's, not ours to copy into the repository).
#[test]
fn table_matches_errors_json_when_available() {
    let Some(home) = std::env::var_os("HOME") else {
        return;
    };
    let path = std::path::Path::new(&home)
        .join("go/pkg/mod/github.com/nats-io/nats-server/v2@v2.15.2/server/errors.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipping: {} not found", path.display());
        return;
    };
    let theirs: Vec<GoError> = serde_json::from_str(&text).expect("errors.json parses");
    assert_eq!(theirs.len(), ErrorId::all().count());
    for e in &theirs {
        let id = ErrorId::from_err_code(e.error_code)
            .unwrap_or_else(|| panic!("{} ({}) missing", e.constant, e.error_code));
        let ours: &ErrorInfo = id.info();
        assert_eq!(ours.constant, e.constant);
        assert_eq!(ours.code, e.code, "{}", e.constant);
        assert_eq!(ours.description, e.description, "{}", e.constant);
    }
}

/// The codes clients and tools match on, written out by hand.
#[test]
fn important_codes() {
    let pinned: &[(ErrorId, u16, u16, &str)] = &[
        (ErrorId::BadRequest, 400, 10003, "bad request"),
        (ErrorId::ConsumerNotFound, 404, 10014, "consumer not found"),
        (ErrorId::InvalidJSON, 400, 10025, "invalid JSON: {err}"),
        (ErrorId::MaximumConsumersLimit, 400, 10026, "maximum consumers limit reached"),
        (ErrorId::MaximumStreamsLimit, 400, 10027, "maximum number of streams reached"),
        (ErrorId::NoMessageFound, 404, 10037, "no message found"),
        (ErrorId::NotEmptyRequest, 400, 10038, "expected an empty request payload"),
        (ErrorId::NotEnabledForAccount, 503, 10039, "JetStream not enabled for account"),
        (ErrorId::StorageResourcesExceeded, 500, 10047, "insufficient storage resources available"),
        (ErrorId::StreamInvalidConfig, 500, 10052, "{err}"),
        (ErrorId::StreamMessageExceedsMaximum, 400, 10054, "message size exceeds maximum allowed"),
        (ErrorId::StreamMismatch, 400, 10056, "stream name in subject does not match request"),
        (
            ErrorId::StreamNameExist,
            400,
            10058,
            "stream name already in use with a different configuration",
        ),
        (ErrorId::StreamNotFound, 404, 10059, "stream not found"),
        (ErrorId::StreamNotMatch, 400, 10060, "expected stream does not match"),
        (ErrorId::StreamSubjectOverlap, 400, 10065, "subjects overlap with an existing stream"),
        (ErrorId::StreamWrongLastMsgID, 400, 10070, "wrong last msg ID: {id}"),
        (ErrorId::StreamWrongLastSequence, 400, 10071, "wrong last sequence: {seq}"),
        (
            ErrorId::StreamReplicasNotSupported,
            500,
            10074,
            "replicas > 1 not supported in non-clustered mode",
        ),
        (ErrorId::NotEnabled, 503, 10076, "JetStream not enabled"),
        (ErrorId::StreamStoreFailed, 503, 10077, "{err}"),
        (
            ErrorId::ConsumerWQMultipleUnfiltered,
            400,
            10099,
            "multiple non-filtered consumers not allowed on workqueue stream",
        ),
        (
            ErrorId::ConsumerWQConsumerNotUnique,
            400,
            10100,
            "filtered consumer not unique on workqueue stream",
        ),
        (
            ErrorId::ConsumerWQConsumerNotDeliverAll,
            400,
            10101,
            "consumer must be deliver all on workqueue stream",
        ),
        (ErrorId::StreamSealed, 400, 10109, "invalid operation on sealed stream"),
        (ErrorId::StreamRollupFailed, 500, 10111, "{err}"),
        (ErrorId::ConsumerAlreadyExists, 400, 10148, "consumer already exists"),
        (ErrorId::ConsumerDoesNotExist, 400, 10149, "consumer does not exist"),
        (ErrorId::MessageTTLInvalid, 400, 10165, "invalid per-message TTL"),
        (ErrorId::MessageTTLDisabled, 400, 10166, "per-message TTL is disabled"),
    ];
    for &(id, code, err_code, description) in pinned {
        let e = id.info();
        assert_eq!((e.code, e.err_code, e.description), (code, err_code, description), "{id:?}");
        assert_eq!(ErrorId::from_err_code(err_code), Some(id));
    }
}
