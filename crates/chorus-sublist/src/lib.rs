//! Subscription routing: which subscribers want a message published on a subject.
//!
//! [`Sublist`] is a trie of subject tokens, the structure nats-server calls a sublist
//! (`server/sublist.go`), generic over the subscriber handle `T` the server stores (typically a
//! cheap, clonable reference to a subscription). It supports the two NATS wildcards, `*` (one
//! token) and `>` (one or more trailing tokens), queue groups, and a shared cache of match
//! results.
//!
//! # Layout
//!
//! Each trie node owns its literal children in a hash map keyed by token, plus two dedicated
//! slots for a `*` child and a `>` child, so matching never has to scan siblings. Subscribers
//! sit on the node of their subject's last token, plain ones in `psubs`, queue subscribers in
//! one group per queue name. The sketch shows `foo.bar`, `foo.*`, `foo.>`, `*.bar` and
//! `foo.bar` in queue group `q`:
//!
//! ```text
//!                          root
//!            children{"foo"}      pwc
//!                  |               |
//!                [foo]            [*]
//!  children{"bar"}  pwc   fwc      children{"bar"}
//!        |           |     |           |
//!      [bar]        [*]   [>]        [bar]
//!   psubs: s1     psubs: psubs:     psubs: s4
//!   queue q: s5     s2     s3
//! ```
//!
//! Matching the literal `foo.bar` walks one token at a time: at each node it takes the `>`
//! child's subscribers (it covers the rest), recurses into the `*` child with the remaining
//! tokens, and follows the literal child. Here it yields s1, s2, s3, s4 and group `q` with
//! s5. Removing a node's last subscriber prunes every node left empty on the way back to the
//! root, and shrinks child maps that emptied out, so churn of unique subjects (request
//! inboxes) does not leave memory behind.
//!
//! # Cache and generation
//!
//! Match results are shared [`Arc<SublistResult>`] values kept in a bounded cache keyed by the
//! published subject (at most 1024 entries; when that is exceeded it is swept down to about
//! 256, as in nats-server). Every insert and remove keeps the cache exact while holding the
//! trie's write lock: inserting adds the subscriber to the cached results it matches,
//! removing drops the cached results it was part of, [`Sublist::remove_batch`] clears the
//! cache. A cached result is therefore never stale.
//!
//! Every mutation also bumps [`Sublist::generation`]. Connections keep their own small cache
//! of results and trust an entry only while the generation is unchanged;
//! [`Sublist::match_with_generation`] returns a result together with the generation it is
//! valid for.
//!
//! # Change hook
//!
//! [`Sublist::set_change_hook`] installs a callback that runs after every successful insert
//! or remove with the subscription's subject, outside the locks. The JetStream runtime uses it
//! the way nats-server uses `registerNotification`: a push consumer learns when its deliver
//! subject gains or loses a subscriber without polling.
//!
//! Locking: the trie is behind an `RwLock` (matches share it, mutations are exclusive); the
//! cache has its own `RwLock`, so a cache hit never touches the trie lock. Lock order is
//! always trie, then cache.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chorus_proto::subject::{FWC, PWC, TSEP, is_valid_queue_name, is_valid_subject};
use rustc_hash::FxHashMap;

/// Most cached results kept; past this the cache is swept.
pub const CACHE_MAX: usize = 1024;
/// Number of cached results a sweep leaves, roughly (entries are dropped at random).
pub const CACHE_SWEEP_TO: usize = 256;

/// Errors from [`Sublist`] mutations. The texts are nats-server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SublistError {
    #[error("sublist: invalid subject")]
    InvalidSubject,
    #[error("sublist: invalid queue name")]
    InvalidQueue,
    #[error("sublist: no matches found")]
    NotFound,
}

/// The subscribers matching one published subject.
///
/// `psubs` are plain subscribers, each of which gets the message. `qsubs` holds one vector per
/// queue group (one member of each gets the message); [`SublistResult::queue_name`] names
/// them. A subscriber inserted twice appears twice.
#[derive(Debug, Clone)]
pub struct SublistResult<T> {
    pub psubs: Vec<T>,
    pub qsubs: Vec<Vec<T>>,
    qnames: Vec<Arc<[u8]>>,
}

