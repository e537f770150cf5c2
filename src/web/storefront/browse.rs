//! Browsing: the category page and search results, one engine (search) with facets,
//! filters, sort and pages, the whole state in the URL so links can be shared and
//! back/forward works. "Did you mean" comes from the words the engine corrected.

use crate::app::AppState;
use crate::error::Error;
use crate::money::Money;
use crate::services::catalog::queries::{self, ProductSummary};
use crate::services::search::{self, SearchAnswer, SearchRequest, request::Affinity};
use crate::web::{Page, PageResult, WebError, render, urlencode};
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use serde::Serialize;
use serde_json::Value;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/search", get(search_page))
        .route("/c/{slug}", get(category_page))
        .route("/v/{id}", get(super::vendors::vendor_page))
}

/// A product card: what lists on every page show.
#[derive(Debug, Clone, Serialize)]
pub struct Card {
    pub slug: String,
    pub title: String,
    pub price: Option<Money>,
    /// Set when variants differ in price ("from").
    pub price_varies: bool,
    pub image: Option<String>,
    pub vendor_name: String,
    pub brand: Option<String>,
    pub in_stock: bool,
}

impl From<&ProductSummary> for Card {
    fn from(p: &ProductSummary) -> Card {
        Card {
            slug: p.slug.clone(),
            title: p.title.clone(),
            price: p.price,
            price_varies: false,
            image: p.image.as_ref().map(|i| i.card.clone()),
            vendor_name: p.vendor.name.clone(),
            brand: p.brand.clone(),
            in_stock: p.in_stock,
        }
    }
}

impl From<&search::Hit> for Card {
    fn from(h: &search::Hit) -> Card {
        Card {
            slug: h.view.slug.clone(),
            title: h.view.title.clone(),
            price: Some(h.view.price_min),
            price_varies: h.view.price_min.amount != h.view.price_max.amount,
            image: h.view.image.clone(),
            vendor_name: h.view.vendor_name.clone(),
            brand: h.view.brand.clone(),
            in_stock: h.view.in_stock,
        }
    }
}

/// One facet value as a link that toggles it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FacetValue {
    pub label: String,
    pub value: String,
    pub count: u64,
    pub selected: bool,
    pub url: String,
}

/// The browsing state, exactly what the URL carries.
#[derive(Debug, Clone, Default)]
pub(super) struct Browse {
    pub(super) q: String,
    pub(super) category: Option<String>,
    pub(super) brands: Vec<String>,
    pub(super) vendors: Vec<String>,
    pub(super) price: Option<String>,
    pub(super) in_stock: bool,
    pub(super) sort: Option<String>,
    pub(super) page: usize,
    /// The vendor a vendor page is about: searched, never in the page's links.
    pub(super) fixed_vendor: Option<String>,
}

const PAGE_SIZE: usize = 24;
const SORTS: &[&str] = &[
    "relevance",
    "popularity",
    "newest",
    "price_asc",
    "price_desc",
];

impl Browse {
    /// Known parameters only: a page ignores what it does not know (old links keep working).
    pub(super) fn parse(raw: Option<&str>) -> Browse {
        let mut b = Browse {
            page: 1,
            ..Default::default()
        };
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let v = v.into_owned();
            match k.as_ref() {
                "q" => b.q = v,
                "category" if !v.is_empty() => b.category = Some(v),
                "brand" if !v.is_empty() => b.brands.push(v),
                "vendor" if !v.is_empty() => b.vendors.push(v),
                "price" if !v.is_empty() => b.price = Some(v),
                "in_stock" => b.in_stock = v == "true" || v == "1",
                "sort" if !v.is_empty() => b.sort = Some(v),
                "page" => b.page = v.parse().unwrap_or(1).max(1),
                _ => {}
            }
        }
        b
    }

    /// The query string for this state (`page` 1 and defaults left out).
    fn query(&self, with_category: bool) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        if !self.q.is_empty() {
            s.append_pair("q", &self.q);
        }
        if with_category && let Some(c) = &self.category {
            s.append_pair("category", c);
        }
        for b in &self.brands {
            s.append_pair("brand", b);
        }
        for v in &self.vendors {
            s.append_pair("vendor", v);
        }
        if let Some(p) = &self.price {
            s.append_pair("price", p);
        }
        if self.in_stock {
            s.append_pair("in_stock", "true");
        }
        if let Some(o) = &self.sort {
            s.append_pair("sort", o);
        }
        if self.page > 1 {
            s.append_pair("page", &self.page.to_string());
        }
        s.finish()
    }

    fn pairs(&self, default_sort: &str) -> Vec<(String, String)> {
        let mut p = vec![
            ("q".to_string(), self.q.clone()),
            ("facets".into(), "category,brand,vendor,price".into()),
            ("limit".into(), PAGE_SIZE.to_string()),
            ("page".into(), self.page.to_string()),
            (
                "sort".into(),
                self.sort
                    .clone()
                    .unwrap_or_else(|| default_sort.to_string()),
            ),
        ];
        if let Some(c) = &self.category {
            p.push(("category".into(), c.clone()));
        }
        p.extend(self.brands.iter().map(|b| ("brand".into(), b.clone())));
        p.extend(self.vendors.iter().map(|v| ("vendor".into(), v.clone())));
        if let Some(v) = &self.fixed_vendor {
            p.push(("vendor".into(), v.clone()));
        }
        if let Some(pr) = &self.price {
            p.push(("price".into(), pr.clone()));
        }
        if self.in_stock {
            p.push(("in_stock".into(), "true".into()));
        }
        p
    }
}

