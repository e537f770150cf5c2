//! Stock: vendors' warehouses, on-hand and reserved quantities per variant and warehouse,
//! and the transactional reservation API the order service calls inside ITS
//! `store.write` (reserve, release, commit). Available stock (on hand − reserved) never
//! goes below zero: every change checks it in the one writer's transaction.
//! This module never checks who is calling; `mod.rs` does that before calling it.

use super::model::{
    Inventory, Product, ProductId, ProductStatus, Reservation, ReservationId, ReservationStatus,
    ReservedLine, VariantId, Warehouse, WarehouseId,
};
use super::store::id16;
use crate::auth::{VendorId, kv};
use crate::error::{Error, FieldError, Result};
use crate::log::event::{Envelope, Event};
use crate::store::Tx;
use crate::store::tables::{
    PRODUCT_ID_TO_INVENTORY, RESERVATION_ID_TO_RESERVATION, VENDOR_WAREHOUSE_TO_UNIT,
    WAREHOUSE_ID_TO_WAREHOUSE,
};
use redb::{ReadTransaction, WriteTransaction};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// Most units one reservation line may ask for.
pub const MAX_LINE_QUANTITY: i64 = 10_000;

// ---------- warehouses ----------

pub fn warehouse(rtx: &ReadTransaction, id: WarehouseId) -> Result<Option<Warehouse>> {
    kv::read(rtx, WAREHOUSE_ID_TO_WAREHOUSE, &id.to_bytes())
}

pub fn warehouse_in(wtx: &WriteTransaction, id: WarehouseId) -> Result<Option<Warehouse>> {
    kv::read_in(wtx, WAREHOUSE_ID_TO_WAREHOUSE, &id.to_bytes())
}

pub fn put_warehouse(wtx: &WriteTransaction, w: &Warehouse) -> Result<()> {
    wtx.open_table(VENDOR_WAREHOUSE_TO_UNIT)?.insert(
        kv::concat(&w.vendor_id.to_bytes(), &w.id.to_bytes()).as_slice(),
        (),
    )?;
    kv::put(wtx, WAREHOUSE_ID_TO_WAREHOUSE, &w.id.to_bytes(), w)
}

/// A vendor's warehouses, oldest first.
pub fn vendor_warehouses(rtx: &ReadTransaction, vendor: VendorId) -> Result<Vec<Warehouse>> {
    let Some(t) = kv::open_ro(rtx, VENDOR_WAREHOUSE_TO_UNIT)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for k in kv::prefixed_keys(&t, &vendor.to_bytes())? {
        if let Some(id) = id16(&k[16..]).map(WarehouseId::from_bytes)
            && let Some(w) = warehouse(rtx, id)?
        {
            out.push(w);
        }
    }
    Ok(out)
}

pub fn vendor_warehouses_in(wtx: &WriteTransaction, vendor: VendorId) -> Result<Vec<Warehouse>> {
    let t = wtx.open_table(VENDOR_WAREHOUSE_TO_UNIT)?;
    let keys = kv::prefixed_keys(&t, &vendor.to_bytes())?;
    drop(t);
    let mut out = Vec::new();
    for k in keys {
        if let Some(id) = id16(&k[16..]).map(WarehouseId::from_bytes)
            && let Some(w) = warehouse_in(wtx, id)?
        {
            out.push(w);
        }
    }
    Ok(out)
}

// ---------- stock levels ----------

pub fn inventory(rtx: &ReadTransaction, product: ProductId) -> Result<Inventory> {
    Ok(kv::read(rtx, PRODUCT_ID_TO_INVENTORY, &product.to_bytes())?.unwrap_or_default())
}

pub fn inventory_in(wtx: &WriteTransaction, product: ProductId) -> Result<Inventory> {
    Ok(kv::read_in(wtx, PRODUCT_ID_TO_INVENTORY, &product.to_bytes())?.unwrap_or_default())
}

pub fn put_inventory(wtx: &WriteTransaction, product: ProductId, inv: &Inventory) -> Result<()> {
    kv::put(wtx, PRODUCT_ID_TO_INVENTORY, &product.to_bytes(), inv)
}

