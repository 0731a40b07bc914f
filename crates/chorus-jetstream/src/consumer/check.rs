//! Consumer config validation and defaulting, and the create/update decision of
//! `CONSUMER.CREATE` / `CONSUMER.DURABLE.CREATE`, as a single (non-clustered) nats-server
//! v2.15 makes them.
//!
//! - [`set_consumer_defaults`] is `setConsumerConfigDefaults`, [`check_consumer_rules`] is
//!   `checkConsumerCfg`; [`check_consumer_config`] runs both the way consumer creation does.
//! - [`check_config_update`] is `checkNewConsumerConfig`: what an existing consumer lets an
//!   update change.
//! - [`check_create`] is the whole request: subject and body rules, the stream lookup, then
//!   `addConsumerWithAction` up to the point where the consumer would be built (action
//!   create/update semantics, limits, workqueue rules, names).
//!
//! Each returns the exact [`ApiError`] the reference sends, in the reference's order.

use std::collections::BTreeMap;

use chorus_proto::subject::{
    is_valid_subject, num_tokens, subject_has_wildcard, subject_is_subset_of, subjects_overlap,
};

use super::config::{
    AckPolicy, ConsumerAction, ConsumerConfig, CreateConsumerRequest, DEFAULT_ACK_WAIT,
    DEFAULT_EPHEMERAL_INACTIVE_THRESHOLD, DEFAULT_MAX_ACK_PENDING, DEFAULT_MAX_WAITING,
    DEFAULT_PINNED_TTL, DeliverPolicy, FLOW_CONTROL_ACK_HEARTBEAT, PriorityPolicy,
};
use super::metadata;
use crate::api::account::{AccountLimits, select_limits};
use crate::api::errors::{ApiError, ErrorId};
use crate::stream::check::is_valid_asset_name;
use crate::stream::config::{
    MAX_DESCRIPTION_LEN, MAX_METADATA_LEN, MAX_NAME_LEN, RetentionPolicy, StreamConfig,
};

/// The server-wide consumer limits (`jetstream { limits { ... } }`, nats-server's
/// `JSLimitOpts`); 0 means not set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerConsumerLimits {
    /// `max_request_batch`.
    pub max_request_batch: i64,
    /// `max_ack_pending`.
    pub max_ack_pending: i64,
    /// `max_consumers` applied when neither stream nor account limits consumers.
    pub default_max_consumers: i64,
}

/// Everything a consumer check needs besides the configs.
#[derive(Clone, Copy)]
pub struct ConsumerCheckContext<'a> {
    /// Only `false` is modelled; `true` merely lifts the "replicas > 1" rejection.
    pub clustered: bool,
    pub server: &'a ServerConsumerLimits,
    /// The account's limits by tier name (`""` when untiered).
    pub account: &'a BTreeMap<String, AccountLimits>,
}

/// The stream's existing consumers, as the create check needs to see them.
pub trait ConsumerLookup {
    /// The stored config of the consumer with this name.
    fn get(&self, name: &str) -> Option<&ConsumerConfig>;
    /// Every consumer's stored config (names are in `name`).
    fn configs(&self) -> Box<dyn Iterator<Item = &ConsumerConfig> + '_>;
}

impl ConsumerLookup for [ConsumerConfig] {
    fn get(&self, name: &str) -> Option<&ConsumerConfig> {
        self.iter().find(|c| c.name == name)
    }
    fn configs(&self) -> Box<dyn Iterator<Item = &ConsumerConfig> + '_> {
        Box::new(self.iter())
    }
}

impl ConsumerLookup for Vec<ConsumerConfig> {
    fn get(&self, name: &str) -> Option<&ConsumerConfig> {
        ConsumerLookup::get(self.as_slice(), name)
    }
    fn configs(&self) -> Box<dyn Iterator<Item = &ConsumerConfig> + '_> {
        Box::new(self.iter())
    }
}

impl ConsumerLookup for BTreeMap<String, ConsumerConfig> {
    fn get(&self, name: &str) -> Option<&ConsumerConfig> {
        BTreeMap::get(self, name)
    }
    fn configs(&self) -> Box<dyn Iterator<Item = &ConsumerConfig> + '_> {
        Box::new(self.values())
    }
}

fn pedantic(msg: &str) -> ApiError {
    ErrorId::Pedantic.with_err(msg)
}

