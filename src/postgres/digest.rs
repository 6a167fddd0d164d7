//! The kept backup's checksum: the sha256 of its `sha256sum` listing, so each file can be
//! hashed as soon as it is complete (by pgshift as it writes it, or after pg_dump finished it).

use std::path::{Path, PathBuf};

/// A file's name, size and sha256 (hex).
pub type FileHash = (String, u64, String);

pub fn hash_file(path: &Path) -> std::io::Result<FileHash> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut file = std::fs::File::open(path)?;
    let bytes = std::io::copy(&mut file, &mut h)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    Ok((name, bytes, hex::encode(h.finalize())))
}

/// Total size and the backup's sha256: the sha256 of its `sha256sum` listing, files in name
/// order (`cd DIR && sha256sum * | sha256sum` prints it), so files can be hashed as soon as
/// each is complete. `early` are files hashed before; one whose size changed is hashed again.
pub fn hash_dir_with(dir: &Path, early: Vec<FileHash>) -> std::io::Result<(u64, String)> {
    use sha2::{Digest, Sha256};
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut listing = Sha256::new();
    let mut total = 0u64;
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let size = std::fs::metadata(&f)?.len();
        let entry = match early.iter().find(|(n, s, _)| *n == name && *s == size) {
            Some(e) => e.clone(),
            None => hash_file(&f)?,
        };
        total += entry.1;
        listing.update(format!("{}  {}\n", entry.2, entry.0));
    }
    Ok((total, hex::encode(listing.finalize())))
}

pub fn hash_dir(dir: &Path) -> std::io::Result<(u64, String)> {
    hash_dir_with(dir, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_digest_is_the_sha256_of_its_sha256sum_listing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("toc.dat"), b"toc").unwrap();
        std::fs::write(dir.path().join("2964.dat"), b"rows\n").unwrap();
        let whole = hash_dir(dir.path()).unwrap();
        let early = vec![hash_file(&dir.path().join("2964.dat")).unwrap()];
        assert_eq!(hash_dir_with(dir.path(), early).unwrap(), whole);
        // `sha256sum 2964.dat toc.dat | sha256sum`
        use sha2::{Digest, Sha256};
        let listing = format!(
            "{}  2964.dat\n{}  toc.dat\n",
            hex::encode(Sha256::digest(b"rows\n")),
            hex::encode(Sha256::digest(b"toc"))
        );
        assert_eq!(whole, (8, hex::encode(Sha256::digest(listing))));
        // A file that grew after it was hashed is hashed again.
        let stale = vec![("2964.dat".to_string(), 1, "00".repeat(32))];
        assert_eq!(hash_dir_with(dir.path(), stale).unwrap(), whole);
    }
}
