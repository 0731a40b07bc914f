//! Subscribing and unsubscribing: the one way a subscription enters or leaves an account, so
//! that what follows from it always follows.
//!
//! A subscription of a connection on this server (a client's; not a route's, not the
//! server's own internal ones) changes three things:
//! - the account's sublist (who gets messages here);
//! - the stream-import shadows in the exporting accounts (who gets their messages);
//! - the account's local interest, counted per (subject, queue): the first subscription on a
//!   subject tells every route `RS+`, the last one leaving `RS-`, and a queue group's member
//!   count travels as its weight (`RS+ acc subj queue weight` again whenever it changes), as
//!   nats-server keeps its routes' view of this server.
//!
//! The counts and the route lines are updated under the account's interest lock, so each
//! route sees the changes of one (subject, queue) in the order they happened, and a route
//! being set up gets a snapshot with nothing missed (see `route`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::account::{Account, Shadow};
use crate::conn::Kind;
use crate::server::ServerInner;
use crate::sub::{SubRef, Subscription};

/// Why a subscription was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubscribeError {
    InvalidSubject,
}

/// Adds a subscription to `acc`: sublist, shadows and local interest.
pub(crate) fn subscribe(
    srv: &ServerInner,
    acc: &Arc<Account>,
    sub: &Arc<Subscription>,
) -> Result<(), SubscribeError> {
    acc.sublist
        .insert(&sub.subject, sub.queue.as_deref(), SubRef(sub.clone()))
        .map_err(|_| SubscribeError::InvalidSubject)?;
    if propagates(sub) {
        add_interest(srv, acc, &sub.subject, sub.queue.as_ref());
    }
    if acc.has_stream_imports() {
        add_shadows(srv, acc, sub);
    }
    Ok(())
}

/// Removes a subscription from its account (`home`), and its shadows from the exporters.
/// Any connection's task may call it (auto-unsubscribe by delivery count); a subscription is
/// removed once.
pub(crate) fn unsubscribe(srv: &ServerInner, home: &Account, sub: &Arc<Subscription>) {
    if !sub.removed.swap(true, Ordering::AcqRel) {
        let _ = home.sublist.remove(&sub.subject, sub.queue.as_deref(), &SubRef(sub.clone()));
        if propagates(sub) {
            remove_interest(srv, home, &sub.subject, sub.queue.as_ref());
        }
    }
    remove_shadows(srv, sub);
}

/// Removes many subscriptions of one account at once (a connection closing).
pub(crate) fn unsubscribe_all(srv: &ServerInner, home: &Account, subs: Vec<Arc<Subscription>>) {
    let subs: Vec<_> =
        subs.into_iter().filter(|s| !s.removed.swap(true, Ordering::AcqRel)).collect();
    home.sublist
        .remove_batch(subs.iter().map(|s| (s.subject.clone(), s.queue.clone(), SubRef(s.clone()))));
    for s in &subs {
        if propagates(s) {
            remove_interest(srv, home, &s.subject, s.queue.as_ref());
        }
        remove_shadows(srv, s);
    }
}

/// Moves a connection's subscriptions from one account to another (CONNECT binding the
/// client to its user's account after it subscribed).
pub(crate) fn rebind(
    srv: &ServerInner,
    old: &Account,
    new: &Arc<Account>,
    subs: &[Arc<Subscription>],
) {
    for sub in subs {
        unsubscribe(srv, old, sub);
        sub.removed.store(false, Ordering::Release);
        let _ = subscribe(srv, new, sub);
    }
}

/// Whether other servers hear of this subscription: clients' do; routes' are the peers' own
/// interest, and the server's internal subscribers serve this server only.
fn propagates(sub: &Subscription) -> bool {
    sub.client.kind == Kind::Client
}

/// One more local subscription on (`subject`, `queue`) in `acc`.
pub(crate) fn add_interest(
    srv: &ServerInner,
    acc: &Account,
    subject: &Bytes,
    queue: Option<&Bytes>,
) {
    let mut map = acc.interest.lock().unwrap();
    let n = map.entry((subject.clone(), queue.cloned())).or_insert(0);
    *n += 1;
    // Plain interest is news only the first time; a queue group's weight every time.
    if *n == 1 || queue.is_some() {
        srv.routes.send_interest(&acc.name, subject, queue.map(|q| &q[..]), *n);
    }
}