#[derive(Serialize)]
struct PageLink {
    number: usize,
    url: String,
    current: bool,
}

#[derive(Serialize)]
pub(super) struct Results {
    q: String,
    base: String,
    pub(super) heading: String,
    category: Option<queries::CategoryView>,
    pub(super) vendor: Option<crate::services::catalog::storefront::VendorProfile>,
    breadcrumbs: Vec<queries::CategoryView>,
    cards: Vec<Card>,
    total: u64,
    did_you_mean: Option<String>,
    did_you_mean_url: Option<String>,
    categories: Vec<FacetValue>,
    brands: Vec<FacetValue>,
    pub(super) vendors: Vec<FacetValue>,
    prices: Vec<FacetValue>,
    in_stock: bool,
    in_stock_url: String,
    clear_url: String,
    pub(super) sort: String,
    sorts: Vec<(String, String)>,
    hidden: Vec<(String, String)>,
    pages: Vec<PageLink>,
    prev_url: Option<String>,
    next_url: Option<String>,
    canonical_path: String,
    filtered: bool,
}

fn link(base: &str, b: &Browse, with_category: bool) -> String {
    let q = b.query(with_category);
    if q.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{q}")
    }
}

fn toggle(list: &[String], v: &str) -> Vec<String> {
    if list.iter().any(|x| x == v) {
        list.iter().filter(|x| *x != v).cloned().collect()
    } else {
        let mut l = list.to_vec();
        l.push(v.to_string());
        l
    }
}

/// The words the engine replaced with another word (not completions): "did you mean".
pub fn correction(a: &SearchAnswer) -> Option<String> {
    let mut changed = false;
    let words: Vec<String> = a
        .query
        .words
        .iter()
        .map(|w| {
            let input = w.input.to_lowercase();
            match w.matches.first() {
                Some(m) if !w.matches.contains(&input) && !m.starts_with(&input) => {
                    changed = true;
                    m.clone()
                }
                _ => w.input.clone(),
            }
        })
        .collect();
    changed.then(|| words.join(" "))
}

pub(super) fn facet_list(v: Option<&Value>) -> Vec<&serde_json::Map<String, Value>> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default()
}

