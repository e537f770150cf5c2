//! Product search: a tantivy index under `data/search` fed from the event log (the catalog
//! in redb is the truth, the index a rebuildable projection), and the queries over it.
//! Nothing here speaks HTTP (see `api.rs`); nothing here writes the catalog.

pub mod analytics;
pub mod answer;
pub mod api;
pub mod cache;
pub mod consumer;
pub mod facets;
pub mod index;
pub mod insights;
pub mod query;
pub mod request;
pub mod run;
pub mod segment_docs;
pub mod shown;
pub mod snippet;
pub mod suggest;
pub mod suggest_index;
pub mod suggest_queries;
pub mod trending;
pub mod view;
pub mod vocab;
pub mod word_hits;

use crate::app::AppState;
use crate::config::{Config, SearchConfig};
use crate::error::{Error, Result};
pub use answer::{Computed, Hit, SearchAnswer, Understood, UnderstoodWord};
use consumer::Command;
pub use consumer::{IndexerHandle, ReindexReport};
use index::{Live, Offsets};
pub use request::{SearchRequest, Sort};
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, mpsc};

/// Facet names a request may ask for.
pub const FACETS: &[&str] = &["category", "brand", "vendor", "price", "attributes"];

/// Seconds a client is told to wait while the index is being built.
const RETRY_AFTER_SECS: u64 = 5;

/// What handlers and the indexer share: the live index (swapped whole on rebuild), the
/// channel to the indexer, the popularity counts the index holds and the analytics.
pub struct SearchState {
    pub config: SearchConfig,
    /// `data/search`: holds `CURRENT` and the `index-*` directories.
    pub root: PathBuf,
    live: RwLock<Option<Arc<Live>>>,
    commands: Mutex<Option<mpsc::Sender<Command>>>,
    popularity: Mutex<HashMap<String, u64>>,
    /// Per signed-in shopper: categories (with their ancestors) and brands of products
    /// they clicked, carted or bought from search, most recent last, bounded.
    affinity: Mutex<HashMap<crate::auth::UserId, Affinity>>,
    /// Search analytics, trending and popular queries, from the telemetry topic.
    pub analytics: analytics::Analytics,
    /// The catalog's categories (suggestions name them, facets count them), and a
    /// recent snapshot of the popular queries (for suggestions).
    pub(crate) categories: suggest_index::CategoryCache,
    pub(crate) popular_queries: suggest_queries::PopularQueries,
}

