//! What the benchmarks measure besides time, written where the summary finds it.

use std::fmt::Write as _;
use std::path::Path;

/// Per-request figures of one contender, from a counted run of many requests.
#[derive(Clone, Debug, PartialEq)]
pub struct Counted {
    /// The contender's benchmark id.
    pub contender: String,
    /// Heap allocations per request.
    pub allocations: f64,
    /// Heap bytes asked for per request.
    pub allocated_bytes: f64,
    /// Request body bytes the inner service received that were copies, per request.
    pub copied_body_bytes: f64,
    /// Calls the inner service received per request.
    pub inner_calls: f64,
}

const HEADER: &str = "contender\tallocations\tallocated_bytes\tcopied_body_bytes\tinner_calls";

/// Prints `rows` as a table and writes them as tab-separated values to `path`.
pub fn write(path: &Path, title: &str, rows: &[Counted]) -> std::io::Result<()> {
    println!("{title}: per request, counted over a run of many requests");
    println!(
        "  {:<24} {:>12} {:>12} {:>12} {:>12}",
        "contender", "allocations", "bytes", "body copied", "inner calls"
    );
    let mut tsv = format!("{HEADER}\n");
    for row in rows {
        println!(
            "  {:<24} {:>12.2} {:>12.1} {:>12.1} {:>12.2}",
            row.contender,
            row.allocations,
            row.allocated_bytes,
            row.copied_body_bytes,
            row.inner_calls
        );
        let _ = writeln!(
            tsv,
            "{}\t{}\t{}\t{}\t{}",
            row.contender,
            row.allocations,
            row.allocated_bytes,
            row.copied_body_bytes,
            row.inner_calls
        );
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, tsv)
}

/// Reads what [`write`] wrote.
pub fn read(path: &Path) -> std::io::Result<Vec<Counted>> {
    let text = std::fs::read_to_string(path)?;
    let bad = |line: &str| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad row: {line}"))
    };
    text.lines()
        .skip(1)
        .filter(|line| !line.is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let number = |i: usize| -> std::io::Result<f64> {
                fields
                    .get(i)
                    .and_then(|f| f.parse().ok())
                    .ok_or_else(|| bad(line))
            };
            Ok(Counted {
                contender: fields.first().ok_or_else(|| bad(line))?.to_string(),
                allocations: number(1)?,
                allocated_bytes: number(2)?,
                copied_body_bytes: number(3)?,
                inner_calls: number(4)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_back_as_written() {
        let dir = std::env::temp_dir().join(format!("peer-benches-{}", std::process::id()));
        let path = dir.join("counted.tsv");
        let rows = vec![Counted {
            contender: "tower_http_retry".into(),
            allocations: 23.0,
            allocated_bytes: 1234.5,
            copied_body_bytes: 0.0,
            inner_calls: 1.0,
        }];
        write(&path, "test", &rows).unwrap();
        assert_eq!(read(&path).unwrap(), rows);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