impl<T> Default for SublistResult<T> {
    fn default() -> Self {
        Self { psubs: Vec::new(), qsubs: Vec::new(), qnames: Vec::new() }
    }
}

impl<T> SublistResult<T> {
    /// No subscriber at all.
    pub fn is_empty(&self) -> bool {
        self.psubs.is_empty() && self.qsubs.is_empty()
    }

    /// Name of the queue group whose members are `qsubs[i]`.
    pub fn queue_name(&self, i: usize) -> &[u8] {
        &self.qnames[i]
    }

    /// `(queue name, members)` for every queue group.
    pub fn queue_groups(&self) -> impl Iterator<Item = (&[u8], &[T])> {
        self.qnames.iter().map(|n| &n[..]).zip(self.qsubs.iter().map(Vec::as_slice))
    }

    /// Deliveries a message causes: each plain subscriber plus one per queue group (what
    /// nats-server counts as fan-out).
    pub fn fanout(&self) -> usize {
        self.psubs.len() + self.qsubs.len()
    }

    fn group_slot(&mut self, name: &Arc<[u8]>) -> usize {
        // Few groups per subject in practice, and a linear scan keeps results compact.
        match self.qnames.iter().position(|n| **n == **name) {
            Some(i) => i,
            None => {
                self.qnames.push(Arc::clone(name));
                self.qsubs.push(Vec::new());
                self.qsubs.len() - 1
            }
        }
    }
}

impl<T: Clone> SublistResult<T> {
    fn add_node(&mut self, node: &Node<T>) {
        self.psubs.extend_from_slice(&node.psubs);
        for g in &node.qsubs {
            let i = self.group_slot(&g.name);
            self.qsubs[i].extend_from_slice(&g.subs);
        }
    }

    fn add_sub(&mut self, queue: Option<&Arc<[u8]>>, item: &T) {
        match queue {
            None => self.psubs.push(item.clone()),
            Some(name) => {
                let i = self.group_slot(name);
                self.qsubs[i].push(item.clone());
            }
        }
    }
}

/// Counters as nats-server reports them under `/subsz` (JSON names in the field docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SublistStats {
    /// `num_subscriptions`
    pub num_subs: u32,
    /// `num_cache`: cached results.
    pub num_cache: u32,
    /// `num_inserts`
    pub num_inserts: u64,
    /// `num_removes`
    pub num_removes: u64,
    /// `num_matches`: calls to match, cache hits included.
    pub num_matches: u64,
    /// `cache_hit_rate`: hits / matches.
    pub cache_hit_rate: f64,
    /// `max_fanout`: largest fan-out among cached results.
    pub max_fanout: u32,
    /// `avg_fanout`: mean fan-out of cached results.
    pub avg_fanout: f64,
    tot_fanout: u64,
    cache_cnt: u64,
    cache_hits: u64,
}

impl SublistStats {
    /// Folds another sublist's stats in (one per account, summed for `/subsz`), recomputing
    /// the rates from the underlying totals as nats-server does.
    pub fn add(&mut self, other: &SublistStats) {
        self.num_subs = self.num_subs.saturating_add(other.num_subs);
        self.num_cache = self.num_cache.saturating_add(other.num_cache);
        self.num_inserts += other.num_inserts;
        self.num_removes += other.num_removes;
        self.num_matches += other.num_matches;
        self.cache_hits += other.cache_hits;
        self.max_fanout = self.max_fanout.max(other.max_fanout);
        self.tot_fanout += other.tot_fanout;
        self.cache_cnt += other.cache_cnt;
        if self.tot_fanout > 0 {
            self.avg_fanout = self.tot_fanout as f64 / self.cache_cnt as f64;
        }
        if self.num_matches > 0 {
            self.cache_hit_rate = self.cache_hits as f64 / self.num_matches as f64;
        }
    }
}

struct QueueGroup<T> {
    // Shared with every result that contains the group, so results clone cheaply.
    name: Arc<[u8]>,
    subs: Vec<T>,
}