/// A shopper's recent interests: (category path, brand), most recent last.
type Affinity = std::collections::VecDeque<(String, Option<String>)>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SearchState {
    /// Opens the live index if there is a usable one; otherwise search is unavailable
    /// until the indexer (see [`start`]) has rebuilt it.
    pub fn open(config: &Config) -> Result<Arc<SearchState>> {
        let root = config.data_dir.join("search");
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::Storage(format!("cannot create {}: {e}", root.display())))?;
        let live = match index::current_dir(&root) {
            Some(dir) => match Live::open(&dir) {
                Ok((live, _)) => Some(Arc::new(live)),
                Err(e) => {
                    tracing::warn!(error = %e, "the search index will not open; it will be rebuilt");
                    None
                }
            },
            None => None,
        };
        // Popularity lives in the index documents themselves, so a restart or a rebuild
        // starts from what the live index last recorded.
        let popularity = live.as_ref().map(|l| popularity_of(l)).unwrap_or_default();
        Ok(Arc::new(SearchState {
            config: config.search.clone(),
            root,
            live: RwLock::new(live),
            commands: Mutex::new(None),
            popularity: Mutex::new(popularity),
            affinity: Mutex::new(HashMap::new()),
            analytics: analytics::Analytics::default(),
            categories: suggest_index::CategoryCache::default(),
            popular_queries: suggest_queries::PopularQueries::default(),
        }))
    }

    /// Whether search answers (false while the index is first built).
    pub fn ready(&self) -> bool {
        self.current().is_some()
    }

    fn current(&self) -> Option<Arc<Live>> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn live(&self) -> Result<Arc<Live>> {
        self.current().ok_or_else(|| Error::Unavailable {
            message: "the search index is being built; try again shortly".into(),
            retry_after_secs: RETRY_AFTER_SECS,
        })
    }

    /// The live index and the log offsets its last commit recorded.
    fn open_live(&self) -> Option<(Arc<Live>, Offsets)> {
        let live = self.current()?;
        let payload = live.index.load_metas().ok()?.payload?;
        let offsets: Offsets = serde_json::from_str(&payload).ok()?;
        Some((live, offsets))
    }

    fn install(&self, live: Arc<Live>) {
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = Some(live);
    }

    fn set_commands(&self, tx: mpsc::Sender<Command>) {
        *lock(&self.commands) = Some(tx);
    }

    pub(crate) fn popularity_snapshot(&self) -> HashMap<String, u64> {
        lock(&self.popularity).clone()
    }

    /// The popularity `products` will have once `pending` (counted, not yet committed)
    /// is added.
    pub(crate) fn popularity_of(
        &self,
        products: &std::collections::BTreeSet<crate::services::catalog::model::ProductId>,
        pending: &HashMap<crate::services::catalog::model::ProductId, u64>,
    ) -> HashMap<String, u64> {
        let all = lock(&self.popularity);
        products
            .iter()
            .map(|id| {
                let key = id.to_string();
                let p = all.get(&key).copied().unwrap_or(0) + pending.get(id).copied().unwrap_or(0);
                (key, p)
            })
            .collect()
    }

    /// Adds counts the indexer has just committed.
    pub(crate) fn add_popularity(
        &self,
        counted: &HashMap<crate::services::catalog::model::ProductId, u64>,
    ) {
        let mut all = lock(&self.popularity);
        for (id, n) in counted {
            *all.entry(id.to_string()).or_default() += n;
        }
    }

    /// Remembers what a signed-in shopper reacted to: the product's category path and brand.
    pub fn remember(
        &self,
        user: crate::auth::UserId,
        categories: Vec<String>,
        brand: Option<String>,
    ) {
        const KEEP: usize = 50;
        let mut all = lock(&self.affinity);
        let mine = all.entry(user).or_default();
        for c in categories {
            mine.push_back((c, brand.clone()));
        }
        while mine.len() > KEEP {
            mine.pop_front();
        }
    }

    /// The shopper's recent interests (empty for anonymous shoppers, or with
    /// personalisation off).
    pub fn affinity(&self, user: Option<crate::auth::UserId>) -> request::Affinity {
        let mut a = request::Affinity::default();
        if !self.config.personalize {
            return a;
        }
        if let Some(mine) = user.and_then(|u| lock(&self.affinity).get(&u).cloned()) {
            for (c, b) in mine {
                a.categories.insert(c);
                if let Some(b) = b {
                    a.brands.insert(b);
                }
            }
        }
        a
    }

    /// Documents in the live index and how many distinct product ids they carry (equal
    /// unless something indexed a product twice).
    pub fn stats(&self) -> Result<IndexStats> {
        let live = self.live()?;
        let view = live.view();
        let searcher = &view.searcher;
        let mut ids = std::collections::HashSet::new();
        let mut documents = 0u64;
        for seg in searcher.segment_readers() {
            let col = seg
                .fast_fields()
                .str("id")
                .map_err(index::ts)?
                .ok_or_else(|| Error::internal("index without ids"))?;
            let mut s = String::new();
            for doc in seg.doc_ids_alive() {
                documents += 1;
                for ord in col.term_ords(doc) {
                    s.clear();
                    if col.ord_to_str(ord, &mut s).unwrap_or(false) {
                        ids.insert(s.clone());
                    }
                }
            }
        }
        Ok(IndexStats {
            documents,
            distinct_ids: ids.len() as u64,
            bytes: index::dir_size(&live.dir),
        })
    }
}

/// What a shopper did with a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Click,
    AddToCart,
    Purchase,
}

impl Action {
    /// As in the API and in `Search.Feedback` events.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Click => "click",
            Action::AddToCart => "add_to_cart",
            Action::Purchase => "purchase",
        }
    }

    /// A purchase says more about a product than a click does.
    pub fn weight(self) -> u64 {
        match self {
            Action::Click => 1,
            Action::AddToCart => 3,
            Action::Purchase => 5,
        }
    }
}

/// Product id → popularity as stored in the live index.
fn popularity_of(live: &Live) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let view = live.view();
    let searcher = &view.searcher;
    for seg in searcher.segment_readers() {
        let ff = seg.fast_fields();
        let (Ok(Some(ids)), Ok(pop)) = (ff.str("id"), ff.u64("popularity")) else {
            continue;
        };
        let mut s = String::new();
        for doc in seg.doc_ids_alive() {
            let Some(p) = pop.first(doc).filter(|p| *p > 0) else {
                continue;
            };
            if let Some(ord) = ids.term_ords(doc).next() {
                s.clear();
                if ids.ord_to_str(ord, &mut s).unwrap_or(false) {
                    out.insert(s.clone(), p);
                }
            }
        }
    }
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct IndexStats {
    pub documents: u64,
    pub distinct_ids: u64,
    pub bytes: u64,
}

