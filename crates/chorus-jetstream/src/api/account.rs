//! `$JS.API.INFO`: the account's JetStream usage and limits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::errors::ApiError;
use super::types::ACCOUNT_INFO_RESPONSE;

/// An account's JetStream limits (`JetStreamAccountLimits`); -1 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountLimits {
    pub max_memory: i64,
    pub max_storage: i64,
    pub max_streams: i64,
    pub max_consumers: i64,
    pub max_ack_pending: i64,
    pub memory_max_stream_bytes: i64,
    pub storage_max_stream_bytes: i64,
    pub max_bytes_required: bool,
}

impl AccountLimits {
    /// No limits at all: what an account gets with plain `jetstream: enabled`.
    pub const UNLIMITED: AccountLimits = AccountLimits {
        max_memory: -1,
        max_storage: -1,
        max_streams: -1,
        max_consumers: -1,
        max_ack_pending: -1,
        memory_max_stream_bytes: -1,
        storage_max_stream_bytes: -1,
        max_bytes_required: false,
    };
}

impl Default for AccountLimits {
    fn default() -> Self {
        AccountLimits::UNLIMITED
    }
}

/// Usage and limits of one tier (or of the whole account when untiered).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    pub memory: u64,
    pub storage: u64,
    pub reserved_memory: u64,
    pub reserved_storage: u64,
    pub streams: u64,
    pub consumers: u64,
    pub limits: AccountLimits,
}

/// API usage counters; `level` is the server's API level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiStats {
    #[serde(default)]
    pub level: u32,
    pub total: u64,
    pub errors: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inflight: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// `JetStreamAccountStats`: totals (the tier fields), then domain, API stats and tiers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    #[serde(flatten)]
    pub totals: Tier,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    pub api: ApiStats,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tiers: BTreeMap<String, Tier>,
}

/// The `$JS.API.INFO` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfoResponse {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub info: Option<AccountInfo>,
}

impl AccountInfoResponse {
    pub fn ok(info: AccountInfo) -> Self {
        AccountInfoResponse { kind: ACCOUNT_INFO_RESPONSE.into(), error: None, info: Some(info) }
    }

    pub fn err(error: ApiError) -> Self {
        AccountInfoResponse { kind: ACCOUNT_INFO_RESPONSE.into(), error: Some(error), info: None }
    }
}

/// The limits that apply to a stream with `replicas` replicas, and the tier name they come
/// from (`""` when the account is untiered): nats-server's `selectLimits`. `None` means the
/// account has no applicable limits (10120).
pub fn select_limits(
    tiers: &BTreeMap<String, AccountLimits>,
    replicas: i64,
) -> Option<(AccountLimits, String)> {
    if let Some(l) = tiers.get("") {
        return Some((*l, String::new()));
    }
    let tier = tier_name(replicas);
    tiers.get(&tier).map(|l| (*l, tier))
}

/// `R<n>`, with 0 replicas counted as 1.
pub fn tier_name(replicas: i64) -> String {
    format!("R{}", if replicas == 0 { 1 } else { replicas })
}

/// Untiered limits only: the `""` tier.
pub fn untiered(limits: AccountLimits) -> BTreeMap<String, AccountLimits> {
    BTreeMap::from([(String::new(), limits)])
}
