//! Product images: content sniffing (JPEG, PNG, WebP, GIF by their magic bytes, never by
//! name), the size limit, resized variants made once at upload, and content-addressed
//! files under `<data_dir>/blobs/ab/cd/<sha256>` with their metadata in redb. A refused
//! upload stores nothing. Knows nothing of HTTP; `api.rs` maps `MediaError` to 413/415.

use super::model::{ProductId, ProductImage, ProductStatus};
use super::queries::ProductView;
use crate::app::AppState;
use crate::auth::{Principal, Role, kv};
use crate::error::{Error, Result};
use crate::store::tables::BLOB_HASH_TO_MEDIA;
use image::{DynamicImage, ImageFormat};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The image formats accepted, told apart by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Jpeg,
    Png,
    Webp,
    Gif,
}

impl Kind {
    pub fn sniff(bytes: &[u8]) -> Option<Kind> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Kind::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Kind::Png)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(Kind::Gif)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Kind::Webp)
        } else {
            None
        }
    }

    pub fn content_type(&self) -> &'static str {
        match self {
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Webp => "image/webp",
            Kind::Gif => "image/gif",
        }
    }

    pub fn ext(&self) -> &'static str {
        match self {
            Kind::Jpeg => "jpg",
            Kind::Png => "png",
            Kind::Webp => "webp",
            Kind::Gif => "gif",
        }
    }

    fn format(&self) -> ImageFormat {
        match self {
            Kind::Jpeg => ImageFormat::Jpeg,
            Kind::Png => ImageFormat::Png,
            Kind::Webp => ImageFormat::WebP,
            Kind::Gif => ImageFormat::Gif,
        }
    }
}

/// Why an upload was refused; `Other` for everything a plain `Error` says.
#[derive(Debug)]
pub enum MediaError {
    /// 413.
    TooLarge {
        limit: usize,
    },
    /// 415: not one of the accepted formats.
    Unsupported,
    Other(Error),
}

impl From<Error> for MediaError {
    fn from(e: Error) -> Self {
        MediaError::Other(e)
    }
}

/// The widest side of each resized variant, in pixels; never enlarged.
pub const VARIANTS: [(&str, u32); 3] = [("thumbnail", 160), ("card", 480), ("full", 1600)];

/// One stored file's metadata, keyed by its SHA-256.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Media {
    pub hash: String,
    pub kind: Kind,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
}

/// The files an upload produced, before they are attached to a product.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub original: Media,
    /// (variant name, media), in `VARIANTS` order.
    pub variants: Vec<(String, Media)>,
    /// Encoded files to write: (media, bytes).
    pub files: Vec<(Media, Vec<u8>)>,
}

impl Prepared {
    pub fn image(&self, alt: String) -> ProductImage {
        let name = |m: &Media| format!("{}.{}", m.hash, m.kind.ext());
        let v = |n: &str| {
            self.variants
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, m)| name(m))
                .unwrap_or_else(|| name(&self.original))
        };
        ProductImage {
            id: self.original.hash.clone(),
            alt,
            original: name(&self.original),
            thumbnail: v("thumbnail"),
            card: v("card"),
            full: v("full"),
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks and decodes an upload and makes its variants. CPU-heavy: call it off the
/// async threads. Variants are JPEG (PNG when the image has transparency).
pub fn prepare(
    bytes: Vec<u8>,
    max_bytes: usize,
    max_dimension: u32,
) -> std::result::Result<Prepared, MediaError> {
    if bytes.len() > max_bytes {
        return Err(MediaError::TooLarge { limit: max_bytes });
    }
    let kind = Kind::sniff(&bytes).ok_or(MediaError::Unsupported)?;
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(&bytes), kind.format());
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(max_dimension);
    limits.max_image_height = Some(max_dimension);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| {
        MediaError::Other(Error::invalid(
            "file",
            "invalid_image",
            format!("the {} could not be decoded: {e}", kind.content_type()),
        ))
    })?;
    let original = Media {
        hash: sha256_hex(&bytes),
        kind,
        bytes: bytes.len() as u64,
        width: img.width(),
        height: img.height(),
    };
    let mut files = vec![(original.clone(), bytes)];
    let mut variants = Vec::new();
    for (name, side) in VARIANTS {
        let (data, vkind, w, h) = encode_variant(&img, side)?;
        let m = Media {
            hash: sha256_hex(&data),
            kind: vkind,
            bytes: data.len() as u64,
            width: w,
            height: h,
        };
        variants.push((name.to_string(), m.clone()));
        files.push((m, data));
    }
    Ok(Prepared {
        original,
        variants,
        files,
    })
}