/// Starts the indexer on the app's store and log (rebuilding first if needed), and the
/// analytics consumer (rebuilding its aggregates from the log). One handle stops both.
pub fn start(state: &AppState) -> Result<IndexerHandle> {
    let mut handle = consumer::spawn(state.search.clone(), state.store.clone(), state.log.clone())?;
    let thread = analytics::spawn(state.search.clone(), state.log.clone(), handle.stop_flag())?;
    handle.also(thread);
    Ok(handle)
}

/// Rebuilds the index of a running app from redb in a new directory while the old one
/// keeps answering, then swaps them.
pub async fn reindex_live(state: &AppState) -> Result<ReindexReport> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sender = lock(&state.search.commands).clone();
    let Some(sender) = sender else {
        return Err(Error::Unavailable {
            message: "the search indexer is not running".into(),
            retry_after_secs: RETRY_AFTER_SECS,
        });
    };
    sender
        .send(Command::Reindex(tx))
        .map_err(|_| Error::internal("the search indexer stopped"))?;
    rx.await
        .map_err(|_| Error::internal("the search indexer stopped before answering"))?
}

/// `souk reindex`: rebuilds the index of a stopped Souk from redb into a new directory,
/// then makes it the live one (the old one served until then and is removed after).
pub fn reindex(config: &Config) -> Result<ReindexReport> {
    let store = crate::store::Store::open(
        &config.data_dir,
        config.store.cache_mib,
        config.store.group_commit_max,
    )?;
    let log = crate::log::EventLog::open(
        &config.data_dir.join("log"),
        &config.log,
        crate::clock::Clock::default(),
    )?;
    let root = config.data_dir.join("search");
    std::fs::create_dir_all(&root)
        .map_err(|e| Error::Storage(format!("cannot create {}: {e}", root.display())))?;
    // Popularity lives in the documents: carried over from the old index when it opens
    // (else counted again from what the log still holds).
    let popularity = index::current_dir(&root)
        .and_then(|dir| Live::open(&dir).ok())
        .map(|(live, _)| popularity_of(&live))
        .unwrap_or_default();
    let result = consumer::build(
        &store,
        &log,
        &root,
        config.search.writer_memory_mib,
        &popularity,
    );
    store.close();
    let (live, _, report) = result?;
    index::set_current(&root, &live.dir)?;
    index::remove_stale(&root, &live.dir);
    Ok(report)
}

/// Runs a search. `affinity` (categories and brands the signed-in shopper showed interest
/// in) only reorders hits.
pub fn search(
    state: &AppState,
    req: &SearchRequest,
    affinity: &request::Affinity,
) -> Result<SearchAnswer> {
    let live = state.search.live()?;
    run_cached(state, &live, req, affinity)
}

/// Runs a request on `live`, reusing the answer of the same request if neither the index
/// nor the catalog has changed since (see `cache`).
pub(crate) fn run_cached(
    state: &AppState,
    live: &Live,
    req: &SearchRequest,
    affinity: &request::Affinity,
) -> Result<SearchAnswer> {
    match kept(state, live, req, affinity) {
        Some(hit) => Ok(hit),
        None => compute(state, live, req, affinity),
    }
}

/// Computes a request's answer on `live` and keeps it (see `cache`).
fn compute(
    state: &AppState,
    live: &Live,
    req: &SearchRequest,
    affinity: &request::Affinity,
) -> Result<SearchAnswer> {
    // The answer comes from this view; the store's generation is read before the read
    // transaction, so a commit in between can only make the stamp look older than it is.
    let view = live.view();
    let stamp = (view.generation(), state.store.generation());
    let rtx = state.store.read()?;
    let answer = run::run(&state.search, &view, (&rtx, stamp.1), req, affinity)?;
    if cache::cacheable(req, affinity) {
        live.answers.put(stamp, req, &answer.computed);
    }
    Ok(answer)
}

/// The answer kept for this request, if neither the index nor the catalog has changed
/// since it was computed.
fn kept(
    state: &AppState,
    live: &Live,
    req: &SearchRequest,
    affinity: &request::Affinity,
) -> Option<SearchAnswer> {
    let stamp = (live.view().generation(), state.store.generation());
    cache::cacheable(req, affinity)
        .then(|| live.answers.get(stamp, req))
        .flatten()
}

/// Who searched, for the telemetry: the signed-in user and the visitor's opaque session.
#[derive(Debug, Clone, Default)]
pub struct Visitor {
    pub user_id: Option<String>,
    pub session_id: Option<String>,
}