struct Node<T> {
    children: FxHashMap<Box<[u8]>, Node<T>>,
    pwc: Option<Box<Node<T>>>,
    fwc: Option<Box<Node<T>>>,
    psubs: Vec<T>,
    qsubs: Vec<QueueGroup<T>>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Self {
            children: FxHashMap::default(),
            pwc: None,
            fwc: None,
            psubs: Vec::new(),
            qsubs: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    Literal,
    Pwc,
    Fwc,
}

#[inline]
fn token_kind(tok: &[u8]) -> TokenKind {
    match tok {
        [PWC] => TokenKind::Pwc,
        [FWC] => TokenKind::Fwc,
        _ => TokenKind::Literal,
    }
}

/// First token and what follows its separator (`None` when it was the last token).
#[inline]
fn split_token(subject: &[u8]) -> (&[u8], Option<&[u8]>) {
    match subject.iter().position(|&b| b == TSEP) {
        Some(i) => (&subject[..i], Some(&subject[i + 1..])),
        None => (subject, None),
    }
}

/// Non-empty with no empty token: the only shape a published subject needs for matching.
#[inline]
fn has_no_empty_token(subject: &[u8]) -> bool {
    !subject.is_empty()
        && subject[0] != TSEP
        && subject[subject.len() - 1] != TSEP
        && !subject.windows(2).any(|w| w == [TSEP, TSEP])
}

/// Whether the subscription pattern `pattern` matches the published subject `subject` with the
/// trie's semantics: wildcard tokens in `subject` are plain tokens that only wildcards match.
/// Used to keep cached results exact.
fn pattern_matches(pattern: &[u8], subject: &[u8]) -> bool {
    let mut p = chorus_proto::subject::tokens(pattern);
    let mut s = chorus_proto::subject::tokens(subject);
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some(pt), Some(st)) => match token_kind(pt) {
                TokenKind::Fwc => return true,
                TokenKind::Pwc => {}
                TokenKind::Literal if pt == st => {}
                TokenKind::Literal => return false,
            },
            _ => return false,
        }
    }
}

/// Gives back spare capacity once a collection has emptied out to a quarter, so a burst of
/// unique subjects does not pin memory; the factor keeps it amortised O(1).
fn shrink_map<K: std::hash::Hash + Eq, V>(map: &mut FxHashMap<K, V>) {
    if map.capacity() > 16 && map.len() * 4 < map.capacity() {
        map.shrink_to(map.len() * 2);
    }
}

fn shrink_vec<V>(v: &mut Vec<V>) {
    if v.capacity() > 16 && v.len() * 4 < v.capacity() {
        v.shrink_to(v.len() * 2);
    }
}

impl<T> Node<T> {
    fn has_subs(&self) -> bool {
        !self.psubs.is_empty() || !self.qsubs.is_empty()
    }

    fn is_empty(&self) -> bool {
        !self.has_subs() && self.children.is_empty() && self.pwc.is_none() && self.fwc.is_none()
    }

    /// The node for `subject` (valid), created along the way as needed.
    fn descend_or_create(&mut self, subject: &[u8]) -> &mut Node<T> {
        let mut node = self;
        for tok in chorus_proto::subject::tokens(subject) {
            node = match token_kind(tok) {
                TokenKind::Pwc => node.pwc.get_or_insert_with(Box::default),
                TokenKind::Fwc => node.fwc.get_or_insert_with(Box::default),
                TokenKind::Literal => {
                    // Two lookups on the insert path beat allocating a key for `entry()`
                    // every time the child already exists.
                    if !node.children.contains_key(tok) {
                        node.children.insert(tok.into(), Node::default());
                    }
                    node.children.get_mut(tok).expect("child just ensured")
                }
            };
        }
        node
    }

    /// Index of the group named `queue`, created if missing.
    fn queue_group(&mut self, queue: &[u8]) -> usize {
        match self.qsubs.iter().position(|g| *g.name == *queue) {
            Some(i) => i,
            None => {
                self.qsubs.push(QueueGroup { name: queue.into(), subs: Vec::new() });
                self.qsubs.len() - 1
            }
        }
    }

    fn for_each_sub(&self, f: &mut impl FnMut(&T)) {
        self.psubs.iter().for_each(&mut *f);
        self.qsubs.iter().flat_map(|g| &g.subs).for_each(&mut *f);
    }

