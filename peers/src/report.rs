//! What the benchmarks measure besides criterion's timings, written where the summary finds it:
//! tab-separated rows, a contender's name and then its figures.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use crate::paired::Paired;

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
    /// Wall-clock nanoseconds per request over the counted run: unlike the CPU time of the timed runs,
    /// this includes any time a contender spends asleep.
    pub wall_ns: f64,
}

/// The file of a group's counted figures, under `dir`.
pub fn counted_file(dir: &Path, group: &str) -> std::path::PathBuf {
    dir.join(format!("{group}-counted.tsv"))
}

/// The file of a group's interleaved figures, under `dir`.
pub fn paired_file(dir: &Path, group: &str) -> std::path::PathBuf {
    dir.join(format!("{group}-interleaved.tsv"))
}

/// Prints `rows` and writes them to `path`.
pub fn write_counted(path: &Path, group: &str, rows: &[Counted]) -> io::Result<()> {
    println!("{group}: per request, counted over a run of many requests");
    println!(
        "  {:<24} {:>12} {:>12} {:>12} {:>12} {:>14}",
        "contender", "allocations", "bytes", "body copied", "inner calls", "wall ns"
    );
    for row in rows {
        println!(
            "  {:<24} {:>12.2} {:>12.1} {:>12.1} {:>12.2} {:>14.0}",
            row.contender,
            row.allocations,
            row.allocated_bytes,
            row.copied_body_bytes,
            row.inner_calls,
            row.wall_ns
        );
    }
    let rows = rows.iter().map(|r| {
        let figures = [
            r.allocations,
            r.allocated_bytes,
            r.copied_body_bytes,
            r.inner_calls,
            r.wall_ns,
        ];
        (r.contender.as_str(), figures.to_vec())
    });
    write_rows(path, rows)
}

/// Reads what [`write_counted`] wrote.
pub fn read_counted(path: &Path) -> io::Result<Vec<Counted>> {
    read_rows(path, Some(5)).map(|rows| {
        rows.into_iter()
            .map(|(contender, f)| Counted {
                contender,
                allocations: f[0],
                allocated_bytes: f[1],
                copied_body_bytes: f[2],
                inner_calls: f[3],
                wall_ns: f[4],
            })
            .collect()
    })
}

/// Prints `rows` (with each one's ratio to the first) and writes them to `path`.
pub fn write_paired(path: &Path, group: &str, rows: &[Paired]) -> io::Result<()> {
    let rounds = rows.first().map_or(0, |row| row.per_round.len());
    println!(
        "{group}: interleaved, {rounds} rounds, ratio to the first contender in the same round"
    );
    println!(
        "  {:<24} {:>14} {:>8} {:>18}",
        "contender", "ns per request", "ratio", "quartiles"
    );
    for row in rows {
        let ratio = row.ratio_to(&rows[0]);
        println!(
            "  {:<24} {:>14.0} {:>8.3} {:>8.3} – {:<8.3}",
            row.contender,
            row.ns(),
            ratio.median,
            ratio.q1,
            ratio.q3
        );
    }
    let rows = rows
        .iter()
        .map(|r| (r.contender.as_str(), r.per_round.clone()));
    write_rows(path, rows)
}

/// Reads what [`write_paired`] wrote.
pub fn read_paired(path: &Path) -> io::Result<Vec<Paired>> {
    read_rows(path, None).map(|rows| {
        rows.into_iter()
            .map(|(contender, per_round)| Paired {
                contender,
                per_round,
            })
            .collect()
    })
}

fn write_rows<'a>(path: &Path, rows: impl Iterator<Item = (&'a str, Vec<f64>)>) -> io::Result<()> {
    let mut tsv = String::new();
    for (name, figures) in rows {
        tsv.push_str(name);
        for figure in figures {
            let _ = write!(tsv, "\t{figure}");
        }
        tsv.push('\n');
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, tsv)
}

/// Rows of a name and its figures: exactly `figures` of them when given, at least one otherwise.
fn read_rows(path: &Path, figures: Option<usize>) -> io::Result<Vec<(String, Vec<f64>)>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let mut fields = line.split('\t');
            let name = fields.next().unwrap_or_default().to_string();
            let numbers: Result<Vec<f64>, _> = fields.map(str::parse).collect();
            let numbers = numbers.unwrap_or_default();
            if name.is_empty() || numbers.is_empty() || figures.is_some_and(|n| numbers.len() != n)
            {
                let why = format!("{}: bad row: {line}", path.display());
                return Err(io::Error::new(io::ErrorKind::InvalidData, why));
            }
            Ok((name, numbers))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        std::env::temp_dir()
            .join(format!("peer-benches-{}", std::process::id()))
            .join(name)
    }

    #[test]
    fn counted_rows_read_back_as_written() {
        let path = scratch("counted.tsv");
        let rows = vec![Counted {
            contender: "tower_http_retry".into(),
            allocations: 17.0,
            allocated_bytes: 1464.5,
            copied_body_bytes: 0.0,
            inner_calls: 1.0,
            wall_ns: 1020.0,
        }];
        write_counted(&path, "test", &rows).unwrap();
        assert_eq!(read_counted(&path).unwrap(), rows);
    }

    #[test]
    fn paired_rows_read_back_as_written() {
        let path = scratch("paired.tsv");
        let rows = vec![Paired {
            contender: "bare".into(),
            per_round: vec![220.25, 219.5, 230.0],
        }];
        write_paired(&path, "test", &rows).unwrap();
        assert_eq!(read_paired(&path).unwrap(), rows);
    }

    #[test]
    fn a_short_row_is_an_error() {
        let path = scratch("short.tsv");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "bare\t1\t2\n").unwrap();
        assert!(read_counted(&path).is_err());
        std::fs::write(&path, "bare\n").unwrap();
        assert!(read_paired(&path).is_err());
        std::fs::write(&path, "bare\t1\tx\n").unwrap();
        assert!(read_paired(&path).is_err());
    }
}