/// Runs a search as [`search`] does and records it (`Search.Performed` on the telemetry
/// topic: text, filters, result count, latency, who, query id). Only a first page is
/// recorded, so paging through one search counts it once.
pub fn search_as(
    state: &AppState,
    req: &SearchRequest,
    affinity: &request::Affinity,
    visitor: &Visitor,
) -> Result<SearchAnswer> {
    let started = std::time::Instant::now();
    let answer = search(state, req, affinity)?;
    record_search(state, req, visitor, &answer, started);
    Ok(answer)
}

/// [`search_as`] for async callers: an answer still kept (see `cache`) is taken at once,
/// without waiting for a turn on a core, and so is a light one (see `run::light`);
/// anything else is computed through `cpu::run`.
pub async fn search_as_async(
    state: &AppState,
    req: SearchRequest,
    affinity: request::Affinity,
    visitor: Visitor,
) -> Result<SearchAnswer> {
    let started = std::time::Instant::now();
    let live = state.search.live()?;
    let answer = match kept(state, &live, &req, &affinity) {
        Some(hit) => Some(hit),
        None if run::light(&live.view(), &req) => Some(compute(state, &live, &req, &affinity)?),
        None => None,
    };
    if let Some(answer) = answer {
        record_search(state, &req, &visitor, &answer, started);
        return Ok(answer);
    }
    let state = state.clone();
    crate::cpu::run("search", move || {
        search_as(&state, &req, &affinity, &visitor)
    })
    .await
}

/// `Search.Performed` for a first page (so paging through one search counts it once).
fn record_search(
    state: &AppState,
    req: &SearchRequest,
    visitor: &Visitor,
    answer: &SearchAnswer,
    started: std::time::Instant,
) {
    if req.offset == 0 {
        state
            .telemetry
            .record(crate::log::event::Event::SearchPerformed {
                query: req.q.clone(),
                results: answer.total,
                corrected: corrected(&answer.query),
                user_id: visitor.user_id.clone(),
                session_id: visitor.session_id.clone(),
                timestamp: state.clock.now(),
                query_id: answer.query_id.clone(),
                filters: filters(req),
                latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            });
    }
}

/// Records a shopper's reaction to a hit (`Search.Feedback`): the analytics count it as a
/// click-through of its search, and the indexer as popularity.
pub fn record_feedback(
    state: &AppState,
    query_id: &str,
    product: crate::services::catalog::model::ProductId,
    action: Action,
    visitor: &Visitor,
) {
    state
        .telemetry
        .record(crate::log::event::Event::SearchFeedback {
            query_id: query_id.to_string(),
            product_id: product.to_string(),
            action: action.as_str().to_string(),
            user_id: visitor.user_id.clone(),
            session_id: visitor.session_id.clone(),
            timestamp: state.clock.now(),
        });
}

/// The query with its corrected words, when the engine corrected any (completions of the
/// word being typed are not corrections).
fn corrected(u: &Understood) -> Option<String> {
    let last = u.words.len().saturating_sub(1);
    let mut changed = false;
    let words: Vec<&str> = u
        .words
        .iter()
        .enumerate()
        .map(|(i, w)| match w.matches.first() {
            Some(m) if *m != w.input => {
                let completion = i == last && u.last_word_prefix && m.starts_with(&w.input);
                if completion || w.matches.contains(&w.input) {
                    w.input.as_str()
                } else {
                    changed = true;
                    m.as_str()
                }
            }
            _ => w.input.as_str(),
        })
        .collect();
    changed.then(|| words.join(" "))
}

/// The filters and sort of a request, as the analytics keep them.
fn filters(req: &SearchRequest) -> serde_json::Value {
    let sort = match req.sort {
        Sort::Relevance => "relevance",
        Sort::PriceAsc => "price_asc",
        Sort::PriceDesc => "price_desc",
        Sort::Newest => "newest",
        Sort::Popularity => "popularity",
    };
    let mut m = serde_json::Map::new();
    m.insert("sort".into(), sort.into());
    if let Some(c) = &req.category {
        m.insert("category".into(), c.clone().into());
    }
    if !req.vendors.is_empty() {
        m.insert("vendor".into(), req.vendors.clone().into());
    }
    if !req.brands.is_empty() {
        m.insert("brand".into(), req.brands.clone().into());
    }
    if req.price != (None, None) {
        m.insert(
            "price".into(),
            serde_json::json!({"min": req.price.0, "max": req.price.1}),
        );
    }
    if req.in_stock {
        m.insert("in_stock".into(), true.into());
    }
    if !req.attributes.is_empty() {
        let attrs: Vec<String> = req
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        m.insert("attr".into(), attrs.into());
    }
    serde_json::Value::Object(m)
}