/// nats-server's `setConsumerConfigDefaults`: turns client zeros (and out-of-range negatives)
/// into the values the server stores. With `pedantic`, the silent fixes are errors instead.
pub fn set_consumer_defaults(
    cfg: &mut ConsumerConfig,
    stream: &StreamConfig,
    server: &ServerConsumerLimits,
    account: &AccountLimits,
    is_pedantic: bool,
) -> Result<(), ApiError> {
    if cfg.max_deliver == 0 || cfg.max_deliver < -1 {
        if is_pedantic && cfg.max_deliver < -1 {
            return Err(pedantic("max_deliver must be set to -1"));
        }
        cfg.max_deliver = -1;
    }
    if cfg.max_waiting < 0 {
        if is_pedantic {
            return Err(pedantic("max_waiting must not be negative"));
        }
        cfg.max_waiting = 0;
    }
    if cfg.max_ack_pending < -1 {
        if is_pedantic {
            return Err(pedantic("max_ack_pending must be set to -1"));
        }
        cfg.max_ack_pending = -1;
    }
    if cfg.max_request_batch < 0 {
        if is_pedantic {
            return Err(pedantic("max_batch must not be negative"));
        }
        cfg.max_request_batch = 0;
    }
    if cfg.max_request_expires < 0 {
        if is_pedantic {
            return Err(pedantic("max_expires must not be negative"));
        }
        cfg.max_request_expires = 0;
    }
    if cfg.max_request_max_bytes < 0 {
        if is_pedantic {
            return Err(pedantic("max_bytes must not be negative"));
        }
        cfg.max_request_max_bytes = 0;
    }
    if cfg.heartbeat < 0 {
        if is_pedantic {
            return Err(pedantic("idle_heartbeat must not be negative"));
        }
        cfg.heartbeat = 0;
    }
    if cfg.inactive_threshold < 0 {
        if is_pedantic {
            return Err(pedantic("inactive_threshold must not be negative"));
        }
        cfg.inactive_threshold = 0;
    }
    if cfg.pinned_ttl < 0 {
        if is_pedantic {
            return Err(pedantic("priority_timeout must not be negative"));
        }
        cfg.pinned_ttl = 0;
    }
    if cfg.deliver_subject.is_empty() && cfg.max_waiting == 0 {
        cfg.max_waiting = DEFAULT_MAX_WAITING;
    }
    if cfg.ack_wait == 0 && matches!(cfg.ack_policy, AckPolicy::Explicit | AckPolicy::All) {
        cfg.ack_wait = DEFAULT_ACK_WAIT;
    }
    if let Some(&first) = cfg.backoff.first() {
        if is_pedantic && cfg.ack_wait != first {
            return Err(pedantic("first backoff value has to equal batch AckWait"));
        }
        cfg.ack_wait = first;
    }
    let limits = &stream.consumer_limits;
    if cfg.max_ack_pending == 0 {
        if is_pedantic && limits.max_ack_pending > 0 {
            return Err(pedantic(
                "max_ack_pending must be set if it's configured in stream limits",
            ));
        }
        cfg.max_ack_pending = limits.max_ack_pending;
    }
    if cfg.inactive_threshold == 0 {
        if is_pedantic && limits.inactive_threshold > 0 {
            return Err(pedantic(
                "inactive_threshold must be set if it's configured in stream limits",
            ));
        }
        cfg.inactive_threshold = limits.inactive_threshold;
    }
    if cfg.max_ack_pending == 0 && cfg.ack_policy != AckPolicy::None {
        let mut pending = DEFAULT_MAX_ACK_PENDING;
        if server.max_ack_pending > 0 && server.max_ack_pending < pending {
            pending = server.max_ack_pending;
        }
        if account.max_ack_pending > 0 && account.max_ack_pending < pending {
            pending = account.max_ack_pending;
        }
        cfg.max_ack_pending = pending;
    }
    if cfg.deliver_subject.is_empty() && cfg.max_request_batch == 0 && server.max_request_batch > 0
    {
        if is_pedantic {
            return Err(pedantic("max_request_batch must be set if it's JetStream limits are set"));
        }
        cfg.max_request_batch = server.max_request_batch;
    }
    if cfg.priority_policy == PriorityPolicy::PinnedClient && cfg.pinned_ttl == 0 {
        cfg.pinned_ttl = DEFAULT_PINNED_TTL;
    }
    if cfg.ack_policy == AckPolicy::FlowControl && !is_pedantic {
        cfg.flow_control = true;
        cfg.heartbeat = FLOW_CONTROL_ACK_HEARTBEAT;
    }
    Ok(())
}

/// Go's `strconv.Atoi` for the sampling check: the parsed value or Go's error text.
fn go_atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {s:?}: invalid syntax"));
    }
    s.parse::<i64>().map_err(|_| format!("strconv.Atoi: parsing {s:?}: value out of range"))
}

/// nats-server's `validGroupName`: `^[a-zA-Z0-9/_=-]{1,16}$`.
pub fn is_valid_group_name(g: &str) -> bool {
    (1..=16).contains(&g.len())
        && g.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'=' | b'-'))
}

