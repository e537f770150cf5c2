//! Category commands: create, rename, move (refusing cycles and re-listing the products
//! below a moved category), delete (refused while anything is filed under it). Admins only;
//! the tree is read through `queries.rs`.

use super::input::{self, Checks};
use super::model::{self, Category, CategoryId, ProductStatus};
use super::queries::{self, CategoryView};
use super::store;
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{Error, Result};

pub async fn create_category(
    state: &AppState,
    p: &Principal,
    input: input::CategoryInput,
) -> Result<CategoryView> {
    p.require_admin()?;
    let mut c = Checks::default();
    let name = input::line(&mut c, "name", &input.name, 1, 100);
    let slug = input.slug.as_ref().map(|s| input::slug(&mut c, "slug", s));
    c.finish()?;
    let now = state.clock.now();
    let cat = state
        .store
        .write(move |tx| {
            if let Some(parent) = input.parent
                && store::category_in(tx, parent)?.is_none()
            {
                return Err(Error::invalid(
                    "parent",
                    "unknown_category",
                    "no such category",
                ));
            }
            let slug = match slug {
                Some(s) if store::category_slug_taken(tx, &s)?.is_some() => {
                    return Err(Error::invalid(
                        "slug",
                        "taken",
                        "another category has this slug",
                    ));
                }
                Some(s) => s,
                None => unique_slug(&model::slugify(&name), "category", |s| {
                    store::category_slug_taken(tx, s).map(|o| o.is_some())
                })?,
            };
            let cat = Category {
                id: CategoryId::new(),
                name,
                slug,
                parent: input.parent,
                created_at: now,
            };
            store::put_category(tx, None, &cat)?;
            Ok(cat)
        })
        .await?;
    queries::category(state, cat.id)
}

/// A slug free of collisions: `base`, then `base-2`, `base-3`... (`kind` when `base` is
/// empty, e.g. a title in a script slugs do not cover).
pub fn unique_slug(
    base: &str,
    kind: &str,
    mut taken: impl FnMut(&str) -> Result<bool>,
) -> Result<String> {
    let base = if base.is_empty() {
        kind.to_string()
    } else {
        base.to_string()
    };
    if !taken(&base)? {
        return Ok(base);
    }
    for n in 2..10_000u32 {
        let s = format!("{base}-{n}");
        if !taken(&s)? {
            return Ok(s);
        }
    }
    Ok(format!("{base}-{}", uuid::Uuid::now_v7().simple()))
}

/// Renames or moves a category. A move under itself or one of its descendants is refused
/// (409 `category_cycle`); the products below it are re-listed under the new ancestors.
pub async fn update_category(
    state: &AppState,
    p: &Principal,
    id: CategoryId,
    input: input::CategoryUpdate,
) -> Result<CategoryView> {
    p.require_admin()?;
    let mut c = Checks::default();
    let name = input
        .name
        .as_ref()
        .map(|n| input::line(&mut c, "name", n, 1, 100));
    let slug = input.slug.as_ref().map(|s| input::slug(&mut c, "slug", s));
    c.finish()?;
    state
        .store
        .write(move |tx| {
            let old = store::category_in(tx, id)?.ok_or_else(|| Error::not_found("category"))?;
            let mut new = old.clone();
            if let Some(n) = name {
                new.name = n;
            }
            if let Some(s) = slug {
                if s != old.slug && store::category_slug_taken(tx, &s)?.is_some() {
                    return Err(Error::invalid(
                        "slug",
                        "taken",
                        "another category has this slug",
                    ));
                }
                new.slug = s;
            }
            if let Some(parent) = input.parent {
                if let Some(pid) = parent {
                    if store::category_in(tx, pid)?.is_none() {
                        return Err(Error::invalid(
                            "parent",
                            "unknown_category",
                            "no such category",
                        ));
                    }
                    if store::ancestry_in(tx, pid)?.contains(&id) {
                        return Err(Error::conflict(
                            "category_cycle",
                            "a category cannot move under itself or one of its descendants",
                        ));
                    }
                }
                new.parent = parent;
            }
            if new.parent != old.parent {
                // Listing keys include every ancestor: take the subtree's active products
                // out under the old ancestry and back in under the new one.
                let mut moved = Vec::new();
                for cat in store::subtree_in(tx, id)? {
                    for pid in store::products_in_category_in(tx, cat)? {
                        if let Some(prod) = store::product_in(tx, pid)?
                            && prod.status == ProductStatus::Active
                        {
                            store::unindex(tx, &prod)?;
                            moved.push(prod);
                        }
                    }
                }
                store::put_category(tx, Some(&old), &new)?;
                for prod in &moved {
                    store::index(tx, prod)?;
                }
            } else {
                store::put_category(tx, Some(&old), &new)?;
            }
            Ok(())
        })
        .await?;
    queries::category(state, id)
}

/// Deletes an empty category; one with subcategories or products (archived ones too,
/// since old orders still point at them) is refused with 409 `category_not_empty`.
pub async fn delete_category(state: &AppState, p: &Principal, id: CategoryId) -> Result<()> {
    p.require_admin()?;
    state
        .store
        .write(move |tx| {
            let c = store::category_in(tx, id)?.ok_or_else(|| Error::not_found("category"))?;
            if store::has_children_in(tx, id)? {
                return Err(Error::conflict(
                    "category_not_empty",
                    "the category has subcategories; move or delete them first",
                ));
            }
            let n = store::products_in_category_in(tx, id)?.len();
            if n > 0 {
                return Err(Error::conflict(
                    "category_not_empty",
                    format!("{n} product(s) are filed under this category (archived ones count); move them first"),
                ));
            }
            store::delete_category(tx, &c)
        })
        .await
}
