//! A journalist's data, theirs (SPEC §6): everything the ledger holds about one address
//! (`export`), and its erasure (`erase`), which leaves only a keyed hash of the address in
//! `erasures` — the proof that keeps their opt-out. The ledger's key (`ErasureKey`, from
//! the tokens' secret) tells an erased address wherever mail is decided: the opt-outs a
//! hand-off reads (`OptedOut`), a fill's batch and a media sync (`audience.rs`).
//!
//! What is personal is found by the `address` column (lower-cased, the key of every table
//! that names a person), in every table that has one, so a table added later (an outbox, a
//! digest log) is exported and erased with the rest. Delivery rows are deleted, not kept
//! under the hash: a row is a record of a mail sent to that person, its Message-ID an
//! unkeyed digest of the address, its reply often the address itself; kept, they would
//! tie the hash (and so anyone holding the key and a guess) to every release they were
//! sent. What the office loses is one line per release in `report`; what must hold — never
//! mailed again — is the hash's to keep.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::params;
use rusqlite::types::ValueRef;
use serde_json::{Map, Value};

use super::{Ledger, LedgerError};
use crate::optout::ErasureKey;

/// What the ledger holds about one address, table by table (rows as column → value); a
/// sign-up's token hash left out (it is the key to their confirmation link, not theirs).
pub type Export = Map<String, Value>;

/// Columns never exported: secrets of ours, not data of theirs.
const NOT_EXPORTED: &[&str] = &["token_hash"];

/// Who must not be mailed, as a hand-off reads it: the opted-out addresses, and the
/// hashes of erased ones with the key to test an address against them.
#[derive(Clone, Debug, Default)]
pub struct OptedOut {
    addresses: HashSet<String>,
    erased: HashSet<String>,
    /// None only in the default: nobody opted out, nothing erased.
    key: Option<ErasureKey>,
}

impl OptedOut {
    /// Whether `address` (any case) opted out or was erased.
    pub fn contains(&self, address: &str) -> bool {
        let address = address.trim().to_lowercase();
        self.addresses.contains(&address)
            || (!self.erased.is_empty()
                && self
                    .key
                    .as_ref()
                    .is_some_and(|k| self.erased.contains(&k.hash(&address))))
    }

    /// How many addresses were erased.
    pub fn erased_count(&self) -> usize {
        self.erased.len()
    }

    /// The opted-out addresses (erased ones are not addresses any more).
    pub fn addresses(&self) -> &HashSet<String> {
        &self.addresses
    }
}

/// The tables that have an `address` column, in the file's order.
fn personal_tables(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT m.name FROM sqlite_master m
         WHERE m.type = 'table' AND EXISTS (
             SELECT 1 FROM pragma_table_info(m.name) c WHERE c.name = 'address')
         ORDER BY m.rowid",
    )?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
    names.collect()
}

fn json(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::from(
            b.iter()
                .map(|byte| format!("{byte:02x}"))
                .collect::<String>(),
        ),
    }
}

impl Ledger {
    /// The hash an erased `address` leaves.
    pub fn erasure_hash(&self, address: &str) -> String {
        self.erasure.hash(address)
    }

