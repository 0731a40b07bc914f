//! The `type` string of every JetStream API response this crate models.

pub const ACCOUNT_INFO_RESPONSE: &str = "io.nats.jetstream.api.v1.account_info_response";
pub const STREAM_CREATE_RESPONSE: &str = "io.nats.jetstream.api.v1.stream_create_response";
pub const STREAM_UPDATE_RESPONSE: &str = "io.nats.jetstream.api.v1.stream_update_response";
pub const STREAM_INFO_RESPONSE: &str = "io.nats.jetstream.api.v1.stream_info_response";
pub const STREAM_DELETE_RESPONSE: &str = "io.nats.jetstream.api.v1.stream_delete_response";
pub const STREAM_NAMES_RESPONSE: &str = "io.nats.jetstream.api.v1.stream_names_response";
pub const STREAM_LIST_RESPONSE: &str = "io.nats.jetstream.api.v1.stream_list_response";
pub const STREAM_PURGE_RESPONSE: &str = "io.nats.jetstream.api.v1.stream_purge_response";
pub const STREAM_MSG_GET_RESPONSE: &str = "io.nats.jetstream.api.v1.stream_msg_get_response";
pub const STREAM_MSG_DELETE_RESPONSE: &str = "io.nats.jetstream.api.v1.stream_msg_delete_response";
pub const STREAM_SNAPSHOT_RESPONSE: &str = "io.nats.jetstream.api.v1.stream_snapshot_response";
pub const STREAM_RESTORE_RESPONSE: &str = "io.nats.jetstream.api.v1.stream_restore_response";
pub const STREAM_LEADER_STEPDOWN_RESPONSE: &str =
    "io.nats.jetstream.api.v1.stream_leader_stepdown_response";
pub const STREAM_REMOVE_PEER_RESPONSE: &str =
    "io.nats.jetstream.api.v1.stream_remove_peer_response";
pub const CONSUMER_CREATE_RESPONSE: &str = "io.nats.jetstream.api.v1.consumer_create_response";
pub const CONSUMER_INFO_RESPONSE: &str = "io.nats.jetstream.api.v1.consumer_info_response";
pub const CONSUMER_DELETE_RESPONSE: &str = "io.nats.jetstream.api.v1.consumer_delete_response";
pub const CONSUMER_NAMES_RESPONSE: &str = "io.nats.jetstream.api.v1.consumer_names_response";
pub const CONSUMER_LIST_RESPONSE: &str = "io.nats.jetstream.api.v1.consumer_list_response";
pub const CONSUMER_PAUSE_RESPONSE: &str = "io.nats.jetstream.api.v1.consumer_pause_response";
/// Sent for requests the server cannot take right now.
pub const SYSTEM_OVERLOADED: &str = "io.nats.jetstream.api.v1.system_overloaded";

/// An API response struct: the `type` string, an optional `error`, then the given fields
/// (shared by the stream and consumer APIs).
macro_rules! response {
    ($(#[$m:meta])* $name:ident, $type_const:ident { $($body:tt)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $name {
            #[serde(rename = "type")]
            pub kind: String,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub error: Option<ApiError>,
            $($body)*
        }

        impl $name {
            /// The response `type` string.
            pub const TYPE: &'static str = $type_const;
        }
    };
}
pub(crate) use response;
