//! Searching stored bytes for plaintext: the check behind "no personal data at rest in
//! clear". It takes files (a database file, its WAL, a backup, a dump of a PostgreSQL database
//! or of a Kafka topic's log segments), so every adapter's test runs the same check on its own
//! storage.

use std::path::{Path, PathBuf};

/// One needle found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub file: PathBuf,
    pub needle: String,
    pub offset: usize,
}

/// Every occurrence of every needle in every file (as raw bytes; also as UTF-16LE, the other
/// encoding SQLite may store text in). A file that does not exist is skipped (a WAL that was
/// checkpointed away); one that cannot be read is an error.
pub fn scan_files(files: &[PathBuf], needles: &[&str]) -> std::io::Result<Vec<Hit>> {
    let mut hits = Vec::new();
    for file in files {
        let bytes = match std::fs::read(file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        hits.extend(scan_bytes(file, &bytes, needles));
    }
    Ok(hits)
}

fn scan_bytes(file: &Path, bytes: &[u8], needles: &[&str]) -> Vec<Hit> {
    let mut hits = Vec::new();
    for needle in needles {
        let utf16: Vec<u8> = needle.encode_utf16().flat_map(u16::to_le_bytes).collect();
        for pattern in [needle.as_bytes(), utf16.as_slice()] {
            if pattern.is_empty() || pattern.len() > bytes.len() {
                continue;
            }
            hits.extend(
                bytes
                    .windows(pattern.len())
                    .enumerate()
                    .filter(|(_, w)| *w == pattern)
                    .map(|(offset, _)| Hit {
                        file: file.to_path_buf(),
                        needle: (*needle).to_owned(),
                        offset,
                    }),
            );
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_needle_is_found_in_utf8_and_utf16_and_missing_files_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.bin");
        let mut bytes = b"xx canary@example.com yy".to_vec();
        bytes.extend(
            "canary@example.com"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        );
        std::fs::write(&file, &bytes).expect("write");
        let hits = scan_files(
            &[file.clone(), dir.path().join("missing-wal")],
            &["canary@example.com", "absent"],
        )
        .expect("scan");
        assert_eq!(hits.len(), 2, "{hits:?}");
        assert_eq!(hits[0].offset, 3);
    }
}
