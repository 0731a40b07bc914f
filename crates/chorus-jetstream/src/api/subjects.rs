//! JetStream API subjects: constants, builders and a parser from request subject to the
//! endpoint it addresses.

/// Everything under the API.
pub const API_ALL: &str = "$JS.API.>";
pub const INFO: &str = "$JS.API.INFO";
pub const STREAM_CREATE: &str = "$JS.API.STREAM.CREATE.*";
pub const STREAM_UPDATE: &str = "$JS.API.STREAM.UPDATE.*";
pub const STREAM_NAMES: &str = "$JS.API.STREAM.NAMES";
pub const STREAM_LIST: &str = "$JS.API.STREAM.LIST";
pub const STREAM_INFO: &str = "$JS.API.STREAM.INFO.*";
pub const STREAM_DELETE: &str = "$JS.API.STREAM.DELETE.*";
pub const STREAM_PURGE: &str = "$JS.API.STREAM.PURGE.*";
pub const STREAM_SNAPSHOT: &str = "$JS.API.STREAM.SNAPSHOT.*";
pub const STREAM_RESTORE: &str = "$JS.API.STREAM.RESTORE.*";
pub const STREAM_MSG_DELETE: &str = "$JS.API.STREAM.MSG.DELETE.*";
pub const STREAM_MSG_GET: &str = "$JS.API.STREAM.MSG.GET.*";
pub const STREAM_LEADER_STEPDOWN: &str = "$JS.API.STREAM.LEADER.STEPDOWN.*";
pub const STREAM_PEER_REMOVE: &str = "$JS.API.STREAM.PEER.REMOVE.*";
/// Direct get by sequence or request body; needs `allow_direct` on the stream.
pub const DIRECT_GET: &str = "$JS.API.DIRECT.GET.*";
/// Direct get of the last message on the subject that follows the stream name.
pub const DIRECT_GET_LAST_BY_SUBJECT: &str = "$JS.API.DIRECT.GET.*.>";

/// A JetStream API endpoint, with the names its subject carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiEndpoint {
    AccountInfo,
    StreamCreate {
        stream: String,
    },
    StreamUpdate {
        stream: String,
    },
    StreamNames,
    StreamList,
    StreamInfo {
        stream: String,
    },
    StreamDelete {
        stream: String,
    },
    StreamPurge {
        stream: String,
    },
    StreamSnapshot {
        stream: String,
    },
    StreamRestore {
        stream: String,
    },
    StreamMsgGet {
        stream: String,
    },
    StreamMsgDelete {
        stream: String,
    },
    StreamLeaderStepdown {
        stream: String,
    },
    StreamPeerRemove {
        stream: String,
    },
    DirectGet {
        stream: String,
    },
    DirectGetLastBySubject {
        stream: String,
        subject: String,
    },
    /// Consumer, meta and account endpoints: not this crate's business.
    Other,
}

/// Which endpoint `subject` addresses, if it is an API subject. Names come from fixed token
/// positions, as nats-server reads them (the fifth token is the stream for most endpoints).
pub fn parse(subject: &str) -> Option<ApiEndpoint> {
    let rest = subject.strip_prefix("$JS.API.")?;
    let t: Vec<&str> = rest.split('.').collect();
    let one = |n: usize| (t.len() == n).then(|| t[n - 1].to_string());
    use ApiEndpoint::*;
    Some(match t.as_slice() {
        ["INFO"] => AccountInfo,
        ["STREAM", "NAMES"] => StreamNames,
        ["STREAM", "LIST"] => StreamList,
        ["STREAM", "CREATE", _] => StreamCreate { stream: one(3)? },
        ["STREAM", "UPDATE", _] => StreamUpdate { stream: one(3)? },
        ["STREAM", "INFO", _] => StreamInfo { stream: one(3)? },
        ["STREAM", "DELETE", _] => StreamDelete { stream: one(3)? },
        ["STREAM", "PURGE", _] => StreamPurge { stream: one(3)? },
        ["STREAM", "SNAPSHOT", _] => StreamSnapshot { stream: one(3)? },
        ["STREAM", "RESTORE", _] => StreamRestore { stream: one(3)? },
        ["STREAM", "MSG", "GET", _] => StreamMsgGet { stream: one(4)? },
        ["STREAM", "MSG", "DELETE", _] => StreamMsgDelete { stream: one(4)? },
        ["STREAM", "LEADER", "STEPDOWN", _] => StreamLeaderStepdown { stream: one(4)? },
        ["STREAM", "PEER", "REMOVE", _] => StreamPeerRemove { stream: one(4)? },
        ["DIRECT", "GET", s] => DirectGet { stream: s.to_string() },
        ["DIRECT", "GET", s, ..] => {
            let subject = t[3..].join(".");
            DirectGetLastBySubject { stream: s.to_string(), subject }
        }
        _ => Other,
    })
}

/// `$JS.API.STREAM.<op>.<stream>` for the single-token operations (`CREATE`, `INFO`, ...).
pub fn stream_subject(op: &str, stream: &str) -> String {
    format!("$JS.API.STREAM.{op}.{stream}")
}

/// The API prefix of a JetStream domain: `$JS.<domain>.API`.
pub fn domain_prefix(domain: &str) -> String {
    format!("$JS.{domain}.API")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        use ApiEndpoint::*;
        assert_eq!(parse("$JS.API.INFO"), Some(AccountInfo));
        assert_eq!(parse("$JS.API.STREAM.CREATE.S"), Some(StreamCreate { stream: "S".into() }));
        assert_eq!(parse("$JS.API.STREAM.MSG.GET.S"), Some(StreamMsgGet { stream: "S".into() }));
        assert_eq!(parse("$JS.API.STREAM.NAMES"), Some(StreamNames));
        assert_eq!(parse("$JS.API.DIRECT.GET.KV_x"), Some(DirectGet { stream: "KV_x".into() }));
        assert_eq!(
            parse("$JS.API.DIRECT.GET.KV_x.$KV.x.key"),
            Some(DirectGetLastBySubject { stream: "KV_x".into(), subject: "$KV.x.key".into() })
        );
        assert_eq!(parse("$JS.API.CONSUMER.INFO.S.C"), Some(Other));
        assert_eq!(parse("$JS.API.STREAM.CREATE.a.b"), Some(Other));
        assert_eq!(parse("foo"), None);
        assert_eq!(stream_subject("CREATE", "S"), "$JS.API.STREAM.CREATE.S");
        assert_eq!(domain_prefix("hub"), "$JS.hub.API");
    }
}