pub(super) fn build(
    state: &AppState,
    base: &str,
    b: &Browse,
    a: &SearchAnswer,
    with_category: bool,
) -> Results {
    let i18n = &state.web.i18n;
    let cur = crate::services::catalog::currency(state).to_string();
    let at_page_1 = |mut x: Browse| {
        x.page = 1;
        x
    };
    let brands = facet_list(a.facets.get("brand"))
        .into_iter()
        .filter_map(|o| {
            let value = o.get("value")?.as_str()?.to_string();
            let mut nb = at_page_1(b.clone());
            nb.brands = toggle(&b.brands, &value);
            Some(FacetValue {
                label: value.clone(),
                selected: b.brands.contains(&value),
                count: o.get("count")?.as_u64()?,
                url: link(base, &nb, with_category),
                value,
            })
        })
        .collect();
    let vendors = facet_list(a.facets.get("vendor"))
        .into_iter()
        .filter_map(|o| {
            let value = o.get("value")?.as_str()?.to_string();
            let mut nb = at_page_1(b.clone());
            nb.vendors = toggle(&b.vendors, &value);
            Some(FacetValue {
                label: o.get("name")?.as_str().unwrap_or(&value).to_string(),
                selected: b.vendors.contains(&value),
                count: o.get("count")?.as_u64()?,
                url: link(base, &nb, with_category),
                value,
            })
        })
        .collect();
    let prices = facet_list(a.facets.get("price"))
        .into_iter()
        .filter_map(|o| {
            let min = o.get("min").and_then(Value::as_i64);
            let max = o.get("max").and_then(Value::as_i64);
            let value = format!(
                "{}..{}",
                min.map(|m| m.to_string()).unwrap_or_default(),
                max.map(|m| (m - 1).to_string()).unwrap_or_default()
            );
            let label = match (min, max) {
                (None, Some(x)) => i18n.t_with(
                    "browse.price_under",
                    &[("max", &super::super::i18n::money(x, &cur))],
                ),
                (Some(n), None) => i18n.t_with(
                    "browse.price_over",
                    &[("min", &super::super::i18n::money(n, &cur))],
                ),
                (Some(n), Some(x)) => format!(
                    "{} – {}",
                    super::super::i18n::money(n, &cur),
                    super::super::i18n::money(x, &cur)
                ),
                (None, None) => return None,
            };
            let selected = b.price.as_deref() == Some(value.as_str());
            let mut nb = at_page_1(b.clone());
            nb.price = if selected { None } else { Some(value.clone()) };
            Some(FacetValue {
                label,
                selected,
                count: o.get("count")?.as_u64()?,
                url: link(base, &nb, with_category),
                value,
            })
        })
        .collect();
    // Categories: on a category page its children; on search the top level.
    let categories = facet_list(a.facets.get("category"))
        .into_iter()
        .filter_map(|o| {
            let slug = o.get("slug")?.as_str()?.to_string();
            let mut nb = at_page_1(b.clone());
            let url = if with_category {
                nb.category = Some(slug.clone());
                link(base, &nb, true)
            } else {
                link(&format!("/c/{slug}"), &nb, false)
            };
            Some(FacetValue {
                label: o.get("name")?.as_str()?.to_string(),
                selected: b.category.as_deref() == Some(slug.as_str()),
                count: o.get("count")?.as_u64()?,
                url,
                value: slug,
            })
        })
        .collect();
    let mut ns = at_page_1(b.clone());
    ns.in_stock = !b.in_stock;
    let in_stock_url = link(base, &ns, with_category);
    let clear = Browse {
        q: b.q.clone(),
        page: 1,
        sort: b.sort.clone(),
        category: if with_category {
            None
        } else {
            b.category.clone()
        },
        ..Default::default()
    };
    let total_pages = (a.total as usize)
        .div_ceil(PAGE_SIZE)
        .min(search::request::MAX_OFFSET / PAGE_SIZE);
    let page_url = |n: usize| {
        let mut x = b.clone();
        x.page = n;
        link(base, &x, with_category)
    };
    let lo = b.page.saturating_sub(3).max(1);
    let hi = (b.page + 3).min(total_pages);
    let pages = (lo..=hi)
        .map(|n| PageLink {
            number: n,
            url: page_url(n),
            current: n == b.page,
        })
        .collect();
    let did_you_mean = correction(a);
    let did_you_mean_url = did_you_mean
        .as_ref()
        .map(|q| format!("/search?q={}", urlencode(q)));
    let mut hidden = Vec::new();
    for (k, v) in form_urlencoded::parse(at_page_1(b.clone()).query(with_category).as_bytes()) {
        if k != "sort" {
            hidden.push((k.into_owned(), v.into_owned()));
        }
    }
    let mut canon = Browse {
        q: b.q.clone(),
        page: b.page,
        ..Default::default()
    };
    if with_category {
        canon.category = b.category.clone();
    }
    Results {
        q: b.q.clone(),
        base: base.to_string(),
        heading: String::new(),
        category: None,
        vendor: None,
        breadcrumbs: Vec::new(),
        cards: a.items.iter().map(Card::from).collect(),
        total: a.total,
        did_you_mean,
        did_you_mean_url,
        categories,
        brands,
        vendors,
        prices,
        in_stock: b.in_stock,
        in_stock_url,
        clear_url: link(base, &clear, with_category),
        sort: b.sort.clone().unwrap_or_default(),
        sorts: SORTS
            .iter()
            .map(|s| (s.to_string(), i18n.t(&format!("browse.sort_{s}"))))
            .collect(),
        hidden,
        pages,
        prev_url: (b.page > 1).then(|| page_url(b.page - 1)),
        next_url: (b.page < total_pages).then(|| page_url(b.page + 1)),
        canonical_path: link(base, &canon, with_category),
        filtered: !b.brands.is_empty()
            || !b.vendors.is_empty()
            || b.price.is_some()
            || b.in_stock
            || (with_category && b.category.is_some()),
    }
}