fn encode_variant(img: &DynamicImage, side: u32) -> Result<(Vec<u8>, Kind, u32, u32)> {
    let resized = if img.width() > side || img.height() > side {
        img.resize(side, side, image::imageops::FilterType::Triangle)
    } else {
        img.clone()
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let kind = if resized.color().has_alpha() {
        resized
            .write_to(&mut out, ImageFormat::Png)
            .map_err(Error::internal)?;
        Kind::Png
    } else {
        let rgb = DynamicImage::ImageRgb8(resized.to_rgb8());
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
        rgb.write_with_encoder(enc).map_err(Error::internal)?;
        Kind::Jpeg
    };
    Ok((out.into_inner(), kind, resized.width(), resized.height()))
}

/// `<data_dir>/blobs/ab/cd/<hash>`: two levels of fan-out keep directories small.
pub fn blob_path(data_dir: &Path, hash: &str) -> Option<PathBuf> {
    if hash.len() != 64
        || !hash
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    Some(
        data_dir
            .join("blobs")
            .join(&hash[..2])
            .join(&hash[2..4])
            .join(hash),
    )
}

/// Writes a blob once: an existing file with this hash already holds these bytes.
/// Written to a temporary name and renamed, so a reader never sees half a file.
pub fn write_blob(data_dir: &Path, hash: &str, bytes: &[u8]) -> Result<()> {
    let path = blob_path(data_dir, hash).ok_or_else(|| Error::internal("bad blob hash"))?;
    if path.exists() {
        return Ok(());
    }
    let dir = path
        .parent()
        .ok_or_else(|| Error::internal("blob path without parent"))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::Storage(format!("{}: {e}", dir.display())))?;
    let tmp = dir.join(format!(".{hash}.{}", uuid::Uuid::now_v7().simple()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::Storage(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::Storage(format!("{}: {e}", path.display())))
}

/// Writes the files of a prepared upload and their metadata rows (in the caller's
/// transaction: the rows only exist if it commits).
pub fn store_files(
    data_dir: &Path,
    wtx: &redb::WriteTransaction,
    prepared: &Prepared,
) -> Result<()> {
    for (m, data) in &prepared.files {
        write_blob(data_dir, &m.hash, data)?;
        let bytes = crate::store::codec::encode(m)?;
        wtx.open_table(BLOB_HASH_TO_MEDIA)?
            .insert(m.hash.as_str(), bytes.as_slice())?;
    }
    Ok(())
}

/// Attaches an uploaded image to a product its caller owns. Ownership and the image count
/// are checked before anything is written to disk.
pub async fn attach(
    state: &AppState,
    p: &Principal,
    id: ProductId,
    bytes: Vec<u8>,
    alt: String,
) -> std::result::Result<ProductView, MediaError> {
    if p.role == Role::Customer {
        return Err(Error::Forbidden("only vendors and admins change the catalog".into()).into());
    }
    let mut c = super::input::Checks::default();
    let alt = super::input::line(&mut c, "alt", &alt, 0, 200);
    c.finish()?;
    let max_images = state.config.catalog.max_images;
    {
        let rtx = state.store.read()?;
        let prod = super::store::product(&rtx, id)?.ok_or_else(|| Error::not_found("product"))?;
        p.require_vendor_of(prod.vendor_id)
            .map_err(|_| Error::not_found("product"))?;
        if prod.images.len() >= max_images {
            return Err(Error::conflict(
                "too_many_images",
                format!("a product has at most {max_images} images"),
            )
            .into());
        }
    }
    let cfg = state.config.catalog.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        prepare(bytes, cfg.image_max_bytes, cfg.image_max_dimension)
    })
    .await
    .map_err(|e| MediaError::Other(Error::internal(e)))??;
    let data_dir = state.config.data_dir.clone();
    let now = state.clock.now();
    let actor = p.actor();
    let principal = p.clone();
    state
        .store
        .write(move |tx| {
            let old =
                super::store::product_in(tx, id)?.ok_or_else(|| Error::not_found("product"))?;
            principal
                .require_vendor_of(old.vendor_id)
                .map_err(|_| Error::not_found("product"))?;
            if old.images.len() >= max_images {
                return Err(Error::conflict(
                    "too_many_images",
                    format!("a product has at most {max_images} images"),
                ));
            }
            if old.images.iter().any(|i| i.id == prepared.original.hash) {
                return Err(Error::conflict(
                    "duplicate_image",
                    "this image is already attached to the product",
                ));
            }
            if old.status == ProductStatus::Archived {
                return Err(Error::conflict(
                    "product_archived",
                    "an archived product cannot change",
                ));
            }
            store_files(&data_dir, tx, &prepared)?;
            let mut new = old.clone();
            new.images.push(prepared.image(alt));
            new.version += 1;
            new.updated_at = now;
            let changes = super::diff(&old, &new);
            super::save_changed(tx, &old, &new, changes, &actor, now)
        })
        .await?;
    Ok(super::queries::product_for(state, Some(p), &id.to_string())?.0)
}

