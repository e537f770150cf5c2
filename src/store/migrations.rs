//! The schema version and the steps between versions. Each step runs in its own
//! transaction that also stamps the new version, so a crash mid-way resumes cleanly.
//! A database stamped by a newer souk is refused: downgrades would lose data silently.

use super::codec;
use super::tables::{CONSUMER_TO_OFFSET, META, OUTBOX_SEQ_TO_EVENT};
use crate::error::{Error, Result};
use redb::{Database, ReadableDatabase, WriteTransaction};

/// The version this binary writes. Bump it and add a `migrate_to_vN` step together.
pub const SCHEMA_VERSION: u32 = 1;
pub const SCHEMA_KEY: &str = "schema_version";
pub const OUTBOX_NEXT_SEQ: &str = "outbox_next_seq";

/// Creates the tables of a new database, or migrates an older one, or refuses a newer one.
pub fn prepare(db: &Database) -> Result<()> {
    let found = stored_version(db)?;
    match found {
        None => {
            let wtx = db.begin_write()?;
            {
                wtx.open_table(OUTBOX_SEQ_TO_EVENT)?;
                wtx.open_table(CONSUMER_TO_OFFSET)?;
                let mut meta = wtx.open_table(META)?;
                meta.insert(SCHEMA_KEY, codec::encode(&SCHEMA_VERSION)?.as_slice())?;
            }
            wtx.commit()?;
            Ok(())
        }
        Some(v) if v > SCHEMA_VERSION => Err(Error::Storage(format!(
            "the database has schema version {v}, but this souk only knows up to \
             {SCHEMA_VERSION}: run a newer souk, or restore a backup made by this version"
        ))),
        Some(mut v) => {
            while v < SCHEMA_VERSION {
                v = step(db, v)?;
            }
            Ok(())
        }
    }
}

/// The version stamped in the database, if any.
pub fn stored_version(db: &Database) -> Result<Option<u32>> {
    let rtx = db.begin_read()?;
    let meta = match rtx.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    match meta.get(SCHEMA_KEY)? {
        Some(v) => Ok(Some(codec::decode(v.value())?)),
        None => Ok(None),
    }
}

/// One function per step: `STEPS[i]` migrates version `i + 1` to `i + 2`.
/// Empty while there is only version 1.
const STEPS: &[fn(&WriteTransaction) -> Result<()>] = &[];

/// Runs the migration from `from` to `from + 1` and returns the new version.
fn step(db: &Database, from: u32) -> Result<u32> {
    let migrate = STEPS
        .get(from.saturating_sub(1) as usize)
        .ok_or_else(|| Error::Storage(format!("no migration from schema version {from}")))?;
    let wtx = db.begin_write()?;
    migrate(&wtx)?;
    let to = from + 1;
    wtx.open_table(META)?
        .insert(SCHEMA_KEY, codec::encode(&to)?.as_slice())?;
    wtx.commit()?;
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_schema_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("x.redb")).unwrap();
        prepare(&db).unwrap();
        assert_eq!(stored_version(&db).unwrap(), Some(SCHEMA_VERSION));
        let wtx = db.begin_write().unwrap();
        wtx.open_table(META)
            .unwrap()
            .insert(
                SCHEMA_KEY,
                codec::encode(&(SCHEMA_VERSION + 1)).unwrap().as_slice(),
            )
            .unwrap();
        wtx.commit().unwrap();
        let e = prepare(&db).unwrap_err().to_string();
        assert!(e.contains("newer souk"), "{e}");
    }
}