/// One quantity a vendor sets: the new on-hand count of a variant in a warehouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelUpdate {
    pub variant_id: VariantId,
    pub warehouse_id: WarehouseId,
    pub on_hand: i64,
}

/// Sets on-hand quantities, all or none. `expected_version` must be the stored version
/// (else 409 `stale_version`); a quantity below what is already reserved for orders is
/// refused (409 `below_reserved`). Emits `Inventory.Updated` per changed level and
/// `Product.BackInStock` per variant that had nothing available and now has some.
pub fn set_levels(
    tx: &mut Tx<'_>,
    product: &Product,
    expected_version: u64,
    updates: &[LevelUpdate],
    actor: &str,
    now: OffsetDateTime,
) -> Result<Inventory> {
    let mut inv = inventory_in(tx, product.id)?;
    if inv.version != expected_version {
        return Err(Error::conflict(
            "stale_version",
            format!(
                "the stock changed since version {expected_version} (now {}); reload and retry",
                inv.version
            ),
        ));
    }
    let mut errors = Vec::new();
    let warehouses = vendor_warehouses_in(tx, product.vendor_id)?;
    for (i, u) in updates.iter().enumerate() {
        if product.variant(u.variant_id).is_none() {
            errors.push(FieldError::new(
                format!("levels[{i}].variant_id"),
                "unknown_variant",
                "not a variant of this product",
            ));
        }
        if !warehouses.iter().any(|w| w.id == u.warehouse_id) {
            errors.push(FieldError::new(
                format!("levels[{i}].warehouse_id"),
                "unknown_warehouse",
                "not a warehouse of this product's vendor",
            ));
        }
        if u.on_hand < 0 || u.on_hand > 1_000_000_000 {
            errors.push(FieldError::new(
                format!("levels[{i}].on_hand"),
                "out_of_range",
                "must be between 0 and 1000000000",
            ));
        }
        if updates[..i]
            .iter()
            .any(|o| o.variant_id == u.variant_id && o.warehouse_id == u.warehouse_id)
        {
            errors.push(FieldError::new(
                format!("levels[{i}]"),
                "duplicate",
                "this variant and warehouse appear twice",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let before: BTreeMap<VariantId, i64> = product
        .variants
        .iter()
        .map(|v| (v.id, inv.available_of(v.id)))
        .collect();
    let mut changed = Vec::new();
    for u in updates {
        let level = inv.level_mut(u.variant_id, u.warehouse_id);
        if u.on_hand < level.reserved {
            return Err(Error::conflict(
                "below_reserved",
                format!(
                    "{} units are reserved for orders in that warehouse; on hand cannot go below that",
                    level.reserved
                ),
            ));
        }
        if level.on_hand != u.on_hand {
            level.on_hand = u.on_hand;
            changed.push(*level);
        }
    }
    if changed.is_empty() {
        return Ok(inv);
    }
    inv.version += 1;
    put_inventory(tx, product.id, &inv)?;
    for l in changed {
        tx.emit(inventory_updated(product.id, &l, now).with_actor(actor));
    }
    emit_back_in_stock(tx, product, &before, &inv, actor, now);
    Ok(inv)
}

fn inventory_updated(
    product: ProductId,
    l: &super::model::StockLevel,
    now: OffsetDateTime,
) -> Envelope {
    Envelope::new(
        Event::InventoryUpdated {
            product_id: product.to_string(),
            quantity: l.on_hand,
            warehouse: l.warehouse_id.to_string(),
            timestamp: now,
            variant_id: l.variant_id.to_string(),
            available: l.available(),
        },
        now,
    )
}

fn emit_back_in_stock(
    tx: &mut Tx<'_>,
    product: &Product,
    before: &BTreeMap<VariantId, i64>,
    after: &Inventory,
    actor: &str,
    now: OffsetDateTime,
) {
    for (variant, was) in before {
        if *was <= 0 && after.available_of(*variant) > 0 {
            tx.emit(
                Envelope::new(
                    Event::ProductBackInStock {
                        product_id: product.id.to_string(),
                        variant_id: variant.to_string(),
                        timestamp: now,
                    },
                    now,
                )
                .with_actor(actor),
            );
        }
    }
}

/// Drops the stock rows of variants a product no longer has. Refused (409) while any of
/// them holds reserved units, so an order's stock never disappears under it.
pub fn drop_variants(wtx: &WriteTransaction, product: &Product) -> Result<()> {
    let mut inv = inventory_in(wtx, product.id)?;
    let keep = |v: VariantId| product.variant(v).is_some();
    if let Some(l) = inv
        .levels
        .iter()
        .find(|l| !keep(l.variant_id) && l.reserved > 0)
    {
        return Err(Error::conflict(
            "variant_reserved",
            format!(
                "variant {} has stock reserved for orders and cannot be removed",
                l.variant_id
            ),
        ));
    }
    let n = inv.levels.len();
    inv.levels.retain(|l| keep(l.variant_id));
    if inv.levels.len() != n {
        inv.version += 1;
        put_inventory(wtx, product.id, &inv)?;
    }
    Ok(())
}

// ---------- reservations (called by the order service, inside its transaction) ----------

/// What an order line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReserveLine {
    pub product_id: ProductId,
    pub variant_id: VariantId,
    pub quantity: i64,
}

/// Holds stock for every line, or for none (an `Err` leaves the caller's transaction
/// free to abort; nothing here is half-done because the whole closure is discarded).
///
/// Warehouse rule, per line: the warehouse with the most available units fills the
/// line alone if it can (one parcel); otherwise the line is split across warehouses in
/// descending order of available units. Ties go to the older warehouse (smaller id).
///
/// Errors: 422 for a bad quantity, 404 for an unknown product or variant, 409
/// `not_purchasable` for a product that is not active, 409 `out_of_stock` naming the line.
pub fn reserve(tx: &mut Tx<'_>, lines: &[ReserveLine], now: OffsetDateTime) -> Result<Reservation> {
    if lines.is_empty() {
        return Err(Error::invalid(
            "lines",
            "empty",
            "at least one line is needed",
        ));
    }
    // Lines for the same variant are summed, so two lines cannot each see the same units.
    let mut wanted: BTreeMap<(ProductId, VariantId), i64> = BTreeMap::new();
    for (i, l) in lines.iter().enumerate() {
        if l.quantity < 1 || l.quantity > MAX_LINE_QUANTITY {
            return Err(Error::invalid(
                &format!("lines[{i}].quantity"),
                "out_of_range",
                format!("must be between 1 and {MAX_LINE_QUANTITY}"),
            ));
        }
        *wanted.entry((l.product_id, l.variant_id)).or_default() += l.quantity;
    }
    let mut reserved = Vec::new();
    let mut touched: BTreeMap<ProductId, Inventory> = BTreeMap::new();
    for ((pid, vid), qty) in wanted {
        let product = super::store::product_in(tx, pid)?
            .ok_or_else(|| Error::not_found(format!("product {pid}")))?;
        if product.variant(vid).is_none() {
            return Err(Error::not_found(format!("variant {vid} of product {pid}")));
        }
        let vendor_active = crate::services::vendors::store::get_in(tx, product.vendor_id)?
            .is_some_and(|v| v.status == crate::services::vendors::model::VendorStatus::Active);
        if product.status != ProductStatus::Active || !vendor_active {
            return Err(Error::conflict(
                "not_purchasable",
                format!("\"{}\" is not for sale", product.title),
            ));
        }
        let inv = match touched.entry(pid) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(inventory_in(tx, pid)?),
        };
        for (wid, n) in choose_warehouses(inv, vid, qty).ok_or_else(|| {
            Error::conflict(
                "out_of_stock",
                format!(
                    "only {} of \"{}\" available, {qty} asked",
                    inv.available_of(vid).max(0),
                    product.title
                ),
            )
        })? {
            inv.level_mut(vid, wid).reserved += n;
            reserved.push(ReservedLine {
                product_id: pid,
                variant_id: vid,
                warehouse_id: wid,
                quantity: n,
            });
        }
    }
    for (pid, inv) in &mut touched {
        inv.version += 1;
        put_inventory(tx, *pid, inv)?;
    }
    let r = Reservation {
        id: ReservationId::new(),
        lines: reserved,
        status: ReservationStatus::Held,
        created_at: now,
    };
    kv::put(tx, RESERVATION_ID_TO_RESERVATION, &r.id.to_bytes(), &r)?;
    Ok(r)
}

/// The documented warehouse rule; `None` when the variant lacks `qty` available units.
pub fn choose_warehouses(
    inv: &Inventory,
    variant: VariantId,
    qty: i64,
) -> Option<Vec<(WarehouseId, i64)>> {
    let mut candidates: Vec<(WarehouseId, i64)> = inv
        .levels
        .iter()
        .filter(|l| l.variant_id == variant && l.available() > 0)
        .map(|l| (l.warehouse_id, l.available()))
        .collect();
    candidates.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    if candidates.iter().map(|c| c.1).sum::<i64>() < qty {
        return None;
    }
    if let Some(first) = candidates.first()
        && first.1 >= qty
    {
        return Some(vec![(first.0, qty)]);
    }
    let mut left = qty;
    let mut out = Vec::new();
    for (w, avail) in candidates {
        if left == 0 {
            break;
        }
        let n = avail.min(left);
        out.push((w, n));
        left -= n;
    }
    Some(out)
}

pub fn reservation(rtx: &ReadTransaction, id: ReservationId) -> Result<Option<Reservation>> {
    kv::read(rtx, RESERVATION_ID_TO_RESERVATION, &id.to_bytes())
}

pub fn reservation_in(wtx: &WriteTransaction, id: ReservationId) -> Result<Option<Reservation>> {
    kv::read_in(wtx, RESERVATION_ID_TO_RESERVATION, &id.to_bytes())
}

/// Gives held stock back (order cancelled, payment failed). Idempotent: releasing a
/// released reservation does nothing; a committed one cannot be released (409).
pub fn release(
    tx: &mut Tx<'_>,
    id: ReservationId,
    actor: &str,
    now: OffsetDateTime,
) -> Result<Reservation> {
    finish(tx, id, ReservationStatus::Released, actor, now)
}

/// The stock left with the parcel: on hand and reserved both drop. Idempotent like
/// `release`; a released reservation cannot be committed (409).
pub fn commit(
    tx: &mut Tx<'_>,
    id: ReservationId,
    actor: &str,
    now: OffsetDateTime,
) -> Result<Reservation> {
    finish(tx, id, ReservationStatus::Committed, actor, now)
}

/// Puts returned units back on hand (a return received with restocking): each variant's
/// units go to the first warehouse the committed reservation `id` took it from. 409
/// unless the reservation was committed (the goods had left); 422 for a variant it never
/// held or a quantity above what it held. Emits `Inventory.Updated` per changed level and
/// `Product.BackInStock` where nothing was available before. The caller checks that the
/// units were delivered and returned.
pub fn restock(
    tx: &mut Tx<'_>,
    id: ReservationId,
    lines: &[(VariantId, i64)],
    actor: &str,
    now: OffsetDateTime,
) -> Result<()> {
    let r = reservation_in(tx, id)?.ok_or_else(|| Error::not_found(format!("reservation {id}")))?;
    if r.status != ReservationStatus::Committed {
        return Err(Error::conflict(
            "reservation_not_committed",
            "only stock that left with a parcel can be put back",
        ));
    }
    for (i, (variant, qty)) in lines.iter().enumerate() {
        let held: i64 = r
            .lines
            .iter()
            .filter(|l| l.variant_id == *variant)
            .map(|l| l.quantity)
            .sum();
        let Some(first) = r.lines.iter().find(|l| l.variant_id == *variant) else {
            return Err(Error::invalid(
                &format!("lines[{i}]"),
                "unknown_variant",
                "this reservation never held that variant",
            ));
        };
        if *qty < 1 || *qty > held {
            return Err(Error::invalid(
                &format!("lines[{i}].quantity"),
                "out_of_range",
                format!("must be between 1 and {held}"),
            ));
        }
        let mut inv = inventory_in(tx, first.product_id)?;
        let before = BTreeMap::from([(*variant, inv.available_of(*variant))]);
        let level = inv.level_mut(*variant, first.warehouse_id);
        level.on_hand += qty;
        let changed = *level;
        inv.version += 1;
        put_inventory(tx, first.product_id, &inv)?;
        tx.emit(inventory_updated(first.product_id, &changed, now).with_actor(actor));
        if let Some(p) = super::store::product_in(tx, first.product_id)? {
            emit_back_in_stock(tx, &p, &before, &inv, actor, now);
        }
    }
    Ok(())
}

fn finish(
    tx: &mut Tx<'_>,
    id: ReservationId,
    to: ReservationStatus,
    actor: &str,
    now: OffsetDateTime,
) -> Result<Reservation> {
    let mut r =
        reservation_in(tx, id)?.ok_or_else(|| Error::not_found(format!("reservation {id}")))?;
    if r.status == to {
        return Ok(r);
    }
    if r.status != ReservationStatus::Held {
        return Err(Error::conflict(
            "reservation_closed",
            format!("the reservation is already {:?}", r.status).to_lowercase(),
        ));
    }
    let mut by_product: BTreeMap<ProductId, Vec<&ReservedLine>> = BTreeMap::new();
    for l in &r.lines {
        by_product.entry(l.product_id).or_default().push(l);
    }
    for (pid, lines) in by_product {
        let mut inv = inventory_in(tx, pid)?;
        let product = super::store::product_in(tx, pid)?;
        let before: BTreeMap<VariantId, i64> = lines
            .iter()
            .map(|l| (l.variant_id, inv.available_of(l.variant_id)))
            .collect();
        let mut changed = Vec::new();
        for l in lines {
            let level = inv.level_mut(l.variant_id, l.warehouse_id);
            // Guards against a corrupted record rather than a reachable state.
            level.reserved = (level.reserved - l.quantity).max(0);
            if to == ReservationStatus::Committed {
                level.on_hand = (level.on_hand - l.quantity).max(level.reserved);
                changed.push(*level);
            }
        }
        inv.version += 1;
        put_inventory(tx, pid, &inv)?;
        for l in changed {
            tx.emit(inventory_updated(pid, &l, now).with_actor(actor));
        }
        if to == ReservationStatus::Released
            && let Some(p) = product
        {
            emit_back_in_stock(tx, &p, &before, &inv, actor, now);
        }
    }
    r.status = to;
    kv::put(tx, RESERVATION_ID_TO_RESERVATION, &r.id.to_bytes(), &r)?;
    Ok(r)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn inv(levels: &[(VariantId, WarehouseId, i64, i64)]) -> Inventory {
        let mut i = Inventory::default();
        for (v, w, on, res) in levels {
            let l = i.level_mut(*v, *w);
            l.on_hand = *on;
            l.reserved = *res;
        }
        i
    }

    #[test]
    fn one_warehouse_fills_a_line_when_it_can() {
        let v = VariantId::new();
        let (w1, w2) = (WarehouseId::new(), WarehouseId::new());
        let i = inv(&[(v, w1, 3, 0), (v, w2, 8, 2)]);
        assert_eq!(choose_warehouses(&i, v, 5), Some(vec![(w2, 5)]));
        assert_eq!(choose_warehouses(&i, v, 2), Some(vec![(w2, 2)]));
    }

    #[test]
    fn split_in_descending_availability_and_refuse_beyond_total() {
        let v = VariantId::new();
        let (w1, w2, w3) = (WarehouseId::new(), WarehouseId::new(), WarehouseId::new());
        let i = inv(&[(v, w1, 3, 0), (v, w2, 4, 0), (v, w3, 2, 2)]);
        assert_eq!(choose_warehouses(&i, v, 6), Some(vec![(w2, 4), (w1, 2)]));
        assert_eq!(choose_warehouses(&i, v, 7), Some(vec![(w2, 4), (w1, 3)]));
        assert_eq!(choose_warehouses(&i, v, 8), None);
        assert_eq!(choose_warehouses(&i, VariantId::new(), 1), None);
    }

    #[test]
    fn ties_go_to_the_older_warehouse() {
        let v = VariantId::new();
        let (w1, w2) = (WarehouseId::new(), WarehouseId::new());
        let i = inv(&[(v, w2, 5, 0), (v, w1, 5, 0)]);
        assert_eq!(choose_warehouses(&i, v, 5), Some(vec![(w1, 5)]));
    }
}