/// One local subscription fewer on (`subject`, `queue`) in `acc`.
pub(crate) fn remove_interest(
    srv: &ServerInner,
    acc: &Account,
    subject: &Bytes,
    queue: Option<&Bytes>,
) {
    let mut map = acc.interest.lock().unwrap();
    let key = (subject.clone(), queue.cloned());
    let Some(n) = map.get_mut(&key) else { return };
    *n -= 1;
    let left = *n;
    if left == 0 {
        map.remove(&key);
    }
    if left == 0 || queue.is_some() {
        srv.routes.send_interest(&acc.name, subject, queue.map(|q| &q[..]), left);
    }
}

fn remove_shadows(srv: &ServerInner, sub: &Arc<Subscription>) {
    let key = Arc::as_ptr(sub) as usize;
    let shadows = {
        let mut m = sub.client.shadows.lock().unwrap();
        if m.is_empty() {
            return;
        }
        m.remove(&key)
    };
    for sh in shadows.into_iter().flatten() {
        drop_shadow(srv, &sh);
    }
}

/// Takes a shadow out of its exporter's list, with the interest it gave the exporter.
fn drop_shadow(srv: &ServerInner, sh: &Arc<Shadow>) {
    sh.import.acc.remove_shadow(sh);
    remove_interest(srv, &sh.import.acc, &sh.subject, sh.root.queue.as_ref());
}

/// Shadows of a subscription of `acc` in the accounts `acc` imports streams from. The
/// exporter gains interest in the shadow's subject, so its messages published on other
/// servers come here too.
fn add_shadows(srv: &ServerInner, acc: &Account, sub: &Arc<Subscription>) {
    let Ok(subj) = std::str::from_utf8(&sub.subject) else { return };
    let targets = acc.shadow_targets(subj);
    if targets.is_empty() {
        return;
    }
    let mut made = Vec::with_capacity(targets.len());
    for (import, subject) in targets {
        let sh = Arc::new(Shadow { root: sub.clone(), import, subject: Bytes::from(subject) });
        if sh.import.acc.insert_shadow(&sh) {
            tracing::debug!(
                "cid:{} - Creating import subscription on {:?} from account {:?}",
                sub.client.cid,
                String::from_utf8_lossy(&sh.subject),
                sh.import.acc.name
            );
            add_interest(srv, &sh.import.acc, &sh.subject, sh.root.queue.as_ref());
            made.push(sh);
        }
    }
    let replaced = sub.client.shadows.lock().unwrap().insert(Arc::as_ptr(sub) as usize, made);
    for sh in replaced.into_iter().flatten() {
        drop_shadow(srv, &sh);
    }
    // Unsubscribed meanwhile by its owner: do not leave the new shadows behind.
    if sub.removed.load(Ordering::Acquire) {
        remove_shadows(srv, sub);
    }
}

/// Rebuilds the stream-import shadows of every subscription in `acc` after its imports
/// changed (reload, account JWT update), as nats-server re-processes subscriptions.
pub(crate) fn refresh_shadows(srv: &ServerInner, acc: &Account) {
    for s in acc.sublist.all() {
        let sub = s.0;
        if sub.client.kind != Kind::Client {
            continue;
        }
        remove_shadows(srv, &sub);
        if acc.has_stream_imports() && !sub.removed.load(Ordering::Acquire) {
            add_shadows(srv, acc, &sub);
        }
    }
}

/// Interest in what this server answers without a subscription, so the requests of clients
/// on other servers reach it: the system account's claims requests.
pub(crate) fn advertise_system(srv: &ServerInner) {
    let Some(sys) = srv.all_accounts().into_iter().find(|a| a.is_system()) else { return };
    for subject in [
        "$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE",
        "$SYS.ACCOUNT.*.CLAIMS.UPDATE",
        "$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP",
        "$SYS.REQ.CLAIMS.UPDATE",
        "$SYS.REQ.CLAIMS.DELETE",
    ] {
        add_interest(srv, &sys, &Bytes::from_static(subject.as_bytes()), None);
    }
}

/// Interest in `acc`'s response subjects (`_R_.xxxxxx.>`), once it first sends a request
/// through a service import: the responder may answer from another server (nats-server
/// subscribes the same wildcard).
pub(crate) fn advertise_responses(srv: &ServerInner, acc: &Account) {
    if acc.responses_advertised.swap(true, Ordering::AcqRel) {
        return;
    }
    let subject = Bytes::from(format!("{}>", acc.response_prefix()));
    add_interest(srv, acc, &subject, None);
}