    #[cfg(test)]
    fn node_count(&self) -> usize {
        1 + self.children.values().map(Node::node_count).sum::<usize>()
            + self.pwc.as_ref().map_or(0, |n| n.node_count())
            + self.fwc.as_ref().map_or(0, |n| n.node_count())
    }
}

impl<T: Clone> Node<T> {
    /// Adds every subscriber matching the published `subject` (no empty token) to `out`.
    /// Follows literal children in a loop and recurses only into `*` children, so the stack
    /// depth is bounded by the number of `*` levels walked.
    fn collect(&self, mut subject: &[u8], out: &mut SublistResult<T>) {
        let mut node = self;
        loop {
            let (tok, rest) = split_token(subject);
            if let Some(f) = &node.fwc {
                out.add_node(f);
            }
            if let Some(p) = &node.pwc {
                match rest {
                    None => out.add_node(p),
                    Some(r) => p.collect(r, out),
                }
            }
            match node.children.get(tok) {
                None => return,
                Some(c) => match rest {
                    None => {
                        out.add_node(c);
                        return;
                    }
                    Some(r) => {
                        node = c;
                        subject = r;
                    }
                },
            }
        }
    }

    /// Like [`Node::collect`] but stops at the first subscriber.
    fn any(&self, mut subject: &[u8]) -> bool {
        let mut node = self;
        loop {
            let (tok, rest) = split_token(subject);
            if node.fwc.as_ref().is_some_and(|f| f.has_subs()) {
                return true;
            }
            if let Some(p) = &node.pwc {
                let hit = match rest {
                    None => p.has_subs(),
                    Some(r) => p.any(r),
                };
                if hit {
                    return true;
                }
            }
            match node.children.get(tok) {
                None => return false,
                Some(c) => match rest {
                    None => return c.has_subs(),
                    Some(r) => {
                        node = c;
                        subject = r;
                    }
                },
            }
        }
    }
}

impl<T: PartialEq> Node<T> {
    /// Removes one occurrence of `item` from the node for `subject` (valid), then prunes the
    /// children this left empty. Recursion depth is the subject's token count.
    fn remove(
        &mut self,
        subject: &[u8],
        queue: Option<&[u8]>,
        item: &T,
    ) -> Result<(), SublistError> {
        let (tok, rest) = split_token(subject);
        let kind = token_kind(tok);
        let child = match kind {
            TokenKind::Pwc => self.pwc.as_deref_mut(),
            TokenKind::Fwc => self.fwc.as_deref_mut(),
            TokenKind::Literal => self.children.get_mut(tok),
        }
        .ok_or(SublistError::NotFound)?;
        match rest {
            None => child.remove_sub(queue, item)?,
            Some(r) => child.remove(r, queue, item)?,
        }
        if child.is_empty() {
            match kind {
                TokenKind::Pwc => self.pwc = None,
                TokenKind::Fwc => self.fwc = None,
                TokenKind::Literal => {
                    self.children.remove(tok);
                    shrink_map(&mut self.children);
                }
            }
        }
        Ok(())
    }

    fn remove_sub(&mut self, queue: Option<&[u8]>, item: &T) -> Result<(), SublistError> {
        match queue {
            None => {
                let i = self.psubs.iter().position(|s| s == item).ok_or(SublistError::NotFound)?;
                self.psubs.swap_remove(i);
                shrink_vec(&mut self.psubs);
            }
            Some(q) => {
                let gi =
                    self.qsubs.iter().position(|g| *g.name == *q).ok_or(SublistError::NotFound)?;
                let group = &mut self.qsubs[gi];
                let i = group.subs.iter().position(|s| s == item).ok_or(SublistError::NotFound)?;
                group.subs.swap_remove(i);
                if group.subs.is_empty() {
                    self.qsubs.swap_remove(gi);
                } else {
                    shrink_vec(&mut group.subs);
                }
            }
        }
        Ok(())
    }
}

struct Trie<T> {
    root: Node<T>,
    count: usize,
    inserts: u64,
    removes: u64,
}

