//! The indexer: a consumer of the `products`, `inventory` and `vendors` topics that loads
//! each changed product from redb (the catalog is the truth; events only say what changed)
//! and commits the index together with the offsets it consumed. Also full rebuilds from
//! redb into a fresh directory, swapped in when complete. It never writes redb.

use super::SearchState;
use super::index::{self, DocContext, Live, Offsets, POPULARITY_TOPICS, TOPICS};
use crate::auth::VendorId;
use crate::error::{Error, Result};
use crate::log::event::Event;
use crate::log::{EventLog, ReadError};
use crate::services::catalog::model::{Category, CategoryId, Product, ProductId, ProductStatus};
use crate::services::vendors::model::VendorStatus;
use crate::store::Store;
use crate::store::tables::PRODUCT_ID_TO_PRODUCT;
use redb::{ReadTransaction, ReadableTable};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tantivy::{IndexWriter, TantivyDocument, Term};

/// The consumer group name the indexer reads as (its offsets live in the index, not here).
pub const GROUP: &str = "search-indexer";
/// Records taken from the log per topic before one commit.
const BATCH: usize = 2000;
/// How long an idle indexer waits before looking at the log again: well under the one
/// second in which a change must become searchable.
const IDLE: Duration = Duration::from_millis(40);
/// How often popularity alone (views, feedback, sales; no catalog change) is committed.
const POPULARITY_EVERY: Duration = Duration::from_secs(1);

/// The events of the popularity topics that [`count`] reads; the rest (page views,
/// searches, order updates) are passed over undecoded.
pub(crate) const POPULARITY_EVENTS: &[&str] =
    &["Product.Viewed", "Search.Feedback", "Order.Created"];

/// Adds what one event says about products' popularity: a view counts 1, search
/// feedback its action's weight, each unit ordered as much as a purchase.
fn count(e: &Event, pending: &mut HashMap<ProductId, u64>) {
    use super::analytics::{ORDER_WEIGHT, VIEW_WEIGHT, order_items};
    let mut add = |id: &str, w: u64| {
        if let Ok(id) = id.parse::<ProductId>() {
            *pending.entry(id).or_default() += w;
        }
    };
    match e {
        Event::ProductViewed { product_id, .. } => add(product_id, VIEW_WEIGHT),
        Event::SearchFeedback {
            product_id, action, ..
        } => {
            let w = match action.as_str() {
                "purchase" => super::Action::Purchase.weight(),
                "add_to_cart" => super::Action::AddToCart.weight(),
                _ => super::Action::Click.weight(),
            };
            add(product_id, w);
        }
        Event::OrderCreated { items, .. } => {
            for (id, qty) in order_items(items) {
                add(&id, qty.saturating_mul(ORDER_WEIGHT));
            }
        }
        _ => {}
    }
}

/// Builds documents from one redb snapshot, caching what many products share.
pub struct Loader<'a> {
    rtx: &'a ReadTransaction,
    categories: HashMap<CategoryId, Category>,
    vendors: HashMap<VendorId, Option<(VendorStatus, String)>>,
    popularity: &'a HashMap<String, u64>,
}

impl<'a> Loader<'a> {
    pub fn new(rtx: &'a ReadTransaction, popularity: &'a HashMap<String, u64>) -> Result<Self> {
        let categories = crate::services::catalog::store::all_categories(rtx)?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        Ok(Loader {
            rtx,
            categories,
            vendors: HashMap::new(),
            popularity,
        })
    }

    /// The product's document, or `None` when shoppers must not find it (draft,
    /// archived, deleted, or its vendor suspended).
    pub fn document(&mut self, p: &Product, f: &index::Fields) -> Result<Option<TantivyDocument>> {
        if p.status != ProductStatus::Active || p.variants.is_empty() {
            return Ok(None);
        }
        let vendor = match self.vendors.get(&p.vendor_id) {
            Some(v) => v.clone(),
            None => {
                let v = crate::services::vendors::store::get(self.rtx, p.vendor_id)?
                    .map(|v| (v.status, v.name));
                self.vendors.insert(p.vendor_id, v.clone());
                v
            }
        };
        let Some((VendorStatus::Active, vendor_name)) = vendor else {
            return Ok(None);
        };
        let available =
            crate::services::catalog::inventory::inventory(self.rtx, p.id)?.total_available();
        let cx = DocContext {
            categories: &self.categories,
            vendor_name: &vendor_name,
            available,
            popularity: self.popularity.get(&p.id.to_string()).copied().unwrap_or(0),
        };
        index::document(f, p, &cx).map(Some)
    }