/// Whether delivering to `subject` would feed the stream itself (`deliveryFormsCycle`).
pub fn delivery_forms_cycle(stream: &StreamConfig, subject: &str) -> bool {
    stream.subjects.iter().any(|s| subject_is_subset_of(subject.as_bytes(), s.as_bytes()))
}

/// nats-server's `checkConsumerCfg` (for a config that already went through
/// [`set_consumer_defaults`]). `recovering` skips the replicas-must-match rule.
pub fn check_consumer_rules(
    cfg: &ConsumerConfig,
    stream: &StreamConfig,
    server: &ServerConsumerLimits,
    account: &AccountLimits,
    recovering: bool,
) -> Result<(), ApiError> {
    let invalid = |msg: &str| ErrorId::StreamInvalidConfig.with_err(msg);
    if !cfg.name.is_empty() && !is_valid_asset_name(&cfg.name) {
        return Err(invalid("consumer name can not contain '.', '*', '>', '\\', '/'"));
    }
    if !cfg.durable.is_empty() && !is_valid_asset_name(&cfg.durable) {
        return Err(invalid("consumer durable name can not contain '.', '*', '>', '\\', '/'"));
    }
    if cfg.replicas > 0 && cfg.replicas > stream.num_replicas {
        return Err(ErrorId::ConsumerReplicasExceedsStream.error());
    }
    if cfg.replicas < 0 {
        return Err(ErrorId::ReplicasCountCannotBeNegative.error());
    }
    if matches!(stream.retention, RetentionPolicy::Interest | RetentionPolicy::WorkQueue)
        && !recovering
        && cfg.replicas != 0
        && cfg.replicas != stream.num_replicas
    {
        return Err(ErrorId::ConsumerReplicasShouldMatchStream.error());
    }
    if cfg.backoff.iter().any(|&b| b < 0) {
        return Err(ErrorId::ConsumerBackOffNegative.error());
    }
    if cfg.ack_wait < 0 {
        return Err(ErrorId::ConsumerAckWaitNegative.error());
    }
    if cfg.ack_policy == AckPolicy::FlowControl {
        if cfg.deliver_subject.is_empty() {
            return Err(ErrorId::ConsumerAckFCRequiresPush.error());
        }
        if !cfg.flow_control {
            return Err(ErrorId::ConsumerAckFCRequiresFC.error());
        }
        if cfg.heartbeat != FLOW_CONTROL_ACK_HEARTBEAT {
            return Err(invalid("flow control ack policy heartbeat needs to be 1s"));
        }
        if cfg.max_ack_pending <= 0 {
            return Err(ErrorId::ConsumerAckFCRequiresMaxAckPending.error());
        }
        if cfg.ack_wait != 0 || !cfg.backoff.is_empty() {
            return Err(ErrorId::ConsumerAckFCRequiresNoAckWait.error());
        }
        if cfg.max_deliver > 0 {
            return Err(ErrorId::ConsumerAckFCRequiresNoMaxDeliver.error());
        }
    }
    let lbo = cfg.backoff.len() as i64;
    if lbo > 0 && cfg.max_deliver != -1 && lbo > cfg.max_deliver {
        return Err(ErrorId::ConsumerMaxDeliverBackoff.error());
    }
    if cfg.description.len() > MAX_DESCRIPTION_LEN {
        return Err(ErrorId::ConsumerDescriptionTooLong.with(&[("max", &MAX_DESCRIPTION_LEN)]));
    }
    if !cfg.deliver_subject.is_empty() {
        let ds = cfg.deliver_subject.as_bytes();
        if subject_has_wildcard(ds) {
            return Err(ErrorId::ConsumerDeliverToWildcards.error());
        }
        if !is_valid_subject(ds) {
            return Err(ErrorId::ConsumerInvalidDeliverSubject.error());
        }
        if delivery_forms_cycle(stream, &cfg.deliver_subject) {
            return Err(ErrorId::ConsumerDeliverCycle.error());
        }
        if cfg.max_waiting != 0 {
            return Err(ErrorId::ConsumerPushMaxWaiting.error());
        }
        if cfg.max_ack_pending > 0 && cfg.ack_policy == AckPolicy::None {
            return Err(ErrorId::ConsumerMaxPendingAckPolicyRequired.error());
        }
        if cfg.heartbeat > 0 && cfg.heartbeat < 100_000_000 {
            return Err(ErrorId::ConsumerSmallHeartbeat.error());
        }
    } else {
        if cfg.ack_policy == AckPolicy::None && stream.retention == RetentionPolicy::WorkQueue {
            return Err(ErrorId::ConsumerPullRequiresAck.error());
        }
        if cfg.rate_limit > 0 {
            return Err(ErrorId::ConsumerPullWithRateLimit.error());
        }
        if cfg.max_waiting < 0 {
            return Err(ErrorId::ConsumerMaxWaitingNegative.error());
        }
        if cfg.heartbeat > 0 {
            return Err(ErrorId::ConsumerHBRequiresPush.error());
        }
        if cfg.flow_control {
            return Err(ErrorId::ConsumerFCRequiresPush.error());
        }
        if cfg.max_request_batch < 0 {
            return Err(ErrorId::ConsumerMaxRequestBatchNegative.error());
        }
        if cfg.max_request_expires != 0 && cfg.max_request_expires < 1_000_000 {
            return Err(ErrorId::ConsumerMaxRequestExpiresTooSmall.error());
        }
        if server.max_request_batch > 0 && cfg.max_request_batch > server.max_request_batch {
            return Err(ErrorId::ConsumerMaxRequestBatchExceeded
                .with(&[("limit", &server.max_request_batch)]));
        }
    }
    for limit in [server.max_ack_pending, account.max_ack_pending] {
        if limit > 0 && cfg.max_ack_pending > limit {
            return Err(ErrorId::ConsumerMaxPendingAckExcess.with(&[("limit", &limit)]));
        }
    }
    let limits = &stream.consumer_limits;
    if limits.max_ack_pending > 0 && cfg.max_ack_pending > limits.max_ack_pending {
        return Err(
            ErrorId::ConsumerMaxPendingAckExcess.with(&[("limit", &limits.max_ack_pending)])
        );
    }
    if limits.inactive_threshold > 0 && cfg.inactive_threshold > limits.inactive_threshold {
        // Go formats the time.Duration limit with %v.
        let limit = crate::go::duration_string(limits.inactive_threshold);
        return Err(ErrorId::ConsumerInactiveThresholdExcess.with(&[("limit", &limit)]));
    }
    if cfg.direct {
        if cfg.deliver_subject.is_empty() {
            return Err(ErrorId::ConsumerDirectRequiresPush.error());
        }
        if cfg.is_durable() {
            return Err(ErrorId::ConsumerDirectRequiresEphemeral.error());
        }
    }
    if !cfg.filter_subject.is_empty() && !cfg.filter_subjects.is_empty() {
        return Err(ErrorId::ConsumerDuplicateFilterSubjects.error());
    }
    if !cfg.filter_subject.is_empty() && !is_valid_subject(cfg.filter_subject.as_bytes()) {
        return Err(invalid("invalid subject"));
    }
    if cfg.filter_subjects.iter().any(String::is_empty) {
        return Err(ErrorId::ConsumerEmptyFilter.error());
    }
    let filters = cfg.filters();
    for (i, a) in filters.iter().enumerate() {
        if !is_valid_subject(a.as_bytes()) {
            return Err(invalid("invalid subject"));
        }
        for (j, b) in filters.iter().enumerate() {
            if i != j && subject_is_subset_of(a.as_bytes(), b.as_bytes()) {
                return Err(ErrorId::ConsumerOverlappingSubjectFilters.error());
            }
        }
    }
    check_start_policy(cfg)?;
    if !cfg.sample_frequency.is_empty() {
        let s = cfg.sample_frequency.strip_suffix('%').unwrap_or(&cfg.sample_frequency);
        match go_atoi(s) {
            Err(e) => return Err(ErrorId::ConsumerInvalidSampling.with_err(e)),
            Ok(v) if v < 0 => return Err(ErrorId::ConsumerInvalidSampling.with_err("<nil>")),
            Ok(_) => {}
        }
    }
    if cfg.flow_control && cfg.heartbeat == 0 {
        return Err(ErrorId::ConsumerWithFlowControlNeedsHeartbeats.error());
    }
    if !cfg.durable.is_empty() && !cfg.name.is_empty() && cfg.name != cfg.durable {
        return Err(ErrorId::ConsumerCreateDurableAndNameMismatch.error());
    }
    let metadata_len: usize = cfg.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if metadata_len > MAX_METADATA_LEN {
        let limit = format!("{}KB", MAX_METADATA_LEN / 1024);
        return Err(ErrorId::ConsumerMetadataLength.with(&[("limit", &limit)]));
    }
    if cfg.priority_policy != PriorityPolicy::None {
        if !cfg.deliver_subject.is_empty() {
            return Err(ErrorId::ConsumerPushWithPriorityGroup.error());
        }
        if cfg.priority_groups.is_empty() {
            return Err(ErrorId::ConsumerPriorityPolicyWithoutGroup.error());
        }
        for g in &cfg.priority_groups {
            if g.is_empty() {
                return Err(ErrorId::ConsumerEmptyGroupName.error());
            }
            if !is_valid_group_name(g) {
                return Err(ErrorId::ConsumerInvalidGroupName.error());
            }
        }
    } else {
        if !cfg.priority_groups.is_empty() {
            return Err(ErrorId::ConsumerPriorityGroupWithPolicyNone.error());
        }
        if cfg.pinned_ttl > 0 {
            return Err(ErrorId::ConsumerPinnedTTLWithoutPriorityPolicyNone.error());
        }
    }
    if stream.placement.as_ref().is_some_and(|p| !p.preferred.is_empty()) {
        return Err(invalid("preferred server not permitted in placement"));
    }
    Ok(())
}

