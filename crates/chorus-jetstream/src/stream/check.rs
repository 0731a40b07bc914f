//! Stream config validation and defaulting, and the create/update decisions, as nats-server
//! v2.15 makes them for a single (non-clustered) server.
//!
//! - [`check_stream_config`] is nats-server's `checkStreamCfg`: every rule about a config on
//!   its own (plus lookups of the streams it mirrors or sources), turning client zeros into
//!   defaults.
//! - [`check_create`] is `$JS.API.STREAM.CREATE` up to the point where the stream would be
//!   built: request checks, account limits, the config check, "already exists", overlap with
//!   other streams.
//! - [`check_update`] is `$JS.API.STREAM.UPDATE` (`configUpdateCheck` and friends).
//!
//! Each returns the exact [`ApiError`] the reference sends, in the reference's order of
//! checks. The runtime owns the streams; the checks read them through [`StreamLookup`].

use std::collections::{BTreeMap, HashMap, HashSet};

use chorus_proto::subject::{
    is_valid_literal_subject, is_valid_publish_subject, is_valid_subject, subject_is_subset_of,
    subjects_overlap,
};

use super::config::{
    DiscardPolicy, MAX_DESCRIPTION_LEN, MAX_METADATA_LEN, MAX_NAME_LEN, MAX_REPLICAS, PersistMode,
    RetentionPolicy, StorageType, StreamConfig, StreamConfigRequest, StreamSource,
};
use super::metadata;
use super::transform::{check_transform, validate_mapping};
use crate::api::account::{AccountLimits, select_limits};
use crate::api::errors::{ApiError, ErrorId};
use crate::go::duration_string;

/// The JetStream API subject prefix external API prefixes must not overlap.
pub const JS_API_PREFIX: &str = "$JS.API";

/// Read access to the account's existing streams.
pub trait StreamLookup {
    /// The stored config of the stream with this name.
    fn get(&self, name: &str) -> Option<&StreamConfig>;
    /// All stored configs.
    fn configs(&self) -> Box<dyn Iterator<Item = &StreamConfig> + '_>;
}

impl StreamLookup for [StreamConfig] {
    fn get(&self, name: &str) -> Option<&StreamConfig> {
        self.iter().find(|c| c.name == name)
    }
    fn configs(&self) -> Box<dyn Iterator<Item = &StreamConfig> + '_> {
        Box::new(self.iter())
    }
}

impl StreamLookup for Vec<StreamConfig> {
    fn get(&self, name: &str) -> Option<&StreamConfig> {
        StreamLookup::get(self.as_slice(), name)
    }
    fn configs(&self) -> Box<dyn Iterator<Item = &StreamConfig> + '_> {
        Box::new(self.iter())
    }
}

impl StreamLookup for BTreeMap<String, StreamConfig> {
    fn get(&self, name: &str) -> Option<&StreamConfig> {
        BTreeMap::get(self, name)
    }
    fn configs(&self) -> Box<dyn Iterator<Item = &StreamConfig> + '_> {
        Box::new(self.values())
    }
}

impl<S: std::hash::BuildHasher> StreamLookup for HashMap<String, StreamConfig, S> {
    fn get(&self, name: &str) -> Option<&StreamConfig> {
        HashMap::get(self, name)
    }
    fn configs(&self) -> Box<dyn Iterator<Item = &StreamConfig> + '_> {
        Box::new(self.values())
    }
}

/// Server-wide JetStream settings and totals the checks read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// `max_memory_store` in effect (configured or computed at start).
    pub max_memory: i64,
    /// `max_file_store` in effect.
    pub max_store: i64,
    /// Memory reserved by all streams on this server (sum of `max_bytes`), all accounts.
    pub memory_reserved: i64,
    /// Storage reserved by all streams on this server, all accounts.
    pub store_reserved: i64,
    /// `jetstream { limits { duplicate_window } }`, nanoseconds; 0 when not set.
    pub max_duplicate_window: i64,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_memory: i64::MAX,
            max_store: i64::MAX,
            memory_reserved: 0,
            store_reserved: 0,
            max_duplicate_window: 0,
        }
    }
}

/// Everything a check needs besides the config.
#[derive(Clone, Copy)]
pub struct CheckContext<'a> {
    /// Whether JetStream runs clustered. Only `false` is modelled: `true` merely lifts the
    /// "replicas > 1" rejection.
    pub clustered: bool,
    pub server: &'a ServerLimits,
    /// The account's limits by tier name (`""` for untiered limits, or `"R1"`, `"R3"`...).
    pub account: &'a BTreeMap<String, AccountLimits>,
    /// The account's existing streams.
    pub streams: &'a dyn StreamLookup,
}

/// What a consumer of the stream allows, for the update check against `consumer_limits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerLimitsView {
    pub name: String,
    /// Nanoseconds.
    pub inactive_threshold: i64,
    pub max_ack_pending: i64,
}

/// The result of a successful create check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// A new stream with this (defaulted) config, to be stored as is.
    Create(StreamConfig),
    /// A stream with this name and an equal config exists: nats-server answers with it as if
    /// it had been created (`did_create` is still true).
    Exists(StreamConfig),
}

impl CreateOutcome {
    pub fn config(&self) -> &StreamConfig {
        match self {
            CreateOutcome::Create(c) | CreateOutcome::Exists(c) => c,
        }
    }
}

fn invalid(msg: impl std::fmt::Display) -> ApiError {
    ErrorId::StreamInvalidConfig.with_err(msg)
}

fn pedantic_err(msg: &str) -> ApiError {
    ErrorId::Pedantic.with_err(msg)
}

/// nats-server's `isValidAssetName`: non-empty, none of ` \t\r\n\f.*>\/`.
pub fn is_valid_asset_name(name: &str) -> bool {
    !name.is_empty() && !name.contains([' ', '\t', '\r', '\n', '\x0c', '.', '*', '>', '\\', '/'])
}