    pub fn product(&self, id: ProductId) -> Result<Option<Product>> {
        crate::services::catalog::store::product(self.rtx, id)
    }
}

/// Every product in redb, in id order.
fn for_each_product(rtx: &ReadTransaction, mut f: impl FnMut(Product) -> Result<()>) -> Result<()> {
    let Some(t) = crate::auth::kv::open_ro(rtx, PRODUCT_ID_TO_PRODUCT)? else {
        return Ok(());
    };
    for item in t.iter()? {
        let (_, v) = item?;
        f(crate::store::codec::decode(v.value())?)?;
    }
    Ok(())
}

/// Where the log ends now, for each followed topic: a snapshot of redb taken after this
/// contains at least every change these offsets cover.
pub fn log_ends(log: &EventLog) -> Offsets {
    positions(log, false)
}

/// As [`log_ends`], except that the popularity topics start at the oldest event kept when
/// `count_history` is set: a build with no popularity to carry over counts what the log
/// still holds instead.
fn positions(log: &EventLog, count_history: bool) -> Offsets {
    let topics = TOPICS
        .iter()
        .map(|t| {
            let from_start = count_history && POPULARITY_TOPICS.contains(t);
            let ends = match log.topic(t) {
                Some(info) => info
                    .partitions
                    .iter()
                    .map(|p| if from_start { p.low } else { p.next })
                    .collect(),
                None => vec![0; usize::from(log.partitions(t))],
            };
            (t.to_string(), ends)
        })
        .collect();
    Offsets {
        schema: index::SCHEMA_VERSION,
        topics,
    }
}

/// What a rebuild did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReindexReport {
    pub documents: u64,
    pub seconds: f64,
    pub bytes: u64,
    pub dir: String,
}

/// Builds a complete index of `store` in a new directory under `root` (nothing live is
/// touched), committed with the log positions taken just before the snapshot, so the
/// indexer replays whatever happened during the build.
pub fn build(
    store: &Store,
    log: &EventLog,
    root: &Path,
    memory_mib: usize,
    popularity: &HashMap<String, u64>,
) -> Result<(Live, Offsets, ReindexReport)> {
    let started = Instant::now();
    let offsets = positions(log, popularity.is_empty());
    let dir = index::new_dir(root);
    let live = Live::create(&dir)?;
    let mut writer = live.writer(memory_mib)?;
    let rtx = store.read()?;
    let mut loader = Loader::new(&rtx, popularity)?;
    let f = live.fields;
    let mut documents = 0u64;
    for_each_product(&rtx, |p| {
        if let Some(doc) = loader.document(&p, &f)? {
            writer.add_document(doc).map_err(index::ts)?;
            documents += 1;
        }
        Ok(())
    })?;
    live.commit(&mut writer, &offsets)?;
    writer.wait_merging_threads().map_err(index::ts)?;
    let report = ReindexReport {
        documents,
        seconds: started.elapsed().as_secs_f64(),
        bytes: index::dir_size(&dir),
        dir: dir.display().to_string(),
    };
    Ok((live, offsets, report))
}

/// Requests the running indexer takes between batches.
pub enum Command {
    Reindex(tokio::sync::oneshot::Sender<Result<ReindexReport>>),
}

/// The running indexer thread (and the search analytics consumer started with it);
/// dropping it stops them after their current batch (a batch is committed whole or not
/// at all, so stopping never leaves half a change).
pub struct IndexerHandle {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl IndexerHandle {
    pub fn stop(mut self) {
        self.halt();
    }