fn check_start_policy(cfg: &ConsumerConfig) -> Result<(), ApiError> {
    let bad_start = |dp: &str, start: &str| {
        ErrorId::ConsumerInvalidPolicy.with_err(format!(
            "consumer delivery policy is deliver {dp}, but optional start {start} is also set"
        ))
    };
    let not_set = |dp: &str, what: &str| {
        ErrorId::ConsumerInvalidPolicy.with_err(format!(
            "consumer delivery policy is deliver {dp}, but optional {what} is not set"
        ))
    };
    let seq = cfg.opt_start_seq > 0;
    let time = cfg.opt_start_time.is_some();
    match cfg.deliver_policy {
        DeliverPolicy::All | DeliverPolicy::Last | DeliverPolicy::New => {
            let dp = match cfg.deliver_policy {
                DeliverPolicy::All => "all",
                DeliverPolicy::Last => "last",
                _ => "new",
            };
            if seq {
                return Err(bad_start(dp, "sequence"));
            }
            if time {
                return Err(bad_start(dp, "time"));
            }
        }
        DeliverPolicy::LastPerSubject => {
            if seq {
                return Err(bad_start("last per subject", "sequence"));
            }
            if time {
                return Err(bad_start("last per subject", "time"));
            }
            if cfg.filter_subject.is_empty() && cfg.filter_subjects.is_empty() {
                return Err(not_set("last per subject", "filter subject"));
            }
        }
        DeliverPolicy::ByStartSequence => {
            if !seq {
                return Err(not_set("by start sequence", "start sequence"));
            }
            if time {
                return Err(bad_start("by start sequence", "time"));
            }
        }
        DeliverPolicy::ByStartTime => {
            if !time {
                return Err(not_set("by start time", "start time"));
            }
            if cfg.opt_start_seq != 0 {
                return Err(bad_start("by start time", "start sequence"));
            }
        }
    }
    Ok(())
}