/// nats-server's `checkStreamCfg`: validates `cfg` and returns it with defaults filled in.
pub fn check_stream_config(
    config: &StreamConfig,
    pedantic: bool,
    ctx: &CheckContext<'_>,
) -> Result<StreamConfig, ApiError> {
    if !is_valid_asset_name(&config.name) {
        return Err(invalid(
            "stream name is required and can not contain '.', '*', '>', '\\', '/'",
        ));
    }
    if config.name.len() > MAX_NAME_LEN {
        return Err(invalid(format!("stream name is too long, maximum allowed is {MAX_NAME_LEN}")));
    }
    if config.description.len() > MAX_DESCRIPTION_LEN {
        return Err(invalid(format!(
            "stream description is too long, maximum allowed is {MAX_DESCRIPTION_LEN}"
        )));
    }
    let metadata_len: usize = config.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if metadata_len > MAX_METADATA_LEN {
        return Err(invalid(format!(
            "stream metadata exceeds maximum size of {MAX_METADATA_LEN} bytes"
        )));
    }

    let mut cfg = config.clone();

    if cfg.num_replicas == 0 {
        cfg.num_replicas = 1;
    }
    if cfg.num_replicas > MAX_REPLICAS {
        return Err(invalid(format!("maximum replicas is {MAX_REPLICAS}")));
    }
    if cfg.num_replicas < 0 {
        return Err(ErrorId::ReplicasCountCannotBeNegative.error());
    }
    default_unlimited(&mut cfg.max_msgs, pedantic, "max_msgs")?;
    default_unlimited(&mut cfg.max_msgs_per_subject, pedantic, "max_msgs_per_subject")?;
    default_unlimited(&mut cfg.max_bytes, pedantic, "max_bytes")?;
    let mut mms = cfg.max_msg_size as i64;
    default_unlimited(&mut mms, pedantic, "max_msg_size")?;
    cfg.max_msg_size = mms as i32;
    default_unlimited(&mut cfg.max_consumers, pedantic, "max_consumers")?;
    if cfg.max_age < 0 {
        return Err(invalid("max age can not be negative"));
    }
    const MIN_WINDOW: i64 = 100_000_000;
    if cfg.max_age != 0 && cfg.max_age < MIN_WINDOW {
        return Err(invalid("max age needs to be >= 100ms"));
    }

    let lim_dupes = ctx.server.max_duplicate_window;
    if cfg.duplicate_window == 0 && cfg.mirror.is_none() && cfg.sources.is_empty() {
        let mut max_window = super::config::DEFAULT_DUPLICATE_WINDOW;
        if lim_dupes > 0 && max_window > lim_dupes {
            if pedantic {
                return Err(pedantic_err("duplicate window limits are higher than current limits"));
            }
            max_window = lim_dupes;
        }
        if cfg.max_age != 0 && cfg.max_age < max_window {
            if pedantic {
                return Err(pedantic_err("duplicate window cannot be bigger than max age"));
            }
            cfg.duplicate_window = cfg.max_age;
        } else {
            cfg.duplicate_window = max_window;
        }
    }
    if cfg.duplicate_window < 0 {
        return Err(invalid("duplicates window can not be negative"));
    }
    if cfg.max_age != 0 && cfg.duplicate_window > cfg.max_age {
        return Err(invalid("duplicates window can not be larger then max age"));
    }
    if lim_dupes > 0 && cfg.duplicate_window > lim_dupes {
        return Err(invalid(format!(
            "duplicates window can not be larger then server limit of {}",
            duration_string(lim_dupes)
        )));
    }
    if cfg.duplicate_window > 0 && cfg.duplicate_window < MIN_WINDOW {
        return Err(invalid("duplicates window needs to be >= 100ms"));
    }

    if cfg.deny_purge && cfg.allow_rollup {
        return Err(invalid("roll-ups require the purge permission"));
    }

    if cfg.allow_msg_counter {
        if cfg.discard == DiscardPolicy::New {
            return Err(invalid("counter stream cannot use discard new"));
        }
        if cfg.allow_msg_ttl {
            return Err(invalid("counter stream cannot use message TTLs"));
        }
        if cfg.allow_msg_schedules {
            return Err(invalid("counter stream cannot use message schedules"));
        }
        if cfg.retention != RetentionPolicy::Limits {
            return Err(invalid("counter stream can only use limits retention"));
        }
    }

    check_discard_new_per_subject(&cfg)?;

    if cfg.subject_delete_marker_ttl > 0 {
        if cfg.subject_delete_marker_ttl < 1_000_000_000 {
            return Err(invalid("subject delete marker TTL must be at least 1 second"));
        }
        if !cfg.allow_msg_ttl {
            if pedantic {
                return Err(invalid(
                    "subject delete marker cannot be set if message TTLs are disabled",
                ));
            }
            cfg.allow_msg_ttl = true;
        }
        if !cfg.allow_rollup {
            if pedantic {
                return Err(invalid(
                    "subject delete marker cannot be set if roll-ups are disabled",
                ));
            }
            cfg.allow_rollup = true;
            cfg.deny_purge = false;
        }
    } else if cfg.subject_delete_marker_ttl < 0 {
        return Err(invalid("subject delete marker TTL must not be negative"));
    }

    if cfg.allow_msg_schedules {
        if cfg.discard == DiscardPolicy::New {
            return Err(invalid("message scheduling cannot use discard new"));
        }
        if !cfg.allow_rollup {
            if pedantic {
                return Err(invalid("message scheduling cannot be set if roll-ups are disabled"));
            }
            cfg.allow_rollup = true;
            cfg.deny_purge = false;
        }
    }

    if cfg.persist_mode == PersistMode::Async {
        if cfg.storage != StorageType::File {
            return Err(invalid("async persist mode is only supported on file storage"));
        }
        if cfg.num_replicas > 1 {
            return Err(invalid("async persist mode is not supported on replicated streams"));
        }
        if cfg.allow_atomic_publish {
            return Err(invalid("async persist mode is not supported with atomic batch publish"));
        }
    }

    let mut stream_subjects: Vec<String> = Vec::new();
    let mut delivery_prefixes: Vec<String> = Vec::new();
    let mut api_prefixes: Vec<String> = Vec::new();

    if let Some(mirror) = cfg.mirror.clone() {
        if cfg.first_seq > 0 {
            return Err(ErrorId::MirrorWithFirstSeq.error());
        }
        if !cfg.subjects.is_empty() {
            return Err(ErrorId::MirrorWithSubjects.error());
        }
        if !cfg.sources.is_empty() {
            return Err(ErrorId::MirrorWithSources.error());
        }
        if cfg.allow_msg_counter {
            return Err(ErrorId::MirrorWithCounters.error());
        }
        if cfg.allow_atomic_publish {
            return Err(ErrorId::MirrorWithAtomicPublish.error());
        }
        if cfg.allow_batch_publish {
            return Err(ErrorId::MirrorWithBatchPublish.error());
        }
        if cfg.allow_msg_schedules {
            return Err(ErrorId::MirrorWithMsgSchedules.error());
        }
        if let Some(c) = &mirror.consumer
            && !durable_source_ok(&mirror, &c.name, &c.deliver_subject)
        {
            return Err(ErrorId::MirrorDurableConsumerCfgInvalid.error());
        }
        if !mirror.filter_subject.is_empty() && !mirror.subject_transforms.is_empty() {
            return Err(ErrorId::MirrorMultipleFiltersNotAllowed.error());
        }
        if cfg.subject_delete_marker_ttl > 0 {
            // Markers would use up sequence numbers and diverge from the origin.
            return Err(invalid("subject delete markers forbidden on mirrors"));
        }
        for (outer, tr) in mirror.subject_transforms.iter().enumerate() {
            if !tr.src.is_empty() && !is_valid_subject(tr.src.as_bytes()) {
                return Err(ErrorId::MirrorInvalidSubjectFilter
                    .with_err(format!("invalid subject {}", tr.src)));
            }
            if let Err(e) = validate_mapping(&tr.src, &tr.dest) {
                return Err(ErrorId::MirrorInvalidTransformDestination.with_err(e));
            }
            for (inner, other) in mirror.subject_transforms.iter().enumerate() {
                if inner != outer && subjects_overlap(tr.src.as_bytes(), other.src.as_bytes()) {
                    return Err(ErrorId::MirrorOverlappingSubjectFilters.error());
                }
            }
        }
        match &mirror.external {
            None => {
                if !is_valid_asset_name(&mirror.name) {
                    return Err(ErrorId::MirrorInvalidStreamName.error());
                }
                // The origin need not exist, but if we can see it, its limits matter.
                if let Some(origin) = ctx.streams.get(&mirror.name) {
                    stream_subjects.extend(origin.subjects.iter().cloned());
                    if cfg.max_msg_size > 0
                        && origin.max_msg_size > 0
                        && cfg.max_msg_size < origin.max_msg_size
                    {
                        return Err(ErrorId::MirrorMaxMessageSizeTooBig.error());
                    }
                    if pedantic && cfg.mirror_direct != origin.allow_direct {
                        return Err(pedantic_err(
                            "origin stream has direct get set, mirror has it disabled",
                        ));
                    }
                    cfg.mirror_direct = origin.allow_direct;
                }
            }
            Some(ext) => {
                if !ext.deliver.is_empty() {
                    delivery_prefixes.push(ext.deliver.clone());
                }
                if !ext.api.is_empty() {
                    api_prefixes.push(ext.api.clone());
                }
            }
        }
    }

    if !cfg.sources.is_empty() && cfg.allow_msg_schedules {
        return Err(ErrorId::SourceWithMsgSchedules.error());
    }

    let mut index_names = HashSet::new();
    let mut consumer_names = HashSet::new();
    for src in &cfg.sources {
        if !is_valid_asset_name(&src.name) {
            return Err(ErrorId::SourceInvalidStreamName.error());
        }
        if !index_names.insert(src.index_name()) {
            return Err(ErrorId::SourceDuplicateDetected.error());
        }
        if !src.filter_subject.is_empty() && !src.subject_transforms.is_empty() {
            return Err(ErrorId::SourceMultipleFiltersNotAllowed.error());
        }
        for tr in &src.subject_transforms {
            if !tr.src.is_empty() && !is_valid_subject(tr.src.as_bytes()) {
                return Err(ErrorId::SourceInvalidSubjectFilter
                    .with_err(format!("invalid subject {}", tr.src)));
            }
            if let Err(e) = validate_mapping(&tr.src, &tr.dest) {
                return Err(ErrorId::SourceInvalidTransformDestination.with_err(e));
            }
        }
        for (outer, tr) in src.subject_transforms.iter().enumerate() {
            for (inner, other) in src.subject_transforms.iter().enumerate() {
                if inner != outer && subject_is_subset_of(tr.src.as_bytes(), other.src.as_bytes()) {
                    return Err(ErrorId::SourceOverlappingSubjectFilters.error());
                }
            }
        }
        if let Some(c) = &src.consumer {
            if !durable_source_ok(src, &c.name, &c.deliver_subject) {
                return Err(ErrorId::SourceDurableConsumerCfgInvalid.error());
            }
            if !consumer_names.insert(src.consumer_key()) {
                return Err(ErrorId::SourceDurableConsumerDuplicateDetected.error());
            }
        }
        match &src.external {
            None => {
                if let Some(origin) = ctx.streams.get(&src.name) {
                    stream_subjects.extend(origin.subjects.iter().cloned());
                    if cfg.max_msg_size > 0
                        && origin.max_msg_size > 0
                        && cfg.max_msg_size < origin.max_msg_size
                    {
                        return Err(ErrorId::SourceMaxMessageSizeTooBig.error());
                    }
                }
            }
            Some(ext) => {
                if !ext.deliver.is_empty() {
                    delivery_prefixes.push(ext.deliver.clone());
                }
                if !ext.api.is_empty() {
                    api_prefixes.push(ext.api.clone());
                }
            }
        }
    }

    for pfx in &delivery_prefixes {
        if !is_valid_publish_subject(pfx.as_bytes()) {
            return Err(ErrorId::StreamInvalidExternalDeliverySubj.with(&[("prefix", pfx)]));
        }
        for sub in &stream_subjects {
            let prefixed = format!("{pfx}.{sub}");
            if subjects_overlap(sub.as_bytes(), prefixed.as_bytes()) {
                return Err(ErrorId::StreamExternalDelPrefixOverlaps
                    .with(&[("prefix", pfx), ("subject", sub)]));
            }
        }
    }
    for api in &api_prefixes {
        if !is_valid_publish_subject(api.as_bytes()) {
            return Err(invalid(format!(
                "stream external api prefix {api:?} must be a valid subject without wildcards"
            )));
        }
        if subjects_overlap(api.as_bytes(), JS_API_PREFIX.as_bytes()) {
            return Err(ErrorId::StreamExternalApiOverlap
                .with(&[("prefix", api), ("subject", &JS_API_PREFIX)]));
        }
    }

    check_source_cycles(&cfg, ctx)?;

    if cfg.subjects.is_empty() {
        if cfg.mirror.is_none() && cfg.sources.is_empty() {
            cfg.subjects.push(cfg.name.clone());
        }
    } else {
        if cfg.mirror.is_some() {
            return Err(ErrorId::MirrorWithSubjects.error());
        }
        check_own_subjects(&cfg)?;
    }
    if cfg.subjects.is_empty() && cfg.sources.is_empty() && cfg.mirror.is_none() {
        return Err(invalid("stream needs at least one configured subject or be a source/mirror"));
    }

    if let Some((limits, _)) = select_limits(ctx.account, cfg.num_replicas) {
        let max_stream_bytes = match cfg.storage {
            StorageType::Memory => limits.memory_max_stream_bytes,
            StorageType::File => limits.storage_max_stream_bytes,
        };
        if limits.max_bytes_required && cfg.max_bytes <= 0 {
            return Err(ErrorId::StreamMaxBytesRequired.error());
        } else if max_stream_bytes > 0 && cfg.max_bytes > max_stream_bytes {
            return Err(ErrorId::StreamMaxStreamBytesExceeded.error());
        }
    }

    if let Some(tr) = &cfg.subject_transform {
        if !tr.src.is_empty() && !is_valid_subject(tr.src.as_bytes()) {
            return Err(ErrorId::StreamTransformInvalidSource
                .with_err(format!("invalid subject {}", tr.src)));
        }
        if let Err(e) = validate_mapping(&tr.src, &tr.dest) {
            return Err(ErrorId::StreamTransformInvalidDestination.with_err(e));
        }
    }

    if let Some(mut rp) = cfg.republish.clone() {
        if rp.src.is_empty() {
            if pedantic {
                return Err(pedantic_err("republish source can not be empty"));
            }
            rp.src = ">".into();
        }
        // `>` to `>` would loop through our own subjects, unless the stream's single subject
        // is transformed elsewhere: then the republish follows the transform.
        if let Some(tr) = &cfg.subject_transform
            && rp.dest == ">"
            && rp.src == ">"
            && cfg.subjects.len() == 1
            && tr.src == cfg.subjects[0]
        {
            if pedantic {
                return Err(pedantic_err("implicit republish based on subject transform"));
            }
            rp.src = tr.dest.clone();
            rp.dest = tr.dest.clone();
        }
        if cfg.subjects.iter().any(|s| subjects_overlap(rp.dest.as_bytes(), s.as_bytes())) {
            return Err(invalid("stream configuration for republish destination forms a cycle"));
        }
        if check_transform(&rp.src, &rp.dest).is_err() {
            return Err(invalid(format!(
                "stream configuration for republish with transform from '{}' to '{}' not valid",
                rp.src, rp.dest
            )));
        }
        cfg.republish = Some(rp);
    }

    if cfg.placement.as_ref().is_some_and(|p| p.is_empty()) {
        cfg.placement = None;
    }
    if cfg.placement.as_ref().is_some_and(|p| !p.preferred.is_empty()) {
        return Err(invalid("preferred server not permitted in placement"));
    }

    Ok(cfg)
}