struct Cache<T> {
    map: FxHashMap<Box<[u8]>, Arc<SublistResult<T>>>,
    // xorshift state for picking sweep victims: FxHashMap iteration order is fixed per key,
    // so "drop the first N" would always spare the same keys.
    rng: u64,
}

impl<T> Cache<T> {
    fn sweep(&mut self) {
        let len = self.map.len() as u64;
        let mut rng = self.rng;
        self.map.retain(|_, _| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % len < CACHE_SWEEP_TO as u64
        });
        self.rng = rng;
    }

    /// Drops the cached results `pattern`'s subscribers were part of.
    fn remove_matching(&mut self, pattern: &[u8]) {
        if chorus_proto::subject::subject_has_wildcard(pattern) {
            self.map.retain(|key, _| !pattern_matches(pattern, key));
        } else {
            self.map.remove(pattern);
        }
    }
}

impl<T: Clone> Cache<T> {
    /// Adds a new subscriber on `pattern` to the cached results it matches.
    fn add_matching(&mut self, pattern: &[u8], queue: Option<&Arc<[u8]>>, item: &T) {
        if chorus_proto::subject::subject_has_wildcard(pattern) {
            for (key, result) in self.map.iter_mut() {
                if pattern_matches(pattern, key) {
                    // Copy-on-write: holders of the old Arc keep a consistent snapshot.
                    Arc::make_mut(result).add_sub(queue, item);
                }
            }
        } else if let Some(result) = self.map.get_mut(pattern) {
            Arc::make_mut(result).add_sub(queue, item);
        }
    }
}

fn read<L>(lock: &RwLock<L>) -> RwLockReadGuard<'_, L> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<L>(lock: &RwLock<L>) -> RwLockWriteGuard<'_, L> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// A subject trie of subscribers with a shared match cache. See the crate docs.
pub struct Sublist<T> {
    trie: RwLock<Trie<T>>,
    cache: Option<RwLock<Cache<T>>>,
    genid: AtomicU64,
    matches: AtomicU64,
    cache_hits: AtomicU64,
    // Every empty result shares this one allocation.
    empty: Arc<SublistResult<T>>,
    hook: OnceLock<ChangeHook>,
}

/// Called with a subscription's subject after it was inserted or removed (see the crate docs).
pub type ChangeHook = Box<dyn Fn(&[u8]) + Send + Sync>;

impl<T> fmt::Debug for Sublist<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sublist")
            .field("count", &read(&self.trie).count)
            .field("generation", &self.genid.load(Ordering::Relaxed))
            .field("cache", &self.cache.is_some())
            .finish()
    }
}

impl<T: Clone + PartialEq + Send + Sync> Default for Sublist<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + PartialEq + Send + Sync> Sublist<T> {
    /// An empty sublist with the shared result cache.
    pub fn new() -> Self {
        Self::build(true)
    }

    /// An empty sublist that matches against the trie every time (nats-server's
    /// `no_sublist_cache`), for lists whose interest changes all the time.
    pub fn without_cache() -> Self {
        Self::build(false)
    }

    fn build(cache: bool) -> Self {
        Self {
            trie: RwLock::new(Trie { root: Node::default(), count: 0, inserts: 0, removes: 0 }),
            cache: cache.then(|| {
                RwLock::new(Cache { map: FxHashMap::default(), rng: 0x9e37_79b9_7f4a_7c15 })
            }),
            genid: AtomicU64::new(0),
            matches: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            empty: Arc::new(SublistResult::default()),
            hook: OnceLock::new(),
        }
    }

    /// Installs the change hook; only the first call takes effect (returns false after).
    pub fn set_change_hook(&self, hook: ChangeHook) -> bool {
        self.hook.set(hook).is_ok()
    }

    fn changed(&self, subject: &[u8]) {
        if let Some(h) = self.hook.get() {
            h(subject);
        }
    }

    /// Whether results are cached.
    pub fn cache_enabled(&self) -> bool {
        self.cache.is_some()
    }

    /// Applies a cache update and bumps the generation, under the cache's write lock so that
    /// a reader sees a result and a generation that belong together. Called with the trie
    /// write lock held.
    fn publish_change(&self, update: impl FnOnce(&mut Cache<T>)) {
        match &self.cache {
            Some(cache) => {
                let mut cache = write(cache);
                update(&mut cache);
                self.genid.fetch_add(1, Ordering::Release);
            }
            None => {
                self.genid.fetch_add(1, Ordering::Release);
            }
        }
    }