/// The account limits that apply to a consumer of `stream` (10120 when none do).
fn consumer_account_limits(
    cfg: &ConsumerConfig,
    stream: &StreamConfig,
    ctx: &ConsumerCheckContext<'_>,
) -> Result<AccountLimits, ApiError> {
    select_limits(ctx.account, effective_replicas(cfg, stream))
        .map(|(l, _)| l)
        .ok_or_else(|| ErrorId::NoLimits.error())
}

/// nats-server's `ConsumerConfig.replicas`: the replica count the consumer really gets.
pub fn effective_replicas(cfg: &ConsumerConfig, stream: &StreamConfig) -> i64 {
    if cfg.replicas == 0 || cfg.replicas > stream.num_replicas {
        if !cfg.is_durable() && stream.retention == RetentionPolicy::Limits && cfg.replicas == 0 {
            return 1;
        }
        return stream.num_replicas;
    }
    cfg.replicas
}

/// Defaults plus rules, as consumer creation applies them: `cfg` as the client sent it,
/// returned as the server would store it (before the ephemeral inactivity default, which
/// [`check_create`] adds).
pub fn check_consumer_config(
    stream: &StreamConfig,
    cfg: &ConsumerConfig,
    is_pedantic: bool,
    ctx: &ConsumerCheckContext<'_>,
) -> Result<ConsumerConfig, ApiError> {
    let account = consumer_account_limits(cfg, stream, ctx)?;
    let mut out = cfg.clone();
    set_consumer_defaults(&mut out, stream, ctx.server, &account, is_pedantic)?;
    check_consumer_rules(&out, stream, ctx.server, &account, false)?;
    Ok(out)
}