pub(super) async fn run_search(
    state: &AppState,
    page: &Page,
    b: &Browse,
    default_sort: &str,
) -> Result<SearchAnswer, WebError> {
    let req = SearchRequest::parse(&b.pairs(default_sort), &state.search.config)?;
    let affinity = if req.personalize {
        state.search.affinity(page.principal().map(|p| p.user_id))
    } else {
        Affinity::default()
    };
    // Recorded like an API search, so the shop's own searches feed analytics and trending.
    let visitor = search::Visitor {
        user_id: page.principal().map(|p| p.user_id.to_string()),
        session_id: Some(page.viewer.visitor.clone()),
    };
    search::search_as_async(state, req, affinity, visitor)
        .await
        .map_err(WebError::search)
}

async fn search_page(
    State(state): State<AppState>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let b = Browse::parse(raw.as_deref());
    let default_sort = if b.q.trim().is_empty() {
        "popularity"
    } else {
        "relevance"
    };
    let a = run_search(&state, &page, &b, default_sort).await?;
    let mut r = build(&state, "/search", &b, &a, true);
    r.heading = if b.q.is_empty() {
        state.web.i18n.t("browse.all_products")
    } else {
        state.web.i18n.t_with("browse.results_for", &[("q", &b.q)])
    };
    if r.sort.is_empty() {
        r.sort = default_sort.into();
    }
    render(&state, &page, "storefront/results.html", r)
}

async fn category_page(
    State(state): State<AppState>,
    page: Page,
    Path(slug): Path<String>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let tree = crate::web::cache::category_tree(&state)?;
    let cats = &tree.all;
    let Some(cat) = tree.by_slug(&slug) else {
        return Err(Error::not_found("category").into());
    };
    let mut b = Browse::parse(raw.as_deref());
    b.category = Some(cat.id.to_string());
    let a = run_search(&state, &page, &b, "popularity").await?;
    let base = format!("/c/{slug}");
    let mut r = build(&state, &base, &b, &a, false);
    r.heading = cat.name.clone();
    if r.sort.is_empty() {
        r.sort = "popularity".into();
    }
    // The facet lists this category's children (its own node is the top of the tree).
    r.categories = children_facets(&a, cat, &b, cats);
    r.breadcrumbs = ancestry(cats, cat);
    r.category = Some(cat.clone());
    render(&state, &page, "storefront/results.html", r)
}

fn ancestry(
    cats: &[queries::CategoryView],
    cat: &queries::CategoryView,
) -> Vec<queries::CategoryView> {
    let mut out = Vec::new();
    let mut cur = cat.parent;
    while let Some(p) = cur.and_then(|id| cats.iter().find(|c| c.id == id)) {
        if out.len() > cats.len() {
            break;
        }
        out.push(p.clone());
        cur = p.parent;
    }
    out.reverse();
    out
}

fn children_facets(
    a: &SearchAnswer,
    cat: &queries::CategoryView,
    b: &Browse,
    cats: &[queries::CategoryView],
) -> Vec<FacetValue> {
    let id = cat.id.to_string();
    fn find<'a>(nodes: &'a [Value], id: &str) -> Option<&'a Value> {
        for n in nodes {
            if n.get("id").and_then(Value::as_str) == Some(id) {
                return Some(n);
            }
            if let Some(c) = n.get("children").and_then(Value::as_array)
                && let Some(f) = find(c, id)
            {
                return Some(f);
            }
        }
        None
    }
    let tree = a.facets.get("category").and_then(Value::as_array);
    let children = tree
        .and_then(|t| find(t, &id))
        .and_then(|n| n.get("children"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut keep = b.clone();
    keep.category = None;
    keep.page = 1;
    children
        .iter()
        .filter_map(|n| {
            let slug = n.get("slug")?.as_str()?.to_string();
            cats.iter().find(|c| c.slug == slug)?;
            Some(FacetValue {
                label: n.get("name")?.as_str()?.to_string(),
                count: n.get("count")?.as_u64()?,
                selected: false,
                url: link(&format!("/c/{slug}"), &keep, false),
                value: slug,
            })
        })
        .collect()
}
