//! The table of contents (`toc.dat`) of a directory-format archive, read and written as
//! pg_dump writes it (`WriteHead`/`WriteToc` in PostgreSQL's `pg_backup_archiver.c`, with the
//! directory format's file name after each entry): pgshift takes pg_dump's own schema-only
//! entries and adds the `TABLE DATA` entries whose `NNNN.dat` files it wrote from its single
//! read of OLD, so plain `pg_restore` reads the kept backup as if pg_dump had written it.
//!
//! Only what pgshift touches is interpreted; the header is kept byte for byte.

use color_eyre::eyre::{Result, bail, eyre};

/// Sections as pg_dump numbers them (`teSection`).
pub const SECTION_PRE_DATA: i64 = 2;
pub const SECTION_DATA: i64 = 3;
pub const SECTION_POST_DATA: i64 = 4;

/// Archive versions this reader knows the entry layout of: 1.14 (pg_dump 12–15) through 1.16.
const KNOWN_VERSIONS: std::ops::RangeInclusive<(u8, u8)> = (1, 14)..=(1, 16);

/// One TOC entry. Strings are `None` where pg_dump wrote a NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub dump_id: i64,
    pub had_dumper: bool,
    pub table_oid: Option<String>,
    pub oid: Option<String>,
    pub tag: Option<String>,
    pub desc: Option<String>,
    pub section: i64,
    pub defn: Option<String>,
    pub drop_stmt: Option<String>,
    pub copy_stmt: Option<String>,
    pub namespace: Option<String>,
    pub tablespace: Option<String>,
    pub tableam: Option<String>,
    /// Archive 1.16 (pg_dump 17) only.
    pub relkind: Option<i64>,
    pub owner: Option<String>,
    /// `with OIDs`: always "false" since pg_dump 12.
    pub with_oids: Option<String>,
    pub deps: Vec<String>,
    /// The directory format's data file name ("" for entries without data).
    pub filename: Option<String>,
}

impl Entry {
    pub fn desc(&self) -> &str {
        self.desc.as_deref().unwrap_or("")
    }
    pub fn dep_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.deps.iter().filter_map(|d| d.parse().ok())
    }
}

/// A parsed `toc.dat`.
#[derive(Debug, Clone)]
pub struct Toc {
    /// Everything before the entry count, as pg_dump wrote it.
    header: Vec<u8>,
    int_size: usize,
    version: (u8, u8),
    pub entries: Vec<Entry>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    int_size: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| eyre!("toc.dat ends early at byte {}", self.pos))?;
        self.pos += 1;
        Ok(b)
    }
    /// `ReadInt`: a sign byte, then `int_size` bytes, least significant first.
    fn int(&mut self) -> Result<i64> {
        let negative = self.byte()? != 0;
        let mut v: i64 = 0;
        for i in 0..self.int_size {
            v |= (self.byte()? as i64) << (8 * i);
        }
        Ok(if negative { -v } else { v })
    }
    /// `ReadStr`: a length (-1 for NULL), then the bytes.
    fn str(&mut self) -> Result<Option<String>> {
        let len = self.int()?;
        if len < 0 {
            return Ok(None);
        }
        let end = self.pos + len as usize;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| eyre!("toc.dat ends inside a string at byte {}", self.pos))?;
        self.pos = end;
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }
}

struct Writer {
    out: Vec<u8>,
    int_size: usize,
}

impl Writer {
    fn int(&mut self, v: i64) {
        self.out.push(u8::from(v < 0));
        let mut a = v.unsigned_abs();
        for _ in 0..self.int_size {
            self.out.push((a & 0xff) as u8);
            a >>= 8;
        }
    }
    fn str(&mut self, s: Option<&str>) {
        match s {
            None => self.int(-1),
            Some(s) => {
                self.int(s.len() as i64);
                self.out.extend_from_slice(s.as_bytes());
            }
        }
    }
}