    /// Whether `address` (any case) was erased.
    pub fn is_erased(&self, address: &str) -> Result<bool, LedgerError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM erasures WHERE hash = ?1)",
                [self.erasure.hash(address)],
                |r| r.get::<_, bool>(0),
            )
            .map_err(self.err())
    }

    /// Every opted-out address and erased hash: what a hand-off checks.
    pub fn opted_out(&self) -> Result<OptedOut, LedgerError> {
        let read = |sql: &str| -> Result<HashSet<String>, LedgerError> {
            let mut stmt = self.conn.prepare_cached(sql).map_err(self.err())?;
            let rows = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(self.err())?;
            rows.collect::<Result<_, _>>().map_err(self.err())
        };
        Ok(OptedOut {
            addresses: read("SELECT address FROM optouts")?,
            erased: read("SELECT hash FROM erasures")?,
            key: Some(self.erasure.clone()),
        })
    }

    /// Everything held about `address` (any case), by table; an erased address has
    /// nothing but the fact that it was (`erased`).
    pub fn export(&self, address: &str) -> Result<Export, LedgerError> {
        let address = address.trim().to_lowercase();
        let mut out = Map::new();
        out.insert("address".into(), Value::from(address.clone()));
        for table in personal_tables(&self.conn).map_err(self.err())? {
            let mut stmt = self
                .conn
                .prepare(&format!(
                    "SELECT * FROM \"{table}\" WHERE address = ?1 ORDER BY rowid"
                ))
                .map_err(self.err())?;
            let columns: Vec<String> = stmt.column_names().map(str::to_string).collect();
            let mut rows = stmt.query([&address]).map_err(self.err())?;
            let mut found = Vec::new();
            while let Some(row) = rows.next().map_err(self.err())? {
                let mut obj = Map::new();
                for (i, name) in columns.iter().enumerate() {
                    if NOT_EXPORTED.contains(&name.as_str()) {
                        continue;
                    }
                    obj.insert(name.clone(), json(row.get_ref(i).map_err(self.err())?));
                }
                found.push(Value::Object(obj));
            }
            out.insert(table, Value::Array(found));
        }
        out.insert("erased".into(), Value::from(self.is_erased(&address)?));
        Ok(out)
    }

    /// Lifts the erasure of `address` (they subscribed again themselves, from a link mailed
    /// to it). Returns whether it was erased.
    pub fn unerase(&mut self, address: &str) -> Result<bool, LedgerError> {
        let hash = self.erasure.hash(address);
        let err = self.err_owned();
        let tx = self.write()?;
        let n = tx
            .execute("DELETE FROM erasures WHERE hash = ?1", [hash])
            .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(n > 0)
    }

    /// Erases `address` (any case) in one transaction: every row of every table with an
    /// `address` column that names it is deleted, and its keyed hash is recorded in
    /// `erasures`, which keeps it opted out. Returns how many rows were deleted.
    pub fn erase(&mut self, address: &str, at: DateTime<Utc>) -> Result<usize, LedgerError> {
        let address = address.trim().to_lowercase();
        let hash = self.erasure.hash(&address);
        // What is deleted is overwritten with zeros in the file, whole freed pages too
        // (`secure_delete` on for this transaction; `fast`, the ledger's usual, zeroes only
        // what costs no extra write).
        let err = self.err_owned();
        self.conn
            .pragma_update(None, "secure_delete", true)
            .map_err(&err)?;
        let deleted = self.erase_rows(&address, &hash, at);
        let _ = self.conn.pragma_update(None, "secure_delete", "fast");
        let deleted = deleted?;
        // The log's older frames may still hold the rows as they were: moved into the
        // file (now zeroed there) and the log emptied, unless a reader holds it (the next
        // checkpoint then does).
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        Ok(deleted)
    }

    fn erase_rows(
        &mut self,
        address: &str,
        hash: &str,
        at: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        let err = self.err_owned();
        let tx = self.write()?;
        let mut deleted = 0;
        for table in personal_tables(&tx).map_err(&err)? {
            deleted += tx
                .execute(
                    &format!("DELETE FROM \"{table}\" WHERE address = ?1"),
                    [&address],
                )
                .map_err(&err)?;
        }
        // A fill's place is the last address it filled: moved back to the address before
        // it in the same generation (its rows are gone, so nothing is skipped), or to the
        // start (deliveries already queued are not queued twice).
        tx.execute(
            "UPDATE dispatches SET fill_after = COALESCE((
                 SELECT max(a.address) FROM audience a
                 WHERE a.generation = dispatches.fill_generation AND a.address < ?1), '')
             WHERE fill_after = ?1",
            [address],
        )
        .map_err(&err)?;
        tx.execute(
            "INSERT INTO erasures (hash, at) VALUES (?1, ?2) ON CONFLICT (hash) DO NOTHING",
            params![hash, super::deliveries::ts(&at)],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{AudienceRow, MEDIA, OptOutSource};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// After erase, the address is in no row of any table; its hash is, and it counts as
    /// opted out for the hand-off, a fill and a later media sync.
    #[test]
    fn an_erased_address_leaves_only_its_hash_and_stays_opted_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open_in(dir.path()).unwrap();
        let at = t("2026-12-05T10:00:00Z");
        let row = AudienceRow {
            address: "anna@example.org".into(),
            email: "Anna@Example.org".into(),
            name: "Anna".into(),
            outlet: "Example Times".into(),
            lang: None,
            topics: String::new(),
            line: 2,
            delivery: "each".into(),
            paused: false,
            own: false,
        };
        let g = l.begin_audience(MEDIA).unwrap();
        l.write_audience(MEDIA, g, std::slice::from_ref(&row))
            .unwrap();
        l.switch_audience(MEDIA, g, None, at).unwrap();
        l.unsubscribe("anna@example.org", OptOutSource::Command, at)
            .unwrap();
        let export = l.export("ANNA@example.org").unwrap();
        assert_eq!(export["audience"].as_array().unwrap().len(), 1);
        assert_eq!(export["optout_log"].as_array().unwrap().len(), 1);

        assert!(l.erase("Anna@Example.org", at).unwrap() >= 3);
        let dump: String = l
            .conn
            .query_row("SELECT group_concat(hash) FROM erasures", [], |r| r.get(0))
            .unwrap();
        assert_eq!(dump, l.erasure_hash("anna@example.org"));
        for table in personal_tables(&l.conn).unwrap() {
            let n: i64 = l
                .conn
                .query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(n, 0, "{table}");
        }
        assert!(l.is_opted_out("anna@EXAMPLE.org").unwrap());
        assert!(l.opted_out().unwrap().contains("Anna@example.org"));
        assert!(!l.opted_out().unwrap().contains("bo@example.org"));

        let g = l.begin_audience(MEDIA).unwrap();
        let skipped = l.write_audience(MEDIA, g, &[row]).unwrap();
        assert_eq!(skipped, vec![crate::ledger::Skipped::Erased { line: 2 }]);
        assert!(l.audience_rows(MEDIA, g, "", 10).unwrap().is_empty());

        l.refill("r", 1, "manual", "h", at).unwrap();
        let who = vec![("anna@example.org".to_string(), "<m@x>".to_string())];
        assert_eq!(
            l.fill_batch("r", 1, g, "", &who, None, at).unwrap(),
            Some(0)
        );
        let export = l.export("anna@example.org").unwrap();
        assert_eq!(export["erased"], Value::Bool(true));
    }
}