    /// The flag that stops every thread of this handle.
    pub(crate) fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Another thread to stop and join with the indexer.
    pub(crate) fn also(&mut self, thread: std::thread::JoinHandle<()>) {
        self.threads.push(thread);
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for IndexerHandle {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Starts the indexer. If the index was missing or unreadable at start, it first rebuilds
/// from redb while search answers 503.
pub fn spawn(state: Arc<SearchState>, store: Store, log: EventLog) -> Result<IndexerHandle> {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    state.set_commands(tx);
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("search-indexer".into())
        .spawn(move || {
            let mut w = Worker {
                state,
                store,
                log,
                stop: flag,
                commands: rx,
            };
            while !w.stop.load(Ordering::Acquire) {
                // An error (the store closing under us, a full disk) is logged and the
                // worker starts over from what the index last committed.
                if let Err(e) = w.run() {
                    tracing::warn!(error = %e, "search indexer");
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        })
        .map_err(Error::internal)?;
    Ok(IndexerHandle {
        stop,
        threads: vec![thread],
    })
}

struct Worker {
    state: Arc<SearchState>,
    store: Store,
    log: EventLog,
    stop: Arc<AtomicBool>,
    commands: mpsc::Receiver<Command>,
}

impl Worker {
    fn run(&mut self) -> Result<()> {
        let (live, offsets) = match self.state.open_live() {
            Some(x) => x,
            None => {
                let (live, offsets, report) = self.rebuild()?;
                tracing::info!(
                    documents = report.documents,
                    seconds = report.seconds,
                    "search index rebuilt"
                );
                (live, offsets)
            }
        };
        // An index ahead of the log (the log was replaced or restored from an older backup)
        // would wait forever for offsets that will be reused: rebuild from redb instead.
        let ends = log_ends(&self.log);
        let ahead = offsets.topics.iter().any(|(t, pos)| {
            let end = ends.topics.get(t);
            pos.iter()
                .enumerate()
                .any(|(p, o)| *o > end.and_then(|e| e.get(p)).copied().unwrap_or(0))
        });
        if ahead {
            tracing::warn!("the search index is ahead of the event log; rebuilding from state");
            self.rebuild()?;
            return Ok(());
        }
        let mut writer = live.writer(self.state.config.writer_memory_mib)?;
        let mut consumers = consumers(&self.log, &offsets)?;
        // Popularity counted from events read but not yet committed: it goes into the
        // documents of the next commit, together with the offsets that cover it.
        let mut pending: HashMap<ProductId, u64> = HashMap::new();
        let mut last_commit = Instant::now();
        while !self.stop.load(Ordering::Acquire) {
            if let Ok(Command::Reindex(reply)) = self.commands.try_recv() {
                // The old writer's lock must go before the swap; the old index keeps
                // serving readers until then. Counts not yet committed go in with it.
                drop(writer);
                self.state.add_popularity(&pending);
                let result = self.rebuild();
                let ok = result.as_ref().map(|(_, _, r)| r.clone());
                let _ = reply.send(ok.map_err(|e| Error::internal(e.to_string())));
                return result.map(|_| ());
            }
            let mut catalog = Vec::new();
            let mut read = 0usize;
            for c in consumers.iter_mut() {
                let popularity = POPULARITY_TOPICS.contains(&c.topic());
                match c.poll(BATCH) {
                    Ok(r) if popularity => {
                        read += r.len();
                        for rec in &r {
                            count(&rec.envelope.event, &mut pending);
                        }
                    }
                    Ok(r) => {
                        read += r.len();
                        catalog.extend(r);
                    }
                    // Counters, not the catalog: skip what retention removed, and say so.
                    Err(ReadError::FellBehind(f)) if popularity => {
                        tracing::warn!(error = %f, "search popularity skips events removed by retention");
                        c.seek(f.partition, f.first_available);
                    }
                    Err(ReadError::FellBehind(f)) => {
                        tracing::warn!(error = %f, "search indexer fell behind the log; rebuilding from state");
                        drop(writer);
                        self.state.add_popularity(&pending);
                        self.rebuild()?;
                        return Ok(());
                    }
                    Err(ReadError::Other(e)) => return Err(e),
                }
                read += c.skipped();
            }
            // Catalog changes are committed at once; popularity alone at most once per
            // POPULARITY_EVERY, so a stream of views does not commit the index nonstop.
            let due = !pending.is_empty() && last_commit.elapsed() >= POPULARITY_EVERY;
            if catalog.is_empty() && !due {
                if read == 0 {
                    std::thread::sleep(IDLE);
                }
                continue;
            }
            self.apply(
                &live,
                &mut writer,
                catalog.iter().map(|r| &r.envelope.event),
                &pending,
            )?;
            let offsets = Offsets {
                schema: index::SCHEMA_VERSION,
                topics: consumers
                    .iter()
                    .map(|c| {
                        let pos = c.positions().iter().map(|p| p.unwrap_or(0)).collect();
                        (c.topic().to_string(), pos)
                    })
                    .collect(),
            };
            live.commit(&mut writer, &offsets)?;
            self.state.add_popularity(&pending);
            pending.clear();
            last_commit = Instant::now();
        }
        Ok(())
    }

    /// Re-reads every product the events name or whose popularity grew, and drops a
    /// suspended vendor's products.
    fn apply<'e>(
        &self,
        live: &Live,
        writer: &mut IndexWriter,
        events: impl Iterator<Item = &'e Event>,
        pending: &HashMap<ProductId, u64>,
    ) -> Result<()> {
        let f = live.fields;
        let mut products: BTreeSet<ProductId> = pending.keys().copied().collect();
        let mut vendors_back = BTreeSet::new();
        for e in events {
            match e {
                Event::ProductCreated { product_id, .. }
                | Event::ProductUpdated { product_id, .. }
                | Event::ProductArchived { product_id, .. }
                | Event::InventoryUpdated { product_id, .. }
                | Event::ProductBackInStock { product_id, .. } => {
                    if let Ok(id) = product_id.parse::<ProductId>() {
                        products.insert(id);
                    }
                }
                Event::VendorSuspended { vendor_id, .. } => {
                    writer.delete_term(Term::from_field_text(f.vendor, vendor_id));
                }
                Event::VendorApproved { vendor_id, .. } => {
                    if let Ok(id) = vendor_id.parse::<VendorId>() {
                        vendors_back.insert(id);
                    }
                }
                _ => {}
            }
        }
        let rtx = self.store.read()?;
        for v in vendors_back {
            let mut after = None;
            loop {
                let (ids, more) =
                    crate::services::catalog::store::vendor_products(&rtx, v, after, 500)?;
                after = ids.last().copied();
                products.extend(ids);
                if !more || after.is_none() {
                    break;
                }
            }
        }
        let popularity = self.state.popularity_of(&products, pending);
        let mut loader = Loader::new(&rtx, &popularity)?;
        for id in products {
            writer.delete_term(Term::from_field_text(f.id, &id.to_string()));
            if let Some(p) = loader.product(id)? {
                if let Some(doc) = loader.document(&p, &f)? {
                    writer.add_document(doc).map_err(index::ts)?;
                }
            }
        }
        Ok(())
    }

    /// A full rebuild into a new directory, then the swap; the caller restarts its loop
    /// on the new index.
    fn rebuild(&self) -> Result<(Arc<Live>, Offsets, ReindexReport)> {
        let root = self.state.root.clone();
        let popularity = self.state.popularity_snapshot();
        let (live, offsets, report) = build(
            &self.store,
            &self.log,
            &root,
            self.state.config.writer_memory_mib,
            &popularity,
        )?;
        let live = Arc::new(live);
        index::set_current(&root, &live.dir)?;
        self.state.install(live.clone());
        index::remove_stale(&root, &live.dir);
        Ok((live, offsets, report))
    }
}

/// One consumer per followed topic, positioned where the index stands.
fn consumers(log: &EventLog, offsets: &Offsets) -> Result<Vec<crate::log::consumer::Consumer>> {
    TOPICS
        .iter()
        .map(|t| {
            let mut c = log.consumer(GROUP, t)?;
            if POPULARITY_TOPICS.contains(t) {
                c = c.only(POPULARITY_EVENTS);
            }
            if let Some(pos) = offsets.topics.get(*t) {
                for (p, o) in pos.iter().enumerate() {
                    c.seek(p as u16, *o);
                }
            }
            Ok(c)
        })
        .collect()
}