/// Zero or below -1 becomes -1 ("unlimited"); pedantic requests must say -1 themselves.
fn default_unlimited(v: &mut i64, pedantic: bool, field: &str) -> Result<(), ApiError> {
    if *v == 0 || *v < -1 {
        if pedantic && *v < -1 {
            return Err(pedantic_err(&format!("{field} must be set to -1")));
        }
        *v = -1;
    }
    Ok(())
}

fn check_discard_new_per_subject(cfg: &StreamConfig) -> Result<(), ApiError> {
    if cfg.discard_new_per_subject {
        if cfg.discard != DiscardPolicy::New {
            return Err(invalid("discard new per subject requires discard new policy to be set"));
        }
        if cfg.max_msgs_per_subject <= 0 {
            return Err(invalid("discard new per subject requires max msgs per subject > 0"));
        }
    }
    Ok(())
}

/// The rules for a durable sourcing consumer: valid name, literal deliver subject, and no
/// start position or filter of its own.
fn durable_source_ok(src: &StreamSource, name: &str, deliver: &str) -> bool {
    is_valid_asset_name(name)
        && is_valid_literal_subject(deliver.as_bytes())
        && is_valid_subject(deliver.as_bytes())
        && src.opt_start_seq == 0
        && src.opt_start_time.is_none()
        && src.filter_subject.is_empty()
}

