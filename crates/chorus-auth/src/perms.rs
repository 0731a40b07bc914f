//! Subject permissions: publish and subscribe allow/deny lists, compiled into sublists.
//!
//! Semantics follow nats-server (`client.go` canSubscribe / pubAllowed):
//! - no allow list means everything is allowed; a deny match always wins;
//! - a subscribe entry may carry a queue group (`"orders.* workers"`), which then only allows
//!   (or denies) subscriptions in a matching queue group;
//! - a wildcard subscription that overlaps a denied subject is accepted, but messages on denied
//!   subjects are filtered at delivery ([`Permissions::deny_delivery`]);
//! - `allow_responses` lets a client publish to the reply subjects of requests it received,
//!   even when its publish allow list does not cover them.

use std::time::Duration;

use chorus_conf::{Permissions as PermOptions, SubjectPermission};
use chorus_sublist::{Sublist, SublistResult};

/// One compiled allow or deny list.
#[derive(Debug)]
struct Rules {
    list: Sublist<u32>,
}

impl Rules {
    fn compile(entries: &[String]) -> Result<Option<Rules>, PermError> {
        if entries.is_empty() {
            return Ok(None);
        }
        let list = Sublist::new();
        for (i, e) in entries.iter().enumerate() {
            let mut parts = e.split_whitespace();
            let subject = parts.next().unwrap_or_default();
            let queue = parts.next();
            list.insert(subject.as_bytes(), queue.map(str::as_bytes), i as u32)
                .map_err(|_| PermError::InvalidSubject(e.clone()))?;
        }
        Ok(Some(Rules { list }))
    }

    fn matches(&self, subject: &[u8]) -> std::sync::Arc<SublistResult<u32>> {
        self.list.match_subject(subject)
    }
}

/// Whether `queue` matches one of the queue patterns in a match result.
fn queue_matches(queue: &[u8], r: &SublistResult<u32>) -> bool {
    r.queue_groups().any(|(pattern, _)| literal_match(queue, pattern))
}