impl Toc {
    pub fn parse(buf: &[u8]) -> Result<Toc> {
        if buf.len() < 11 || &buf[..5] != b"PGDMP" {
            bail!("not a pg_dump archive (no PGDMP magic)");
        }
        let version = (buf[5], buf[6]);
        if !KNOWN_VERSIONS.contains(&version) {
            bail!(
                "archive version {}.{} is not one pgshift can extend",
                version.0,
                version.1
            );
        }
        let int_size = buf[8] as usize;
        if buf[10] != 3 {
            bail!("not a directory-format archive (format {})", buf[10]);
        }
        let mut r = Reader {
            buf,
            pos: 11,
            int_size,
        };
        if version >= (1, 15) {
            r.byte()?; // compression algorithm
        } else {
            r.int()?; // compression level
        }
        for _ in 0..7 {
            r.int()?; // creation time
        }
        for _ in 0..3 {
            r.str()?; // database, server version, pg_dump version
        }
        let header = buf[..r.pos].to_vec();
        let count = r.int()?;
        let mut entries = Vec::with_capacity(count.max(0) as usize);
        for _ in 0..count {
            let dump_id = r.int()?;
            let had_dumper = r.int()? != 0;
            let table_oid = r.str()?;
            let oid = r.str()?;
            let tag = r.str()?;
            let desc = r.str()?;
            let section = r.int()?;
            let defn = r.str()?;
            let drop_stmt = r.str()?;
            let copy_stmt = r.str()?;
            let namespace = r.str()?;
            let tablespace = r.str()?;
            let tableam = r.str()?;
            let relkind = if version >= (1, 16) {
                Some(r.int()?)
            } else {
                None
            };
            let owner = r.str()?;
            let with_oids = r.str()?;
            let mut deps = Vec::new();
            while let Some(d) = r.str()? {
                deps.push(d);
            }
            let filename = r.str()?;
            entries.push(Entry {
                dump_id,
                had_dumper,
                table_oid,
                oid,
                tag,
                desc,
                section,
                defn,
                drop_stmt,
                copy_stmt,
                namespace,
                tablespace,
                tableam,
                relkind,
                owner,
                with_oids,
                deps,
                filename,
            });
        }
        if r.pos != buf.len() {
            bail!(
                "toc.dat has {} bytes after its last entry",
                buf.len() - r.pos
            );
        }
        Ok(Toc {
            header,
            int_size,
            version,
            entries,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer {
            out: self.header.clone(),
            int_size: self.int_size,
        };
        w.int(self.entries.len() as i64);
        for e in &self.entries {
            w.int(e.dump_id);
            w.int(i64::from(e.had_dumper));
            w.str(e.table_oid.as_deref());
            w.str(e.oid.as_deref());
            w.str(e.tag.as_deref());
            w.str(e.desc.as_deref());
            w.int(e.section);
            w.str(e.defn.as_deref());
            w.str(e.drop_stmt.as_deref());
            w.str(e.copy_stmt.as_deref());
            w.str(e.namespace.as_deref());
            w.str(e.tablespace.as_deref());
            w.str(e.tableam.as_deref());
            if self.version >= (1, 16) {
                w.int(e.relkind.unwrap_or(0));
            }
            w.str(e.owner.as_deref());
            w.str(e.with_oids.as_deref());
            for d in &e.deps {
                w.str(Some(d));
            }
            w.str(None);
            w.str(e.filename.as_deref());
        }
        w.out
    }

    /// The `TABLE` entry of `schema.table`.
    pub fn table(&self, schema: &str, table: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| {
            e.desc() == "TABLE"
                && e.namespace.as_deref() == Some(schema)
                && e.tag.as_deref() == Some(table)
        })
    }

    pub fn next_dump_id(&self) -> i64 {
        self.entries.iter().map(|e| e.dump_id).max().unwrap_or(0) + 1
    }

    /// Where data entries go: before the first entry of the data or post-data section, as
    /// pg_dump orders them (a plain, single-pass pg_restore runs entries in TOC order).
    pub fn data_position(&self) -> usize {
        self.entries
            .iter()
            .position(|e| e.section >= SECTION_DATA)
            .unwrap_or(self.entries.len())
    }

    /// A `TABLE DATA` entry for `table` (its TOC entry) whose rows are in `filename`, loaded
    /// with `copy_stmt` (`COPY schema.t (cols) FROM stdin;\n`).
    pub fn data_entry(table: &Entry, dump_id: i64, copy_stmt: String, filename: String) -> Entry {
        Entry {
            dump_id,
            had_dumper: true,
            table_oid: Some("0".into()),
            oid: table.oid.clone(),
            tag: table.tag.clone(),
            desc: Some("TABLE DATA".into()),
            section: SECTION_DATA,
            defn: None,
            drop_stmt: None,
            copy_stmt: Some(copy_stmt),
            namespace: table.namespace.clone(),
            tablespace: None,
            tableam: None,
            relkind: table.relkind.map(|_| 0),
            owner: table.owner.clone(),
            with_oids: Some("false".into()),
            deps: vec![table.dump_id.to_string()],
            filename: Some(filename),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Toc {
        let mut w = Writer {
            out: Vec::new(),
            int_size: 4,
        };
        w.out.extend_from_slice(b"PGDMP\x01\x0e\x00\x04\x08\x03");
        w.int(0);
        for v in [0, 16, 5, 30, 10, 126, 0] {
            w.int(v);
        }
        w.str(Some("src"));
        w.str(Some("13.16"));
        w.str(Some("15.18"));
        let header = w.out.clone();
        Toc {
            header,
            int_size: 4,
            version: (1, 14),
            entries: vec![Entry {
                dump_id: 214,
                had_dumper: false,
                table_oid: Some("1259".into()),
                oid: Some("16385".into()),
                tag: Some("a".into()),
                desc: Some("TABLE".into()),
                section: SECTION_PRE_DATA,
                defn: Some("CREATE TABLE public.a (id integer);\n".into()),
                drop_stmt: Some("DROP TABLE public.a;\n".into()),
                copy_stmt: None,
                namespace: Some("public".into()),
                tablespace: Some(String::new()),
                tableam: Some("heap".into()),
                relkind: None,
                owner: Some("postgres".into()),
                with_oids: Some("false".into()),
                deps: vec!["210".into()],
                filename: Some(String::new()),
            }],
        }
    }

    #[test]
    fn a_toc_reads_back_as_written() {
        let toc = sample();
        let bytes = toc.to_bytes();
        let again = Toc::parse(&bytes).unwrap();
        assert_eq!(again.entries, toc.entries);
        assert_eq!(again.to_bytes(), bytes);
    }

    #[test]
    fn a_data_entry_depends_on_its_table_and_goes_before_post_data() {
        let mut toc = sample();
        let t = toc.table("public", "a").unwrap().clone();
        let id = toc.next_dump_id();
        let e = Toc::data_entry(
            &t,
            id,
            "COPY public.a (id) FROM stdin;\n".into(),
            format!("{id}.dat"),
        );
        assert_eq!(toc.data_position(), 1);
        toc.entries.push(e);
        let again = Toc::parse(&toc.to_bytes()).unwrap();
        let d = &again.entries[1];
        assert_eq!(
            (d.dump_id, d.desc(), d.section),
            (215, "TABLE DATA", SECTION_DATA)
        );
        assert_eq!(d.dep_ids().collect::<Vec<_>>(), vec![214]);
        assert_eq!(d.filename.as_deref(), Some("215.dat"));
    }

    #[test]
    fn truncated_and_foreign_files_are_refused() {
        let bytes = sample().to_bytes();
        assert!(Toc::parse(&bytes[..bytes.len() - 3]).is_err());
        assert!(Toc::parse(b"PK\x03\x04 not an archive").is_err());
    }
}