/// Subjects of a stream that neither mirrors nor is empty: valid, no duplicates, no
/// capture-all without no-ack, no JetStream or system API subjects without no-ack, and no
/// overlaps among themselves.
fn check_own_subjects(cfg: &StreamConfig) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    for (i, subj) in cfg.subjects.iter().enumerate() {
        if !is_valid_subject(subj.as_bytes()) {
            return Err(invalid("invalid subject"));
        }
        if seen.contains(subj.as_str()) {
            return Err(invalid("duplicate subjects detected"));
        }
        if subj == ">" {
            if !cfg.no_ack {
                return Err(invalid("capturing all subjects requires no-ack to be true"));
            }
            if cfg.num_replicas != 1 {
                return Err(invalid("capturing all subjects requires replicas of 1"));
            }
        }
        if !cfg.no_ack {
            for ns in ["$JS.>", "$JSC.>", "$NRG.>"] {
                // Streams on advisories predate this rule and stay allowed.
                if subjects_overlap(subj.as_bytes(), ns.as_bytes())
                    && !subject_is_subset_of(subj.as_bytes(), b"$JS.EVENT.>")
                {
                    return Err(invalid(
                        "subjects that overlap with jetstream api require no-ack to be true",
                    ));
                }
            }
            if subjects_overlap(subj.as_bytes(), b"$SYS.>")
                && !subject_is_subset_of(subj.as_bytes(), b"$SYS.ACCOUNT.>")
            {
                return Err(invalid(
                    "subjects that overlap with system api require no-ack to be true",
                ));
            }
        }
        for other in &cfg.subjects[i + 1..] {
            if subjects_overlap(other.as_bytes(), subj.as_bytes()) {
                return Err(invalid(format!("subject {subj:?} overlaps with {other:?}")));
            }
        }
        seen.insert(subj.as_str());
    }
    Ok(())
}

/// Walks the graph of local sources and mirrors from `cfg`; coming back to a visited stream
/// is a cycle if that stream's subjects can reach the source filter (for sources) or always
/// (for mirrors).
fn check_source_cycles(cfg: &StreamConfig, ctx: &CheckContext<'_>) -> Result<(), ApiError> {
    let mut to_visit: Vec<StreamConfig> = vec![cfg.clone()];
    let mut visited: HashSet<String> = HashSet::new();
    let mut next = 0;
    while next < to_visit.len() {
        let cur = to_visit[next].clone();
        next += 1;
        visited.insert(cur.name.clone());
        for src in &cur.sources {
            if src.external.is_some() {
                continue;
            }
            if visited.contains(&src.name) {
                let reaches = src.filter_subject.is_empty()
                    || cur
                        .subjects
                        .iter()
                        .any(|s| subjects_overlap(s.as_bytes(), src.filter_subject.as_bytes()));
                if reaches {
                    return Err(invalid("detected cycle"));
                }
            } else if let Some(c) = ctx.streams.get(&src.name) {
                to_visit.push(c.clone());
            }
        }
        if let Some(m) = &cur.mirror
            && m.external.is_none()
        {
            if visited.contains(&m.name) {
                return Err(invalid("detected cycle"));
            }
            if let Some(c) = ctx.streams.get(&m.name) {
                to_visit.push(c.clone());
            }
        }
        // Stream graphs are small; this only guards against a lookup that never ends.
        if to_visit.len() > 100_000 {
            break;
        }
    }
    Ok(())
}

/// Whether any other stream's subjects overlap `subjects` (10065 when they do).
pub fn subjects_overlap_other_streams(
    subjects: &[String],
    this_stream: Option<&str>,
    streams: &dyn StreamLookup,
) -> bool {
    streams.configs().filter(|c| Some(c.name.as_str()) != this_stream).any(|c| {
        c.subjects.iter().any(|theirs| {
            subjects.iter().any(|ours| subjects_overlap(ours.as_bytes(), theirs.as_bytes()))
        })
    })
}

/// Bytes of an account limit a stream of `replicas` replicas takes: untiered limits are
/// flat, so they count every replica.
fn account_reservation(tier: &str, replicas: i64, bytes: i64) -> i64 {
    if bytes <= 0 {
        0
    } else if tier.is_empty() && replicas > 1 {
        replicas.saturating_mul(bytes)
    } else {
        bytes
    }
}

fn same_tier(a: i64, b: i64) -> bool {
    a.max(1) == b.max(1)
}

/// What the account's other streams of the same storage (and tier) reserve.
fn tiered_reservation(tier: &str, cfg: &StreamConfig, streams: &dyn StreamLookup) -> i64 {
    streams
        .configs()
        .filter(|c| c.name != cfg.name)
        .filter(|c| {
            (tier.is_empty() || same_tier(c.num_replicas, cfg.num_replicas))
                && c.max_bytes > 0
                && c.storage == cfg.storage
        })
        .fold(0i64, |acc, c| {
            acc.saturating_add(account_reservation(tier, c.num_replicas, c.max_bytes))
        })
}

/// nats-server's `checkAllLimits`: max consumers against the account, then the bytes the
/// stream reserves against the account and the server.
fn check_all_limits(
    limits: &AccountLimits,
    tier: &str,
    cfg: &StreamConfig,
    current_reserved: i64,
    server: &ServerLimits,
) -> Result<(), ApiError> {
    if cfg.max_consumers > 0 && limits.max_consumers > 0 && cfg.max_consumers > limits.max_consumers
    {
        return Err(ErrorId::MaximumConsumersLimit.error());
    }
    let add = if cfg.max_bytes < 0 { 1 } else { cfg.max_bytes };
    let account_bytes = account_reservation(tier, cfg.num_replicas, add);
    let (limit, server_max, server_reserved, err) = match cfg.storage {
        StorageType::Memory => (
            limits.max_memory,
            server.max_memory,
            server.memory_reserved,
            ErrorId::MemoryResourcesExceeded,
        ),
        StorageType::File => (
            limits.max_storage,
            server.max_store,
            server.store_reserved,
            ErrorId::StorageResourcesExceeded,
        ),
    };
    if limit >= 0 && (current_reserved > limit || account_bytes > limit - current_reserved) {
        return Err(err.error());
    }
    if server_reserved > server_max || add > server_max - server_reserved {
        return Err(err.error());
    }
    Ok(())
}