/// nats-server's `checkNewConsumerConfig`: whether an existing consumer (`old`) may take the
/// defaulted config `new`. `deliver_subject_has_interest` says whether someone still listens
/// on the old deliver subject (a push consumer cannot be moved away from a bound subscriber).
/// Plain errors come back as 10012 with the reference's text, as `NewJSConsumerCreateError`
/// wraps them.
pub fn check_config_update(
    old: &ConsumerConfig,
    new: &ConsumerConfig,
    deliver_subject_has_interest: bool,
) -> Result<(), ApiError> {
    if old == new {
        return Ok(());
    }
    let fail = |msg: &str| Err(ErrorId::ConsumerCreate.with_err(msg));
    if old.deliver_policy != new.deliver_policy {
        return fail("deliver policy can not be updated");
    }
    if old.memory_storage != new.memory_storage {
        return fail("storage type can not be updated");
    }
    if old.direct != new.direct {
        return fail("direct can not be updated");
    }
    if old.sourcing != new.sourcing {
        return fail("sourcing can not be updated");
    }
    if old.opt_start_seq != new.opt_start_seq {
        return fail("start sequence can not be updated");
    }
    if old.opt_start_time != new.opt_start_time {
        return fail("start time can not be updated");
    }
    if old.ack_policy != new.ack_policy {
        return fail("ack policy can not be updated");
    }
    if old.replay_policy != new.replay_policy {
        return fail("replay policy can not be updated");
    }
    if old.heartbeat != new.heartbeat {
        return fail("heart beats can not be updated");
    }
    if old.flow_control != new.flow_control {
        return fail("flow control can not be updated");
    }
    if old.deliver_subject != new.deliver_subject {
        if old.deliver_subject.is_empty() {
            return fail("can not update pull consumer to push based");
        }
        if new.deliver_subject.is_empty() {
            return fail("can not update push consumer to pull based");
        }
        if deliver_subject_has_interest {
            return Err(ErrorId::ConsumerNameExist.error());
        }
    }
    if old.max_waiting != new.max_waiting {
        return fail("max waiting can not be updated");
    }
    let lbo = new.backoff.len() as i64;
    if lbo > 0 && new.max_deliver != -1 && lbo > new.max_deliver {
        return Err(ErrorId::ConsumerMaxDeliverBackoff.error());
    }
    Ok(())
}

/// Which form of the create API a subject uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateKind {
    /// `$JS.API.CONSUMER.CREATE.<stream>`: the name (if any) comes from the config.
    LegacyEphemeral,
    /// `$JS.API.CONSUMER.DURABLE.CREATE.<stream>.<durable>`.
    LegacyDurable,
    /// `$JS.API.CONSUMER.CREATE.<stream>.<name>[.<filter>]`.
    New,
}

/// What a create request's subject says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSubject {
    pub kind: CreateKind,
    pub stream: String,
    /// Empty for the legacy ephemeral form.
    pub consumer: String,
    /// The filter tokens after the name (new form only), joined back with dots.
    pub filter: String,
}

/// Reads a create subject (`None` for subjects the create endpoints do not serve, which
/// nats-server ignores without an answer). A `DURABLE` subject of the wrong length is
/// answered with 10016.
pub fn parse_create_subject(subject: &str) -> Option<Result<CreateSubject, ApiError>> {
    let n = num_tokens(subject.as_bytes());
    if n < 5 {
        return None;
    }
    let t: Vec<&str> = subject.split('.').collect();
    if t[0] != "$JS" || t[1] != "API" || t[2] != "CONSUMER" {
        return None;
    }
    if n == 5 {
        if t[3] != "CREATE" {
            return None;
        }
        return Some(Ok(CreateSubject {
            kind: CreateKind::LegacyEphemeral,
            stream: t[4].into(),
            consumer: String::new(),
            filter: String::new(),
        }));
    }
    if t[3] == "DURABLE" {
        if n != 7 {
            return Some(Err(ErrorId::ConsumerDurableNameNotInSubject.error()));
        }
        return Some(Ok(CreateSubject {
            kind: CreateKind::LegacyDurable,
            stream: t[5].into(),
            consumer: t[6].into(),
            filter: String::new(),
        }));
    }
    if t[3] != "CREATE" {
        return None;
    }
    Some(Ok(CreateSubject {
        kind: CreateKind::New,
        stream: t[4].into(),
        consumer: t[5].into(),
        filter: if n > 6 { t[6..].join(".") } else { String::new() },
    }))
}

/// The decision for a create request that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Build a new consumer with this name and stored config.
    Create { name: String, config: ConsumerConfig },
    /// The consumer exists and takes this config (possibly identical: then nothing changes
    /// and the answer is its current info).
    Update { name: String, config: ConsumerConfig },
}

impl CreateOutcome {
    pub fn name(&self) -> &str {
        match self {
            CreateOutcome::Create { name, .. } | CreateOutcome::Update { name, .. } => name,
        }
    }
    pub fn config(&self) -> &ConsumerConfig {
        match self {
            CreateOutcome::Create { config, .. } | CreateOutcome::Update { config, .. } => config,
        }
    }
}