    /// Adds `item` as a subscriber on `subject` (wildcards allowed), in queue group `queue`
    /// if given. Inserting the same item twice makes it match twice; each copy needs its own
    /// [`Sublist::remove`].
    pub fn insert(
        &self,
        subject: &[u8],
        queue: Option<&[u8]>,
        item: T,
    ) -> Result<(), SublistError> {
        if !is_valid_subject(subject) {
            return Err(SublistError::InvalidSubject);
        }
        if queue.is_some_and(|q| !is_valid_queue_name(q)) {
            return Err(SublistError::InvalidQueue);
        }
        let mut guard = write(&self.trie);
        let trie = &mut *guard;
        let node = trie.root.descend_or_create(subject);
        match queue {
            None => {
                self.publish_change(|c| c.add_matching(subject, None, &item));
                node.psubs.push(item);
            }
            Some(q) => {
                let gi = node.queue_group(q);
                let group = &mut node.qsubs[gi];
                self.publish_change(|c| c.add_matching(subject, Some(&group.name), &item));
                group.subs.push(item);
            }
        }
        trie.count += 1;
        trie.inserts += 1;
        drop(guard);
        self.changed(subject);
        Ok(())
    }

    /// Removes one subscription of `item` on exactly `subject` and `queue`.
    pub fn remove(
        &self,
        subject: &[u8],
        queue: Option<&[u8]>,
        item: &T,
    ) -> Result<(), SublistError> {
        if !is_valid_subject(subject) {
            return Err(SublistError::InvalidSubject);
        }
        let mut trie = write(&self.trie);
        trie.root.remove(subject, queue, item)?;
        trie.count -= 1;
        trie.removes += 1;
        self.publish_change(|c| c.remove_matching(subject));
        drop(trie);
        self.changed(subject);
        Ok(())
    }

    /// Removes many subscriptions under one lock with one generation bump (a closing
    /// connection dropping all its subscriptions). Entries that are not present are skipped.
    /// Clears the result cache rather than updating it entry by entry, as nats-server does.
    /// Returns how many were removed.
    pub fn remove_batch<S, Q, I>(&self, items: I) -> usize
    where
        S: AsRef<[u8]>,
        Q: AsRef<[u8]>,
        I: IntoIterator<Item = (S, Option<Q>, T)>,
    {
        let mut trie = write(&self.trie);
        let mut removed = 0;
        let hooked = self.hook.get().is_some();
        let mut subjects = Vec::new();
        for (subject, queue, item) in items {
            let subject = subject.as_ref();
            if is_valid_subject(subject)
                && trie.root.remove(subject, queue.as_ref().map(AsRef::as_ref), &item).is_ok()
            {
                removed += 1;
                if hooked {
                    subjects.push(subject.to_vec());
                }
            }
        }
        if removed > 0 {
            trie.count -= removed;
            trie.removes += removed as u64;
            self.publish_change(|c| c.map.clear());
        }
        drop(trie);
        for s in subjects {
            self.changed(&s);
        }
        removed
    }

    /// The subscribers matching a published subject. Subjects with an empty token match
    /// nothing. As in nats-server, a `*` or `>` token in a published subject is not a
    /// wildcard: it is a token that only subscription wildcards match.
    pub fn match_subject(&self, subject: &[u8]) -> Arc<SublistResult<T>> {
        self.match_with_generation(subject).0
    }

    /// [`Sublist::match_subject`] for a subject unlikely to be published again, such as a
    /// request's unique reply inbox: a cached result is used, but a miss does not fill the
    /// cache, so one-off subjects neither pay for the insert nor evict the hot entries.
    pub fn match_transient(&self, subject: &[u8]) -> Arc<SublistResult<T>> {
        if let Some(result) = self.cached(subject) {
            return result;
        }
        self.collect(&read(&self.trie), subject)
    }