/// `$JS.API.STREAM.CREATE.<subject_name>` on a single server, from the parsed request to the
/// decision. The returned config carries `_nats.req.level`; add the dynamic metadata with
/// [`metadata::with_dynamic`] when answering.
pub fn check_create(
    subject_name: &str,
    request: &StreamConfigRequest,
    ctx: &CheckContext<'_>,
) -> Result<CreateOutcome, ApiError> {
    let mut raw = request.config.clone();
    metadata::set_static(&mut raw);
    if subject_name != raw.name {
        return Err(ErrorId::StreamMismatch.error());
    }
    if subject_name.contains(['\\', '/']) {
        return Err(ErrorId::StreamNameContainsPathSeparators.error());
    }
    if raw.sealed {
        return Err(invalid("stream configuration for create can not be sealed"));
    }
    if raw.mirror_direct && raw.mirror.is_none() {
        return Err(invalid("stream has no mirror but does have mirror direct"));
    }

    // Account limits against the request as sent (before defaults), as nats-server does.
    let Some((limits, tier)) = select_limits(ctx.account, raw.num_replicas) else {
        return Err(ErrorId::NoLimits.error());
    };
    if limits.max_streams > 0 {
        let count = ctx
            .streams
            .configs()
            .filter(|c| {
                (tier.is_empty() || same_tier(c.num_replicas, raw.num_replicas))
                    && c.name != raw.name
            })
            .count() as i64;
        if count >= limits.max_streams {
            return Err(ErrorId::MaximumStreamsLimit.error());
        }
    }
    let reserved = tiered_reservation(&tier, &raw, ctx.streams);
    check_all_limits(&limits, &tier, &raw, reserved, ctx.server)?;

    let cfg = check_stream_config(&raw, request.pedantic, ctx)?;
    if !ctx.clustered && cfg.num_replicas > 1 {
        return Err(ErrorId::StreamReplicasNotSupported.error());
    }

    if let Some(existing) = ctx.streams.get(&cfg.name) {
        let mut cmp = cfg.clone();
        metadata::copy_versioning(&mut cmp, existing);
        return if &cmp == existing {
            Ok(CreateOutcome::Exists(existing.clone()))
        } else {
            Err(ErrorId::StreamNameExist.error())
        };
    }

    let Some((limits, tier)) = select_limits(ctx.account, cfg.num_replicas) else {
        return Err(ErrorId::NoLimits.error());
    };
    let reserved = tiered_reservation(&tier, &cfg, ctx.streams);
    check_all_limits(&limits, &tier, &cfg, reserved, ctx.server)?;

    check_filters_after_defaults(&cfg)?;

    if subjects_overlap_other_streams(&cfg.subjects, None, ctx.streams) {
        return Err(ErrorId::StreamSubjectOverlap.error());
    }
    Ok(CreateOutcome::Create(cfg))
}

/// The filter checks nats-server makes while building the stream (after `checkStreamCfg`),
/// reported as 10049 with the underlying message.
fn check_filters_after_defaults(cfg: &StreamConfig) -> Result<(), ApiError> {
    let create_err = |m: String| ErrorId::StreamCreate.with_err(m);
    if let Some(m) = &cfg.mirror {
        if m.subject_transforms.is_empty() {
            if !m.filter_subject.is_empty() && !is_valid_subject(m.filter_subject.as_bytes()) {
                return Err(create_err(format!(
                    "subject filter '{}' for the mirror invalid subject",
                    m.filter_subject
                )));
            }
        } else {
            for st in &m.subject_transforms {
                if !st.src.is_empty() && !is_valid_subject(st.src.as_bytes()) {
                    return Err(create_err(format!(
                        "invalid subject transform source '{}' for the mirror: invalid subject",
                        st.src
                    )));
                }
                if let Err(e) = check_transform(&st.src, &st.dest) {
                    return Err(create_err(format!(
                        "subject transform from '{}' to '{}' for the mirror: {e}",
                        st.src, st.dest
                    )));
                }
            }
        }
    }
    for s in &cfg.sources {
        if s.subject_transforms.is_empty() {
            if !s.filter_subject.is_empty() && !is_valid_subject(s.filter_subject.as_bytes()) {
                return Err(create_err(format!(
                    "subject filter '{}' for the source: invalid subject",
                    s.filter_subject
                )));
            }
        } else {
            for st in &s.subject_transforms {
                if !st.src.is_empty() && !is_valid_subject(st.src.as_bytes()) {
                    return Err(create_err(format!(
                        "subject filter '{}' for the source: invalid subject",
                        st.src
                    )));
                }
                if let Err(e) = check_transform(&st.src, &st.dest) {
                    return Err(create_err(format!(
                        "subject transform from '{}' to '{}' for the source: {e}",
                        st.src, st.dest
                    )));
                }
            }
        }
    }
    Ok(())
}

/// `$JS.API.STREAM.UPDATE.<subject_name>` on a single server: returns the config to store.
/// `consumers` describes the stream's consumers for the `consumer_limits` check.
pub fn check_update(
    subject_name: &str,
    request: &StreamConfigRequest,
    ctx: &CheckContext<'_>,
    consumers: &[ConsumerLimitsView],
) -> Result<StreamConfig, ApiError> {
    let mut cfg = check_stream_config(&request.config, request.pedantic, ctx)?;
    if subject_name != cfg.name {
        return Err(ErrorId::StreamMismatch.error());
    }
    let Some(old) = ctx.streams.get(subject_name) else {
        return Err(ErrorId::StreamNotFound.error());
    };
    metadata::set_static(&mut cfg);
    let cfg = config_update_check(old, &cfg, request.pedantic, ctx)?;

    let (old_it, new_it) =
        (old.consumer_limits.inactive_threshold, cfg.consumer_limits.inactive_threshold);
    let (old_map, new_map) =
        (old.consumer_limits.max_ack_pending, cfg.consumer_limits.max_ack_pending);
    let changed = (new_it > 0 && old_it != new_it) || (new_map > 0 && old_map != new_map);
    if changed && !ctx.clustered {
        let violating: Vec<&str> = consumers
            .iter()
            .filter(|c| {
                (new_it > 0 && c.inactive_threshold > new_it)
                    || (new_map > 0 && c.max_ack_pending > new_map)
            })
            .map(|c| c.name.as_str())
            .collect();
        if !violating.is_empty() {
            return Err(ErrorId::StreamUpdate.with_err(format!(
                "change to limits violates consumers: {}",
                violating.join(", ")
            )));
        }
    }

    if subjects_overlap_other_streams(&cfg.subjects, Some(&cfg.name), ctx.streams) {
        return Err(ErrorId::StreamSubjectOverlap.error());
    }
    Ok(cfg)
}