/// The runtime's answers the create check needs besides configs.
#[derive(Debug, Clone, Default)]
pub struct CreateEnv {
    /// The name a legacy ephemeral consumer without one gets (nats-server: 8 random
    /// characters); only used when needed.
    pub generated_name: String,
    /// Whether the existing push consumer's deliver subject still has subscribers.
    pub deliver_subject_has_interest: bool,
}

/// `$JS.API.CONSUMER.CREATE...` and `$JS.API.CONSUMER.DURABLE.CREATE...` on a single server:
/// everything nats-server checks before it builds (or updates) the consumer. `stream` is the
/// stream's stored config, `None` when it does not exist; `consumers` are its consumers.
pub fn check_create(
    subject: &CreateSubject,
    body: &[u8],
    stream: Option<&StreamConfig>,
    consumers: &dyn ConsumerLookup,
    env: &CreateEnv,
    ctx: &ConsumerCheckContext<'_>,
) -> Result<CreateOutcome, ApiError> {
    let mut req: CreateConsumerRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CreateConsumerRequest::default()
    } else {
        serde_json::from_slice(body).map_err(|e| ErrorId::InvalidJSON.with_err(e))?
    };
    if subject.stream != req.stream {
        return Err(ErrorId::StreamMismatch.error());
    }
    let mut name = match subject.kind {
        CreateKind::LegacyEphemeral => req.config.name.clone(),
        _ => subject.consumer.clone(),
    };
    if name.contains(['\\', '/']) {
        return Err(ErrorId::ConsumerNameContainsPathSeparators.error());
    }
    match subject.kind {
        CreateKind::LegacyDurable => {
            if req.config.durable.is_empty() {
                return Err(ErrorId::ConsumerDurableNameNotSet.error());
            }
            if name != req.config.durable {
                return Err(ErrorId::ConsumerDurableNameNotMatchSubject.error());
            }
            req.config.name = name.clone();
        }
        CreateKind::New => {
            if !req.config.durable.is_empty() && name != req.config.durable {
                return Err(ErrorId::ConsumerDurableNameNotMatchSubject.error());
            }
            req.config.name = name.clone();
        }
        CreateKind::LegacyEphemeral => {
            if !req.config.durable.is_empty() {
                return Err(ErrorId::ConsumerEphemeralWithDurableName.error());
            }
        }
    }
    if !subject.filter.is_empty() {
        if !req.config.filter_subjects.is_empty() {
            return Err(ErrorId::ConsumerMultipleFiltersNotAllowed.error());
        }
        if req.config.filter_subject != subject.filter {
            return Err(ErrorId::ConsumerCreateFilterSubjectMismatch.error());
        }
    }
    if !ctx.clustered && req.config.replicas > 1 {
        return Err(ErrorId::StreamReplicasNotSupported.error());
    }
    let stream = stream.ok_or_else(|| ErrorId::StreamNotFound.error())?;
    if let Some(existing) = consumers.get(&name) {
        // An existing consumer's pause is changed only through CONSUMER.PAUSE.
        req.config.pause_until = existing.pause_until;
    }
    metadata::set_static(&mut req.config);

    let mut cfg = req.config;
    let account = consumer_account_limits(&cfg, stream, ctx)?;
    set_consumer_defaults(&mut cfg, stream, ctx.server, &account, req.pedantic)?;
    check_consumer_rules(&cfg, stream, ctx.server, &account, false)?;

    let lookup_name = if cfg.is_durable() { cfg.durable.clone() } else { cfg.name.clone() };
    if !lookup_name.is_empty()
        && let Some(existing) = consumers.get(&lookup_name)
    {
        if req.action == ConsumerAction::Create {
            let mut cmp = cfg.clone();
            metadata::copy_versioning(&mut cmp, existing);
            if &cmp != existing {
                return Err(ErrorId::ConsumerAlreadyExists.error());
            }
        }
        if stream.retention == RetentionPolicy::WorkQueue
            && !partition_unique(consumers, &lookup_name, &cfg.filters())
        {
            return Err(ErrorId::ConsumerWQConsumerNotUnique.error());
        }
        check_config_update(existing, &cfg, env.deliver_subject_has_interest)?;
        return Ok(CreateOutcome::Update { name: lookup_name, config: cfg });
    }
    if req.action == ConsumerAction::Update {
        return Err(ErrorId::ConsumerDoesNotExist.error());
    }

    let limitable = consumers.configs().filter(|c| !c.sourcing).count() as i64;
    if !ctx.clustered && !cfg.direct && !cfg.sourcing {
        let mut maxc = stream.max_consumers;
        if maxc <= 0 || (account.max_consumers > 0 && account.max_consumers < maxc) {
            maxc = account.max_consumers;
        }
        if ctx.server.default_max_consumers > 0 && maxc <= 0 {
            maxc = ctx.server.default_max_consumers;
        }
        if maxc > 0 && limitable >= maxc {
            return Err(ErrorId::MaximumConsumersLimit.error());
        }
    }
    if stream.retention == RetentionPolicy::WorkQueue && !cfg.direct && !cfg.sourcing {
        if !matches!(cfg.ack_policy, AckPolicy::Explicit | AckPolicy::FlowControl) {
            return Err(ErrorId::ConsumerWQRequiresExplicitAck.error());
        }
        if cfg.deliver_policy != DeliverPolicy::All {
            return Err(ErrorId::ConsumerWQConsumerNotDeliverAll.error());
        }
        if limitable > 0 {
            let filters = cfg.filters();
            if filters.is_empty() {
                return Err(ErrorId::ConsumerWQMultipleUnfiltered.error());
            }
            if !partition_unique(consumers, &lookup_name, &filters) {
                return Err(ErrorId::ConsumerWQConsumerNotUnique.error());
            }
        }
    }
    if cfg.is_durable() {
        if cfg.durable.len() > MAX_NAME_LEN {
            return Err(ErrorId::ConsumerNameTooLong.with(&[("max", &MAX_NAME_LEN)]));
        }
        name = cfg.durable.clone();
    } else if !cfg.name.is_empty() {
        name = cfg.name.clone();
    } else {
        // nats-server names the consumer but keeps the config it already copied, so the
        // stored config of a legacy ephemeral has no name.
        name = env.generated_name.clone();
    }
    if !is_valid_asset_name(&name) {
        return Err(ErrorId::ConsumerBadDurableName.error());
    }
    if !cfg.is_durable() && cfg.inactive_threshold <= 0 {
        cfg.inactive_threshold = DEFAULT_EPHEMERAL_INACTIVE_THRESHOLD;
    }
    Ok(CreateOutcome::Create { name, config: cfg })
}

