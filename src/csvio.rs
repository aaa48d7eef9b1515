//! Reading CSV inputs (traces, profiles, power logs) with errors that name the file, column, row and value.
//!
//! Files are read with polars, every column as text, and each needed column is then parsed here, so a bad
//! cell is reported as "file: column `x`, row 17: `abc` is not a number" rather than as a type-inference
//! failure somewhere in the file.

use crate::error::{Error, Result};
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// A CSV file held as text columns.
#[derive(Debug)]
pub struct CsvTable {
    pub path: PathBuf,
    df: DataFrame,
}

impl CsvTable {
    /// Reads `path` (with a header row). An empty file or one without data rows is an error.
    pub fn read(path: &Path) -> Result<Self> {
        crate::input::check_exists(path)?;
        crate::input::check_regular(path)?;
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.len() == 0 {
            return Err(Error::Csv {
                path: path.to_path_buf(),
                message: "the file is empty (a header row and data rows are needed)".into(),
            });
        }
        let df = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
            .map_err(|e| Error::Csv {
                path: path.to_path_buf(),
                message: format!("not a readable CSV file: {e}"),
            })?;
        Self::of_frame(path, df)
    }

    /// Reads CSV text held in memory (with a header row); `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        if text.is_empty() {
            return Err(Error::Csv {
                path: path.to_path_buf(),
                message: "the file is empty (a header row and data rows are needed)".into(),
            });
        }
        let df = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .into_reader_with_file_handle(std::io::Cursor::new(text.as_bytes()))
            .finish()
            .map_err(|e| Error::Csv {
                path: path.to_path_buf(),
                message: format!("not a readable CSV file: {e}"),
            })?;
        Self::of_frame(path, df)
    }

    fn of_frame(path: &Path, df: DataFrame) -> Result<Self> {
        // The CSV reader renames a repeated header `x` to `x_duplicated_0`, ...: which of the two a
        // reader meant cannot be known, so a repeated column is an error, not a silent first pick.
        let names: Vec<String> = df
            .get_column_names()
            .into_iter()
            .map(|s| s.to_string())
            .collect();
        for n in &names {
            if let Some((base, k)) = n.rsplit_once("_duplicated_") {
                if k.parse::<u32>().is_ok() && names.iter().any(|m| m == base) {
                    return Err(Error::Column {
                        path: path.to_path_buf(),
                        column: base.to_string(),
                        row: None,
                        message: "appears more than once in the header; keep one".into(),
                    });
                }
            }
        }
        if df.height() == 0 {
            return Err(Error::Csv {
                path: path.to_path_buf(),
                message: "no data rows after the header".into(),
            });
        }
        Ok(CsvTable {
            path: path.to_path_buf(),
            df,
        })
    }

    /// Number of data rows.
    pub fn rows(&self) -> usize {
        self.df.height()
    }

    /// Column names, in file order.
    pub fn columns(&self) -> Vec<String> {
        self.df
            .get_column_names()
            .into_iter()
            .map(|s| s.to_string())
            .collect()
    }

    pub fn has_column(&self, name: &str) -> bool {
        self.df.column(name).is_ok()
    }

    /// The exact name of the first column whose name, with surrounding spaces trimmed, is one of
    /// `names` (tools such as nvidia-smi write `a, b` headers, so names come with a leading space).
    pub fn find_column(&self, names: &[&str]) -> Option<String> {
        self.columns()
            .into_iter()
            .find(|c| names.iter().any(|n| c.trim() == *n))
    }

    /// Like [`Self::find_column`], but a missing column is the error [`Self::missing_column`] gives
    /// for the first of `names`, with `hint` after `missing` (empty, or starting with a space).
    pub fn require_column(&self, names: &[&str], hint: &str) -> Result<String> {
        self.find_column(names)
            .ok_or_else(|| self.missing_column(names.first().copied().unwrap_or(""), hint))
    }

    /// The exact name of the first column whose trimmed name starts with `prefix` (for headers that
    /// carry a unit, such as `power.draw [W]`).
    pub fn find_column_prefix(&self, prefix: &str) -> Option<String> {
        self.columns()
            .into_iter()
            .find(|c| c.trim().starts_with(prefix))
    }

    /// An error for a column that is missing, listing the header.
    pub fn missing_column(&self, name: &str, message: &str) -> Error {
        Error::Column {
            path: self.path.clone(),
            column: name.to_string(),
            row: None,
            message: format!(
                "missing{message} (the header has: {})",
                self.columns()
                    .iter()
                    .map(|c| c.trim())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Like [`Self::f64_column`], but a cell may end with the unit `unit` (as nvidia-smi writes
    /// `250.31 W` unless asked for `nounits`); the unit is dropped. Any other text is an error.
    pub fn f64_column_unit(&self, name: &str, unit: &str) -> Result<Vec<f64>> {
        self.numbers(name, None, Some(unit))
    }

    fn text_column(&self, name: &str) -> Result<&StringChunked> {
        let col = self.df.column(name).map_err(|_| Error::Column {
            path: self.path.clone(),
            column: name.to_string(),
            row: None,
            message: format!("missing (the header has: {})", self.columns().join(", ")),
        })?;
        col.str()
            .map_err(|e| Error::Internal(format!("{}: {e}", self.path.display())))
    }

    /// Parses column `name` as finite numbers. Empty cells, NaN, infinities and text are errors naming
    /// the row (1-based, header excluded) and the cell.
    pub fn f64_column(&self, name: &str) -> Result<Vec<f64>> {
        self.numbers(name, None, None)
    }

    /// The column's cells as finite numbers: an empty cell takes `empty` or is an error, a trailing
    /// `unit` is dropped, anything else that is not a finite number is an error naming the row.
    fn numbers(&self, name: &str, empty: Option<f64>, unit: Option<&str>) -> Result<Vec<f64>> {
        let col = self.text_column(name)?;
        let column = if unit.is_some() { name.trim() } else { name };
        let mut out = Vec::with_capacity(col.len());
        for (i, cell) in col.iter().enumerate() {
            let bad = |msg: String| Error::Column {
                path: self.path.clone(),
                column: column.to_string(),
                row: Some(i + 1),
                message: msg,
            };
            let raw = cell.map(str::trim).unwrap_or("");
            let cell = match unit {
                Some(u) => raw.strip_suffix(u).map(str::trim_end).unwrap_or(raw),
                None => raw,
            };
            if cell.is_empty() {
                match empty {
                    Some(v) => {
                        out.push(v);
                        continue;
                    }
                    None => return Err(bad("empty cell, a number is needed".into())),
                }
            }
            let v: f64 = cell.parse().map_err(|_| {
                bad(match unit {
                    Some(u) => format!("`{raw}` is not a number (in {u})"),
                    None => format!("`{raw}` is not a number"),
                })
            })?;
            if !v.is_finite() {
                return Err(bad(format!("`{raw}` is not a finite number")));
            }
            out.push(v);
        }
        Ok(out)
    }

    /// Like [`Self::f64_column`], but empty cells take `empty` (for columns where a blank means "did not
    /// run"). Text, NaN written out, and infinities are still errors.
    pub fn f64_column_or(&self, name: &str, empty: f64) -> Result<Vec<f64>> {
        self.numbers(name, Some(empty), None)
    }

    /// The cells of column `name` as text (empty cells as "").
    pub fn text_values(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .text_column(name)?
            .iter()
            .map(|c| c.unwrap_or("").trim().to_string())
            .collect())
    }

    /// Parses column `name` as whole numbers >= `min`. Fractional values are errors, not rounded.
    pub fn u32_column(&self, name: &str, min: u32) -> Result<Vec<u32>> {
        let vals = self.f64_column(name)?;
        vals.into_iter()
            .enumerate()
            .map(|(i, v)| {
                if v.fract() != 0.0 || v < min as f64 || v > u32::MAX as f64 {
                    Err(Error::Column {
                        path: self.path.clone(),
                        column: name.to_string(),
                        row: Some(i + 1),
                        message: format!("{v} is not a whole number >= {min}"),
                    })
                } else {
                    Ok(v as u32)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn parses_numbers_and_names_bad_cells() {
        let f = write("a,b\n1,2\n3.5,x\n");
        let t = CsvTable::read(f.path()).unwrap();
        assert_eq!(t.rows(), 2);
        assert_eq!(t.f64_column("a").unwrap(), vec![1.0, 3.5]);
        let e = t.f64_column("b").unwrap_err().to_string();
        assert!(
            e.contains("column `b`, row 2") && e.contains("`x` is not a number"),
            "{e}"
        );
        let e = t.u32_column("a", 1).unwrap_err().to_string();
        assert!(e.contains("3.5 is not a whole number"), "{e}");
        let e = t.f64_column("c").unwrap_err().to_string();
        assert!(e.contains("column `c`") && e.contains("missing"), "{e}");
    }

    #[test]
    fn empty_and_header_only_files_are_errors() {
        let f = write("");
        assert!(CsvTable::read(f.path())
            .unwrap_err()
            .to_string()
            .contains("empty"));
        let f = write("a,b\n");
        assert!(CsvTable::read(f.path())
            .unwrap_err()
            .to_string()
            .contains("no data rows"));
        let f = write("a\nNaN\n");
        let t = CsvTable::read(f.path()).unwrap();
        assert!(t
            .f64_column("a")
            .unwrap_err()
            .to_string()
            .contains("not a finite"));
    }
}