/// A media file by its public name `<sha256>.<ext>`: its bytes and content type.
pub async fn read(state: &AppState, name: &str) -> Result<(Vec<u8>, String)> {
    let hash = name.split_once('.').map(|(h, _)| h).unwrap_or(name);
    let path = blob_path(&state.config.data_dir, hash).ok_or_else(|| Error::not_found("media"))?;
    let meta: Media = {
        let rtx = state.store.read()?;
        let Some(t) = kv::open_ro(&rtx, BLOB_HASH_TO_MEDIA)? else {
            return Err(Error::not_found("media"));
        };
        match t.get(hash)? {
            Some(v) => crate::store::codec::decode(v.value())?,
            None => return Err(Error::not_found("media")),
        }
    };
    if name != format!("{hash}.{}", meta.kind.ext()) {
        return Err(Error::not_found("media"));
    }
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| Error::not_found("media"))?;
    Ok((bytes, meta.kind.content_type().to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 90]));
        let mut out = std::io::Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img)
            .write_to(&mut out, ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn sniffing_goes_by_content() {
        assert_eq!(Kind::sniff(&png(2, 2)), Some(Kind::Png));
        assert_eq!(Kind::sniff(b"\xFF\xD8\xFF\xE0rest"), Some(Kind::Jpeg));
        assert_eq!(Kind::sniff(b"GIF89a...."), Some(Kind::Gif));
        assert_eq!(Kind::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Kind::Webp));
        assert_eq!(Kind::sniff(b"RIFF\0\0\0\0AVI LIST"), None);
        assert_eq!(Kind::sniff(b"hello, I am a text file named cat.png"), None);
        assert_eq!(Kind::sniff(b"<svg xmlns=...>"), None);
        assert_eq!(Kind::sniff(b""), None);
    }

    #[test]
    fn variants_are_made_once_and_never_enlarged() {
        let p = prepare(png(800, 400), 10_000_000, 8000).unwrap();
        assert_eq!((p.original.width, p.original.height), (800, 400));
        let dims: Vec<_> = p
            .variants
            .iter()
            .map(|(n, m)| (n.as_str(), m.width, m.height))
            .collect();
        assert_eq!(
            dims,
            [
                ("thumbnail", 160, 80),
                ("card", 480, 240),
                ("full", 800, 400)
            ]
        );
        assert!(p.variants.iter().all(|(_, m)| m.kind == Kind::Jpeg));
        assert_eq!(p.files.len(), 4);
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            prepare(png(10, 10), 20, 8000),
            Err(MediaError::TooLarge { limit: 20 })
        ));
        assert!(matches!(
            prepare(b"plain text".to_vec(), 1000, 8000),
            Err(MediaError::Unsupported)
        ));
        let mut broken = png(10, 10);
        broken.truncate(30);
        assert!(matches!(
            prepare(broken, 1000, 8000),
            Err(MediaError::Other(Error::Validation(_)))
        ));
        assert!(matches!(
            prepare(png(300, 10), 1_000_000, 200),
            Err(MediaError::Other(_))
        ));
    }

    #[test]
    fn blob_paths_fan_out_and_refuse_non_hashes() {
        let h = sha256_hex(b"x");
        let p = blob_path(Path::new("/d"), &h).unwrap();
        assert_eq!(
            p,
            Path::new("/d/blobs").join(&h[..2]).join(&h[2..4]).join(&h)
        );
        assert!(blob_path(Path::new("/d"), "../../etc/passwd").is_none());
        assert!(blob_path(Path::new("/d"), &h.to_uppercase()).is_none());
    }
}