/// nats-server's `partitionUnique`: no other (non-internal) consumer's filters overlap
/// `filters`, and none is unfiltered.
pub fn partition_unique(consumers: &dyn ConsumerLookup, name: &str, filters: &[String]) -> bool {
    for f in filters {
        for other in consumers.configs() {
            let other_name = if other.is_durable() { &other.durable } else { &other.name };
            if other_name == name || other.direct || other.sourcing {
                continue;
            }
            let of = other.filters();
            if of.is_empty() {
                return false;
            }
            if of.iter().any(|o| subjects_overlap(f.as_bytes(), o.as_bytes())) {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoi_matches_go() {
        assert_eq!(go_atoi("50"), Ok(50));
        assert_eq!(go_atoi("+5"), Ok(5));
        assert_eq!(go_atoi("-5"), Ok(-5));
        assert_eq!(go_atoi("x").unwrap_err(), r#"strconv.Atoi: parsing "x": invalid syntax"#);
        assert!(go_atoi("99999999999999999999").unwrap_err().ends_with("value out of range"));
    }

    #[test]
    fn group_names() {
        assert!(is_valid_group_name("a-b_c=d/e"));
        assert!(!is_valid_group_name(""));
        assert!(!is_valid_group_name("a.b"));
        assert!(!is_valid_group_name("aaaaaaaaaaaaaaaaa"));
    }

    #[test]
    fn create_subjects() {
        let s = parse_create_subject("$JS.API.CONSUMER.CREATE.S").unwrap().unwrap();
        assert_eq!((s.kind, s.stream.as_str()), (CreateKind::LegacyEphemeral, "S"));
        let s = parse_create_subject("$JS.API.CONSUMER.CREATE.S.C.a.*.b").unwrap().unwrap();
        assert_eq!(
            (s.kind, s.consumer.as_str(), s.filter.as_str()),
            (CreateKind::New, "C", "a.*.b")
        );
        let s = parse_create_subject("$JS.API.CONSUMER.DURABLE.CREATE.S.D").unwrap().unwrap();
        assert_eq!(
            (s.kind, s.stream.as_str(), s.consumer.as_str()),
            (CreateKind::LegacyDurable, "S", "D")
        );
        assert_eq!(
            parse_create_subject("$JS.API.CONSUMER.DURABLE.CREATE.S.D.x")
                .unwrap()
                .unwrap_err()
                .err_code,
            10016
        );
        assert!(parse_create_subject("$JS.API.CONSUMER.CREATE").is_none());
        assert!(parse_create_subject("$JS.API.CONSUMER.INFO.S").is_none());
    }
}