    /// [`Sublist::match_subject`] plus the generation the result is current for: the result
    /// stays exact for as long as [`Sublist::generation`] returns that value.
    pub fn match_with_generation(&self, subject: &[u8]) -> (Arc<SublistResult<T>>, u64) {
        if let Some(result) = self.cached(subject) {
            return (result, self.genid.load(Ordering::Acquire));
        }
        // Hold the trie's read lock until the result is cached, so no mutation (which would
        // otherwise fix up the cache) can slip in between computing and storing it.
        let trie = read(&self.trie);
        let generation = self.genid.load(Ordering::Acquire);
        let result = self.collect(&trie, subject);
        if let Some(cache) = &self.cache
            && has_no_empty_token(subject)
        {
            let mut cache = write(cache);
            cache.map.insert(subject.into(), Arc::clone(&result));
            if cache.map.len() > CACHE_MAX {
                cache.sweep();
            }
        }
        drop(trie);
        (result, generation)
    }

    /// Counts a match and answers it from the cache when it can.
    fn cached(&self, subject: &[u8]) -> Option<Arc<SublistResult<T>>> {
        self.matches.fetch_add(1, Ordering::Relaxed);
        let result = Arc::clone(read(self.cache.as_ref()?).map.get(subject)?);
        self.cache_hits.fetch_add(1, Ordering::Relaxed);
        Some(result)
    }

    /// The subscribers matching `subject` in `trie` (none for a subject with an empty token).
    fn collect(&self, trie: &Trie<T>, subject: &[u8]) -> Arc<SublistResult<T>> {
        if !has_no_empty_token(subject) {
            return Arc::clone(&self.empty);
        }
        let mut result = SublistResult::default();
        trie.root.collect(subject, &mut result);
        if result.is_empty() { Arc::clone(&self.empty) } else { Arc::new(result) }
    }

    /// Whether anything subscribes to the published `subject`; cheaper than a match on a
    /// cache miss. Not counted in the match statistics.
    pub fn has_interest(&self, subject: &[u8]) -> bool {
        if let Some(cache) = &self.cache
            && let Some(result) = read(cache).map.get(subject)
        {
            return !result.is_empty();
        }
        has_no_empty_token(subject) && read(&self.trie).root.any(subject)
    }

    /// Bumped by every successful mutation.
    pub fn generation(&self) -> u64 {
        self.genid.load(Ordering::Acquire)
    }

    /// Number of subscriptions.
    pub fn count(&self) -> usize {
        read(&self.trie).count
    }

    /// Every subscriber, each once per subscription.
    pub fn all(&self) -> Vec<T> {
        let trie = read(&self.trie);
        let mut out = Vec::with_capacity(trie.count);
        let mut stack = vec![&trie.root];
        while let Some(node) = stack.pop() {
            node.for_each_sub(&mut |s| out.push(s.clone()));
            stack.extend(node.children.values());
            stack.extend(node.pwc.as_deref());
            stack.extend(node.fwc.as_deref());
        }
        out
    }

    /// Current counters; fan-out figures come from the cached results, as in nats-server.
    pub fn stats(&self) -> SublistStats {
        let mut st = SublistStats::default();
        {
            let trie = read(&self.trie);
            st.num_subs = u32::try_from(trie.count).unwrap_or(u32::MAX);
            st.num_inserts = trie.inserts;
            st.num_removes = trie.removes;
        }
        st.num_matches = self.matches.load(Ordering::Relaxed);
        st.cache_hits = self.cache_hits.load(Ordering::Relaxed);
        if st.num_matches > 0 {
            st.cache_hit_rate = st.cache_hits as f64 / st.num_matches as f64;
        }
        if let Some(cache) = &self.cache {
            let cache = read(cache);
            st.num_cache = u32::try_from(cache.map.len()).unwrap_or(u32::MAX);
            let mut max = 0;
            for result in cache.map.values() {
                let fanout = result.fanout() as u64;
                st.tot_fanout += fanout;
                max = max.max(fanout);
            }
            st.cache_cnt = cache.map.len() as u64;
            st.max_fanout = u32::try_from(max).unwrap_or(u32::MAX);
            if st.tot_fanout > 0 {
                st.avg_fanout = st.tot_fanout as f64 / st.cache_cnt as f64;
            }
        }
        st
    }
}

#[cfg(test)]
mod tests;