/// nats-server's `configUpdateCheck`: which changes an update may make, and the limits the
/// new config must fit.
pub fn config_update_check(
    old: &StreamConfig,
    new: &StreamConfig,
    pedantic: bool,
    ctx: &CheckContext<'_>,
) -> Result<StreamConfig, ApiError> {
    let mut cfg = check_stream_config(new, pedantic, ctx)?;
    if cfg.name != old.name {
        return Err(invalid("stream configuration name must match original"));
    }
    if !ctx.clustered && cfg.num_replicas > 1 {
        return Err(ErrorId::StreamReplicasNotSupported.error());
    }
    if cfg.storage != old.storage {
        return Err(invalid("stream configuration update can not change storage type"));
    }
    if cfg.retention != old.retention
        && (old.retention == RetentionPolicy::WorkQueue
            || cfg.retention == RetentionPolicy::WorkQueue)
    {
        return Err(invalid(
            "stream configuration update can not change retention policy to/from workqueue",
        ));
    }
    if !cfg.sealed && old.sealed {
        return Err(invalid("stream configuration update can not unseal a sealed stream"));
    }
    if !cfg.deny_delete && old.deny_delete {
        return Err(invalid("stream configuration update can not cancel deny message deletes"));
    }
    if !cfg.deny_purge && old.deny_purge {
        return Err(invalid("stream configuration update can not cancel deny purge"));
    }
    // Removing the mirror ("promoting" it) is allowed; changing it is not.
    if cfg.mirror.is_some() && cfg.mirror != old.mirror {
        return Err(ErrorId::StreamMirrorNotUpdatable.error());
    }
    check_discard_new_per_subject(&cfg)?;
    if old.allow_msg_ttl && !cfg.allow_msg_ttl {
        return Err(invalid("message TTL status can not be disabled"));
    }
    if cfg.allow_msg_counter != old.allow_msg_counter {
        return Err(invalid("stream configuration update can not change message counter setting"));
    }
    if old.allow_msg_schedules && !cfg.allow_msg_schedules {
        return Err(invalid("message schedules can not be disabled"));
    }
    if old.persist_mode != cfg.persist_mode {
        return Err(invalid("stream configuration update can not change persist mode"));
    }

    if cfg.sealed {
        cfg.max_age = 0;
        cfg.discard = DiscardPolicy::New;
        cfg.deny_delete = true;
        cfg.deny_purge = true;
        cfg.allow_rollup = false;
    }

    // Only growth of max_bytes needs new room; check the difference against what the other
    // streams reserve plus this stream's current footprint.
    let diff = (cfg.max_bytes.max(0) - old.max_bytes.max(0)).max(0);
    let new_max_bytes = cfg.max_bytes;
    let selected = select_limits(ctx.account, cfg.num_replicas)
        .or_else(|| select_limits(ctx.account, old.num_replicas));
    let Some((limits, tier)) = selected else {
        return Err(ErrorId::NoLimits.error());
    };
    let mut probe = cfg.clone();
    probe.max_bytes = diff;
    let reserved = tiered_reservation(&tier, &probe, ctx.streams)
        .saturating_add(account_reservation(&tier, cfg.num_replicas, new_max_bytes - diff));
    check_all_limits(&limits, &tier, &probe, reserved, ctx.server)?;
    cfg.max_bytes = new_max_bytes;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::account::untiered;
    use crate::stream::config::{ExternalStream, Placement, RePublish, SubjectTransform};

    struct Fixture {
        server: ServerLimits,
        account: BTreeMap<String, AccountLimits>,
        streams: Vec<StreamConfig>,
    }

    impl Fixture {
        fn new() -> Self {
            Fixture {
                server: ServerLimits::default(),
                account: untiered(AccountLimits::UNLIMITED),
                streams: vec![],
            }
        }
        fn ctx(&self) -> CheckContext<'_> {
            CheckContext {
                clustered: false,
                server: &self.server,
                account: &self.account,
                streams: &self.streams,
            }
        }
        fn check(&self, cfg: StreamConfig) -> Result<StreamConfig, ApiError> {
            check_stream_config(&cfg, false, &self.ctx())
        }
        fn create(&mut self, cfg: StreamConfig) -> Result<StreamConfig, ApiError> {
            let name = cfg.name.clone();
            let req = StreamConfigRequest { config: cfg, pedantic: false };
            let out = check_create(&name, &req, &self.ctx())?;
            if let CreateOutcome::Create(c) = &out {
                self.streams.push(c.clone());
            }
            Ok(out.config().clone())
        }
    }

    fn named(name: &str) -> StreamConfig {
        StreamConfig { name: name.into(), ..Default::default() }
    }

    fn code(r: Result<StreamConfig, ApiError>) -> (u16, String) {
        let e = r.expect_err("expected an error");
        (e.err_code, e.description)
    }

    #[test]
    fn defaults() {
        let f = Fixture::new();
        let c = f.check(named("S")).unwrap();
        assert_eq!(c.subjects, ["S"]);
        assert_eq!((c.max_msgs, c.max_bytes, c.max_msgs_per_subject), (-1, -1, -1));
        assert_eq!((c.max_msg_size, c.max_consumers, c.num_replicas), (-1, -1, 1));
        assert_eq!(c.duplicate_window, 120_000_000_000);
        assert_eq!(c.storage, StorageType::File);
        // A short max_age caps the duplicate window.
        let c = f.check(StreamConfig { max_age: 1_000_000_000, ..named("S") }).unwrap();
        assert_eq!(c.duplicate_window, 1_000_000_000);
        // Mirrors and sourcing streams get no duplicate window.
        let c = f
            .check(StreamConfig {
                mirror: Some(StreamSource { name: "O".into(), ..Default::default() }),
                ..named("M")
            })
            .unwrap();
        assert_eq!(c.duplicate_window, 0);
        assert!(c.subjects.is_empty());
    }

    #[test]
    fn names() {
        let f = Fixture::new();
        for bad in ["", "a.b", "a*", "a>", "a b", "a\tb", "a/b", "a\\b"] {
            assert_eq!(code(f.check(named(bad))).0, 10052, "{bad:?}");
        }
        assert_eq!(
            code(f.check(named(&"x".repeat(256)))),
            (10052, "stream name is too long, maximum allowed is 255".into())
        );
        assert!(f.check(named(&"x".repeat(255))).is_ok());
    }

    #[test]
    fn numeric_rules() {
        let f = Fixture::new();
        let cases = [
            (StreamConfig { num_replicas: 6, ..named("S") }, 10052, "maximum replicas is 5"),
            (
                StreamConfig { num_replicas: -1, ..named("S") },
                10133,
                "replicas count cannot be negative",
            ),
            (StreamConfig { max_age: -1, ..named("S") }, 10052, "max age can not be negative"),
            (
                StreamConfig { max_age: 99_999_999, ..named("S") },
                10052,
                "max age needs to be >= 100ms",
            ),
            (
                StreamConfig { duplicate_window: -1, ..named("S") },
                10052,
                "duplicates window can not be negative",
            ),
            (
                StreamConfig { duplicate_window: 99_999_999, ..named("S") },
                10052,
                "duplicates window needs to be >= 100ms",
            ),
            (
                StreamConfig {
                    max_age: 1_000_000_000,
                    duplicate_window: 2_000_000_000,
                    ..named("S")
                },
                10052,
                "duplicates window can not be larger then max age",
            ),
        ];
        for (cfg, err_code, desc) in cases {
            assert_eq!(code(f.check(cfg)), (err_code, desc.to_string()));
        }
        let mut f = Fixture::new();
        f.server.max_duplicate_window = 60_000_000_000;
        assert_eq!(f.check(named("S")).unwrap().duplicate_window, 60_000_000_000);
        assert_eq!(
            code(f.check(StreamConfig { duplicate_window: 61_000_000_000, ..named("S") })),
            (10052, "duplicates window can not be larger then server limit of 1m0s".into())
        );
    }

    #[test]
    fn pedantic_refuses_to_default() {
        let f = Fixture::new();
        let e = check_stream_config(&StreamConfig { max_msgs: -5, ..named("S") }, true, &f.ctx());
        assert_eq!(code(e), (10157, "pedantic mode: max_msgs must be set to -1".into()));
        let e = check_stream_config(
            &StreamConfig { max_age: 1_000_000_000, ..named("S") },
            true,
            &f.ctx(),
        );
        assert_eq!(code(e).0, 10157);
        // Without pedantic the same values are defaulted.
        assert_eq!(f.check(StreamConfig { max_msgs: -5, ..named("S") }).unwrap().max_msgs, -1);
    }

    #[test]
    fn feature_combinations() {
        let f = Fixture::new();
        let e = f.check(StreamConfig { deny_purge: true, allow_rollup: true, ..named("S") });
        assert_eq!(code(e).1, "roll-ups require the purge permission");
        let counter = StreamConfig { allow_msg_counter: true, ..named("S") };
        let e = f.check(StreamConfig { discard: DiscardPolicy::New, ..counter.clone() });
        assert_eq!(code(e).1, "counter stream cannot use discard new");
        let e = f.check(StreamConfig { retention: RetentionPolicy::Interest, ..counter.clone() });
        assert_eq!(code(e).1, "counter stream can only use limits retention");
        assert!(f.check(counter).is_ok());
        let e = f.check(StreamConfig { discard_new_per_subject: true, ..named("S") });
        assert_eq!(code(e).1, "discard new per subject requires discard new policy to be set");
        // Delete markers switch on TTLs and roll-ups (and with them, purges).
        let c = f
            .check(StreamConfig {
                subject_delete_marker_ttl: 5_000_000_000,
                deny_purge: true,
                ..named("S")
            })
            .unwrap();
        assert!(c.allow_msg_ttl && c.allow_rollup && !c.deny_purge);
        let e = f.check(StreamConfig { subject_delete_marker_ttl: 999_999_999, ..named("S") });
        assert_eq!(code(e).1, "subject delete marker TTL must be at least 1 second");
        let c = f.check(StreamConfig { allow_msg_schedules: true, ..named("S") }).unwrap();
        assert!(c.allow_rollup);
        let e = f.check(StreamConfig {
            persist_mode: PersistMode::Async,
            storage: StorageType::Memory,
            ..named("S")
        });
        assert_eq!(code(e).1, "async persist mode is only supported on file storage");
    }

    #[test]
    fn subjects() {
        let f = Fixture::new();
        let with = |subjects: &[&str], no_ack: bool| StreamConfig {
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            no_ack,
            ..named("S")
        };
        assert_eq!(code(f.check(with(&["foo..bar"], false))).1, "invalid subject");
        assert_eq!(code(f.check(with(&["a b"], false))).1, "invalid subject");
        assert_eq!(code(f.check(with(&["a", "a"], false))).1, r#"subject "a" overlaps with "a""#);
        assert_eq!(
            code(f.check(with(&["foo.*", "foo.bar"], false))).1,
            r#"subject "foo.*" overlaps with "foo.bar""#
        );
        assert_eq!(
            code(f.check(with(&[">"], false))).1,
            "capturing all subjects requires no-ack to be true"
        );
        assert!(f.check(with(&[">"], true)).is_ok());
        assert_eq!(
            code(f.check(with(&["$JS.API.>"], false))).1,
            "subjects that overlap with jetstream api require no-ack to be true"
        );
        assert_eq!(
            code(f.check(with(&["$JSC.x"], false))).1,
            "subjects that overlap with jetstream api require no-ack to be true"
        );
        assert!(f.check(with(&["$JS.API.>"], true)).is_ok());
        assert!(f.check(with(&["$JS.EVENT.ADVISORY.>"], false)).is_ok());
        assert!(f.check(with(&["$SYS.ACCOUNT.>"], false)).is_ok());
        assert_eq!(
            code(f.check(with(&["$SYS.>"], false))).1,
            "subjects that overlap with system api require no-ack to be true"
        );
        // ChoirOS: the explicit event subjects do not overlap each other.
        assert!(
            f.check(with(
                &[
                    "choiros.agent.*.started",
                    "choiros.agent.*.progress",
                    "choiros.agent.*.result",
                    "choiros.agent.*.error"
                ],
                false
            ))
            .is_ok()
        );
    }

    #[test]
    fn mirrors_and_sources() {
        let mut f = Fixture::new();
        f.create(StreamConfig { max_msg_size: 100, allow_direct: true, ..named("O") }).unwrap();
        let mirror = |name: &str| Some(StreamSource { name: name.into(), ..Default::default() });
        let c = f.check(StreamConfig { mirror: mirror("O"), ..named("M") }).unwrap();
        assert!(c.mirror_direct, "mirror_direct follows the origin's allow_direct");
        let e = f.check(StreamConfig { mirror: mirror("O"), max_msg_size: 10, ..named("M") });
        assert_eq!(code(e).0, 10030);
        let e =
            f.check(StreamConfig { mirror: mirror("O"), subjects: vec!["x".into()], ..named("M") });
        assert_eq!(code(e).0, 10034);
        let e = f.check(StreamConfig { mirror: mirror("O"), first_seq: 1, ..named("M") });
        assert_eq!(code(e).0, 10143);
        let e = f.check(StreamConfig { mirror: mirror("a.b"), ..named("M") });
        assert_eq!(code(e).0, 10142);
        let src = |name: &str| StreamSource { name: name.into(), ..Default::default() };
        let e = f.check(StreamConfig { sources: vec![src("O"), src("O")], ..named("S") });
        assert_eq!(code(e).0, 10140);
        let e = f.check(StreamConfig { sources: vec![src("O")], max_msg_size: 10, ..named("S") });
        assert_eq!(code(e).0, 10046);
        let filtered = StreamSource { filter_subject: "O".into(), ..src("O") };
        assert!(f.check(StreamConfig { sources: vec![src("O"), filtered], ..named("S") }).is_ok());
        let ext = |api: &str, deliver: &str| StreamSource {
            external: Some(ExternalStream { api: api.into(), deliver: deliver.into() }),
            ..src("X")
        };
        let e = f.check(StreamConfig { sources: vec![ext("$JS.hub.API", "d.*")], ..named("S") });
        assert_eq!(
            code(e),
            (10024, "stream external delivery prefix d.* must not contain wildcards".into())
        );
        let e = f.check(StreamConfig { sources: vec![ext("$JS.API", "")], ..named("S") });
        assert_eq!(
            code(e),
            (10021, "stream external api prefix $JS.API must not overlap with $JS.API".into())
        );
    }

    #[test]
    fn source_cycles() {
        let mut f = Fixture::new();
        let src = |name: &str| StreamSource { name: name.into(), ..Default::default() };
        f.create(StreamConfig { subjects: vec!["a".into()], ..named("A") }).unwrap();
        f.create(StreamConfig { sources: vec![src("A")], ..named("B") }).unwrap();
        // A sourcing B, which sources A: a cycle.
        let e = f.check(StreamConfig {
            subjects: vec!["a".into()],
            sources: vec![src("B")],
            ..named("A")
        });
        assert_eq!(code(e), (10052, "detected cycle".into()));
        // A filter that A's subjects cannot reach breaks the cycle.
        let filtered = StreamSource { filter_subject: "zzz".into(), ..src("A") };
        f.streams[1].sources = vec![filtered];
        assert!(
            f.check(StreamConfig {
                subjects: vec!["a".into()],
                sources: vec![src("B")],
                ..named("A")
            })
            .is_ok()
        );
    }

    #[test]
    fn transforms_republish_placement() {
        let f = Fixture::new();
        let tr =
            |src: &str, dest: &str| Some(SubjectTransform { src: src.into(), dest: dest.into() });
        let e = f.check(StreamConfig { subject_transform: tr("a..b", "x"), ..named("S") });
        assert_eq!(code(e), (10155, "stream transform source: invalid subject a..b".into()));
        let rp = |src: &str, dest: &str| {
            Some(RePublish { src: src.into(), dest: dest.into(), headers_only: false })
        };
        let base = StreamConfig { subjects: vec!["s.>".into()], ..named("S") };
        let e = f.check(StreamConfig { republish: rp(">", "s.x.>"), ..base.clone() });
        assert_eq!(code(e).1, "stream configuration for republish destination forms a cycle");
        let c = f.check(StreamConfig { republish: rp("", "out.>"), ..base.clone() }).unwrap();
        assert_eq!(c.republish.unwrap().src, ">");
        // `>` to `>` follows a transform of the single subject.
        let c = f
            .check(StreamConfig {
                subjects: vec!["in.>".into()],
                subject_transform: tr("in.>", "out.>"),
                republish: rp(">", ">"),
                ..named("S")
            })
            .unwrap();
        let r = c.republish.unwrap();
        assert_eq!((r.src.as_str(), r.dest.as_str()), ("out.>", "out.>"));
        let p = |cluster: &str, preferred: &str| {
            Some(Placement { cluster: cluster.into(), tags: vec![], preferred: preferred.into() })
        };
        assert_eq!(
            f.check(StreamConfig { placement: p("", ""), ..named("S") }).unwrap().placement,
            None
        );
        assert!(
            f.check(StreamConfig { placement: p("c", ""), ..named("S") })
                .unwrap()
                .placement
                .is_some()
        );
        assert_eq!(code(f.check(StreamConfig { placement: p("", "x"), ..named("S") })).0, 10052);
    }

    #[test]
    fn create_flow() {
        let mut f = Fixture::new();
        let req = |cfg: StreamConfig| StreamConfigRequest { config: cfg, pedantic: false };
        assert_eq!(check_create("B", &req(named("A")), &f.ctx()).unwrap_err().err_code, 10056);
        let sealed = StreamConfig { sealed: true, ..named("A") };
        assert_eq!(check_create("A", &req(sealed), &f.ctx()).unwrap_err().err_code, 10052);
        let r3 = StreamConfig { num_replicas: 3, ..named("A") };
        assert_eq!(check_create("A", &req(r3), &f.ctx()).unwrap_err().err_code, 10074);
        let created = f.create(named("A")).unwrap();
        assert_eq!(
            created.metadata.get(metadata::REQUIRED_LEVEL_KEY).map(String::as_str),
            Some("0")
        );
        // Same config again: the existing stream.
        match check_create("A", &req(named("A")), &f.ctx()).unwrap() {
            CreateOutcome::Exists(c) => assert_eq!(c, created),
            other => panic!("{other:?}"),
        }
        let other = StreamConfig { subjects: vec!["x".into()], ..named("A") };
        assert_eq!(check_create("A", &req(other), &f.ctx()).unwrap_err().err_code, 10058);
        let overlapping = StreamConfig { subjects: vec!["*".into()], ..named("B") };
        assert_eq!(check_create("B", &req(overlapping), &f.ctx()).unwrap_err().err_code, 10065);
    }

    #[test]
    fn choiros_inbox_overlaps_agent_events_in_either_order() {
        let events =
            StreamConfig { subjects: vec!["choiros.agent.>".into()], ..named("AGENT_EVENTS") };
        let inbox = StreamConfig {
            subjects: vec!["choiros.agent.*.inbox".into()],
            retention: RetentionPolicy::WorkQueue,
            ..named("AGENT_INBOX")
        };
        for (first, second) in [(&events, &inbox), (&inbox, &events)] {
            let mut f = Fixture::new();
            f.create(first.clone()).unwrap();
            assert_eq!(code(f.create(second.clone())).0, 10065);
        }
    }

    #[test]
    fn account_limits() {
        let mut f = Fixture::new();
        f.account = untiered(AccountLimits {
            max_memory: 1 << 20,
            max_storage: 10 << 20,
            max_streams: 2,
            max_consumers: 5,
            max_bytes_required: true,
            storage_max_stream_bytes: 8 << 20,
            ..AccountLimits::UNLIMITED
        });
        assert_eq!(code(f.create(named("L1"))).0, 10113);
        assert_eq!(code(f.create(StreamConfig { max_bytes: 9 << 20, ..named("L1") })).0, 10122);
        let mem = StreamConfig { max_bytes: 2 << 20, storage: StorageType::Memory, ..named("L1") };
        assert_eq!(code(f.create(mem)).0, 10028);
        let cons = StreamConfig { max_bytes: 1024, max_consumers: 10, ..named("L1") };
        assert_eq!(code(f.create(cons)).0, 10026);
        f.create(StreamConfig { max_bytes: 8 << 20, ..named("L1") }).unwrap();
        assert_eq!(code(f.create(StreamConfig { max_bytes: 3 << 20, ..named("L2") })).0, 10047);
        f.create(StreamConfig { max_bytes: 1 << 20, ..named("L2") }).unwrap();
        assert_eq!(code(f.create(StreamConfig { max_bytes: 1, ..named("L3") })).0, 10027);
        // Growing L2 past the account's storage fails; shrinking is fine.
        let grow = StreamConfigRequest {
            config: StreamConfig { max_bytes: 3 << 20, ..named("L2") },
            pedantic: false,
        };
        assert_eq!(check_update("L2", &grow, &f.ctx(), &[]).unwrap_err().err_code, 10047);
        let shrink = StreamConfigRequest {
            config: StreamConfig { max_bytes: 1 << 19, ..named("L2") },
            pedantic: false,
        };
        assert_eq!(check_update("L2", &shrink, &f.ctx(), &[]).unwrap().max_bytes, 1 << 19);
        // No applicable tier at all.
        f.account = BTreeMap::from([("R3".to_string(), AccountLimits::UNLIMITED)]);
        assert_eq!(code(f.create(named("L9"))).0, 10120);
    }

    #[test]
    fn update_rules() {
        let mut f = Fixture::new();
        let base = StreamConfig {
            subjects: vec!["u.>".into()],
            allow_msg_ttl: true,
            deny_delete: true,
            ..named("U")
        };
        f.create(base.clone()).unwrap();
        f.create(StreamConfig { subjects: vec!["w".into()], ..named("O") }).unwrap();
        let up = |cfg: StreamConfig| StreamConfigRequest { config: cfg, pedantic: false };
        let err = |f: &Fixture, cfg: StreamConfig| {
            let e = check_update("U", &up(cfg), &f.ctx(), &[]).unwrap_err();
            (e.err_code, e.description)
        };
        assert_eq!(
            err(&f, StreamConfig { storage: StorageType::Memory, ..base.clone() }).1,
            "stream configuration update can not change storage type"
        );
        assert_eq!(
            err(&f, StreamConfig { retention: RetentionPolicy::WorkQueue, ..base.clone() }).1,
            "stream configuration update can not change retention policy to/from workqueue"
        );
        assert_eq!(
            err(&f, StreamConfig { deny_delete: false, ..base.clone() }).1,
            "stream configuration update can not cancel deny message deletes"
        );
        assert_eq!(
            err(&f, StreamConfig { allow_msg_ttl: false, ..base.clone() }).1,
            "message TTL status can not be disabled"
        );
        assert_eq!(err(&f, StreamConfig { num_replicas: 3, ..base.clone() }).0, 10074);
        assert_eq!(
            err(&f, StreamConfig { subjects: vec!["u.>".into(), "w".into()], ..base.clone() }).0,
            10065
        );
        let missing = check_update("NOPE", &up(named("NOPE")), &f.ctx(), &[]).unwrap_err();
        assert_eq!(missing.err_code, 10059);
        let mismatch = check_update("O", &up(base.clone()), &f.ctx(), &[]).unwrap_err();
        assert_eq!(mismatch.err_code, 10056);
        let ok = check_update(
            "U",
            &up(StreamConfig { retention: RetentionPolicy::Interest, ..base.clone() }),
            &f.ctx(),
            &[],
        )
        .unwrap();
        assert_eq!(ok.retention, RetentionPolicy::Interest);
        // Sealing rewrites the limits it makes meaningless.
        let sealed = check_update(
            "U",
            &up(StreamConfig {
                sealed: true,
                deny_purge: true,
                max_age: 3_600_000_000_000,
                ..base.clone()
            }),
            &f.ctx(),
            &[],
        )
        .unwrap();
        assert_eq!((sealed.max_age, sealed.discard), (0, DiscardPolicy::New));
        assert!(sealed.deny_delete && sealed.deny_purge && !sealed.allow_rollup);
        f.streams[0] = sealed.clone();
        assert_eq!(
            err(&f, StreamConfig { deny_purge: true, ..base.clone() }).1,
            "stream configuration update can not unseal a sealed stream"
        );
        // Consumer limits that existing consumers exceed.
        let limited = StreamConfig {
            consumer_limits: crate::stream::config::ConsumerLimits {
                inactive_threshold: 0,
                max_ack_pending: 10,
            },
            ..sealed
        };
        let consumers = [
            ConsumerLimitsView { name: "c1".into(), inactive_threshold: 0, max_ack_pending: 100 },
            ConsumerLimitsView { name: "c2".into(), inactive_threshold: 0, max_ack_pending: 5 },
        ];
        let e = check_update("U", &up(limited), &f.ctx(), &consumers).unwrap_err();
        assert_eq!(
            (e.err_code, e.description.as_str()),
            (10069, "change to limits violates consumers: c1")
        );
    }
}