/// nats-server's `matchLiteral`: `*` and `>` tokens in the pattern match as wildcards.
fn literal_match(literal: &[u8], pattern: &[u8]) -> bool {
    let mut lit = literal.split(|&b| b == b'.');
    let mut pat = pattern.split(|&b| b == b'.');
    loop {
        match (lit.next(), pat.next()) {
            (_, Some(b">")) => return true,
            (Some(_), Some(b"*")) => {}
            (Some(l), Some(p)) if l == p => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermError {
    #[error("invalid permission subject {0:?}")]
    InvalidSubject(String),
}

/// Response permissions: how many replies and for how long after receiving a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsePerm {
    /// 0 = one reply (nats-server's default of 1 when unset).
    pub max: usize,
    pub expires: Duration,
}

/// A user's compiled permissions.
#[derive(Debug, Default)]
pub struct Permissions {
    pub_allow: Option<Rules>,
    pub_deny: Option<Rules>,
    sub_allow: Option<Rules>,
    sub_deny: Option<Rules>,
    responses: Option<ResponsePerm>,
    /// With `allow_responses` and no publish allow list, the client may publish *only*
    /// replies (nats-server: an empty allow list is created in that case).
    replies_only: bool,
}

impl Permissions {
    pub fn compile(opts: &PermOptions) -> Result<Permissions, PermError> {
        let (pub_allow, pub_deny) = compile_pair(opts.publish.as_ref())?;
        let (sub_allow, sub_deny) = compile_pair(opts.subscribe.as_ref())?;
        let responses = opts
            .allow_responses
            .as_ref()
            .map(|r| ResponsePerm { max: if r.max == 0 { 1 } else { r.max }, expires: r.expires });
        let replies_only = responses.is_some() && pub_allow.is_none();
        Ok(Permissions { pub_allow, pub_deny, sub_allow, sub_deny, responses, replies_only })
    }

    /// Publish check against the allow and deny lists (replies are checked by the caller
    /// against the client's outstanding requests, see [`Permissions::responses`]).
    pub fn can_publish(&self, subject: &[u8]) -> bool {
        let allowed = if self.replies_only {
            false
        } else {
            self.pub_allow.as_ref().is_none_or(|a| !a.matches(subject).psubs.is_empty())
        };
        allowed && !self.publish_denied(subject)
    }

    /// True when the deny list forbids `subject` (deny also wins over reply permissions).
    pub fn publish_denied(&self, subject: &[u8]) -> bool {
        self.pub_deny.as_ref().is_some_and(|d| !d.matches(subject).psubs.is_empty())
    }

    /// Subscribe check for `subject` (may contain wildcards) and an optional queue group.
    pub fn can_subscribe(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let mut allowed = true;
        if let Some(a) = &self.sub_allow {
            let r = a.matches(subject);
            allowed = !r.psubs.is_empty();
            if let Some(q) = queue
                && !r.qsubs.is_empty()
            {
                allowed = queue_matches(q, &r);
            }
        }
        if allowed && let Some(d) = &self.sub_deny {
            let r = d.matches(subject);
            allowed = r.psubs.is_empty();
            if allowed && let Some(q) = queue {
                allowed = !queue_matches(q, &r);
            }
        }
        allowed
    }

    /// Whether a message on `subject` must not be delivered to a subscription (in `queue`)
    /// of this client: the subscription was allowed because it is wider than a denied subject.
    pub fn deny_delivery(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let Some(d) = &self.sub_deny else { return false };
        let r = d.matches(subject);
        !r.psubs.is_empty() || queue.is_some_and(|q| queue_matches(q, &r))
    }

    pub fn has_sub_deny(&self) -> bool {
        self.sub_deny.is_some()
    }

    pub fn responses(&self) -> Option<ResponsePerm> {
        self.responses
    }
}

fn compile_pair(
    p: Option<&SubjectPermission>,
) -> Result<(Option<Rules>, Option<Rules>), PermError> {
    match p {
        None => Ok((None, None)),
        Some(p) => Ok((Rules::compile(&p.allow)?, Rules::compile(&p.deny)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_conf::ResponsePermission;

    fn sp(allow: &[&str], deny: &[&str]) -> Option<SubjectPermission> {
        Some(SubjectPermission {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn perms(
        publish: Option<SubjectPermission>,
        subscribe: Option<SubjectPermission>,
    ) -> Permissions {
        Permissions::compile(&PermOptions { publish, subscribe, allow_responses: None }).unwrap()
    }

    #[test]
    fn publish_allow_and_deny() {
        let p =
            perms(sp(&["choiros.user.alice.>", "public.*"], &["choiros.user.alice.secret"]), None);
        assert!(p.can_publish(b"choiros.user.alice.action.COMMAND"));
        assert!(p.can_publish(b"public.news"));
        assert!(!p.can_publish(b"choiros.user.bob.action.COMMAND"));
        assert!(!p.can_publish(b"choiros.user.alice.secret"), "deny wins");
        assert!(!p.can_publish(b"public.news.deep"));
        let open = perms(None, None);
        assert!(open.can_publish(b"anything.at.all"));
        let deny_only = perms(sp(&[], &["admin.>"]), None);
        assert!(deny_only.can_publish(b"x") && !deny_only.can_publish(b"admin.reboot"));
    }

    #[test]
    fn subscribe_with_wildcards_and_queues() {
        let p = perms(
            None,
            sp(&["choiros.user.alice.>", "jobs.* workers"], &["choiros.user.alice.private"]),
        );
        assert!(p.can_subscribe(b"choiros.user.alice.>", None));
        assert!(p.can_subscribe(b"choiros.user.alice.file.*", None));
        assert!(!p.can_subscribe(b"choiros.user.>", None), "wider than allowed");
        assert!(!p.can_subscribe(b"choiros.user.bob.>", None));
        assert!(!p.can_subscribe(b"choiros.user.alice.private", None));
        assert!(p.can_subscribe(b"jobs.new", Some(b"workers")));
        assert!(!p.can_subscribe(b"jobs.new", Some(b"thieves")), "queue must match the entry");
        // The wide subscription is allowed, but the denied subject is filtered at delivery.
        assert!(p.deny_delivery(b"choiros.user.alice.private", None));
        assert!(!p.deny_delivery(b"choiros.user.alice.file.x", None));
    }

    #[test]
    fn queue_deny() {
        let p = perms(None, sp(&[], &["orders.* spies"]));
        assert!(p.can_subscribe(b"orders.new", Some(b"workers")));
        assert!(!p.can_subscribe(b"orders.new", Some(b"spies")));
        assert!(p.can_subscribe(b"orders.new", None));
    }

    #[test]
    fn allow_responses_alone_means_replies_only() {
        let p = Permissions::compile(&PermOptions {
            publish: None,
            subscribe: None,
            allow_responses: Some(ResponsePermission { max: 0, expires: Duration::from_secs(1) }),
        })
        .unwrap();
        assert!(!p.can_publish(b"anything"));
        assert_eq!(p.responses().unwrap().max, 1);
    }

    #[test]
    fn literal_match_rules() {
        assert!(literal_match(b"a.b", b"a.*"));
        assert!(literal_match(b"a.b.c", b"a.>"));
        assert!(!literal_match(b"a", b"a.*"));
        assert!(literal_match(b"workers", b"workers"));
        assert!(!literal_match(b"workers", b"thieves"));
    }

    #[test]
    fn invalid_entries_are_errors() {
        let e = Permissions::compile(&PermOptions {
            publish: sp(&["bad..subject"], &[]),
            subscribe: None,
            allow_responses: None,
        });
        assert!(e.is_err());
    }
}
