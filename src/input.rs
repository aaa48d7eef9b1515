//! Reading input files safely: only regular files are opened, and YAML is checked for nesting depth
//! before it is parsed.
//!
//! A FIFO with no writer blocks a read forever and a device may never end, so a path given as a config,
//! sweep, catalog, profile, region file or trace must be a regular file (checked on its metadata,
//! before it is opened). YAML nested very deep (100,000 `[`) takes the parser time quadratic in the
//! depth before it refuses it; [`check_yaml_depth`] refuses more than [`MAX_YAML_DEPTH`] levels in one
//! linear pass first, naming the file and the line. Input: paths and text. Output: text, or an error
//! naming the file.

use crate::error::{Error, Result};
use std::path::Path;

/// The deepest nesting of YAML simwatt reads: levels of indentation, `- ` items and `[` / `{` together.
/// simwatt's own files nest at most about 6 deep.
pub const MAX_YAML_DEPTH: usize = 64;

/// An error unless `path` is a regular file (or a directory, or absent: opening it then gives the
/// usual error). Checked on the metadata, so a FIFO is refused without being opened.
pub fn check_regular(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if meta.is_file() || meta.is_dir() {
        return Ok(());
    }
    let kind = kind_of(&meta);
    Err(Error::io(
        path,
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("is {kind}, not a regular file; simwatt reads inputs only from regular files"),
        ),
    ))
}

#[cfg(unix)]
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "not a file"
    }
}

#[cfg(not(unix))]
fn kind_of(_meta: &std::fs::Metadata) -> &'static str {
    "not a file"
}

/// An error naming `path` ("file not found") when there is nothing there: the input tables' wording.
pub fn check_exists(path: &Path) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    Err(Error::io(
        path,
        std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
    ))
}

/// The text of the regular file `path`.
pub fn read_text(path: &Path) -> Result<String> {
    check_regular(path)?;
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// An error naming `path` and the line if `text` nests deeper than [`MAX_YAML_DEPTH`].
pub fn check_yaml_depth(path: &Path, text: &str) -> Result<()> {
    match yaml_too_deep(text) {
        None => Ok(()),
        Some(message) => Err(Error::Yaml {
            path: path.to_path_buf(),
            message,
        }),
    }
}

/// Why `text` nests too deep (with the line), or None. One pass over the text: the depth at a point
/// is the block depth (the open indentation levels, plus the `- ` items that begin the line) plus the
/// flow depth (open `[` and `{`, outside quotes and comments). It may count a level the parser would
/// not (a line of a block scalar indented further), never fewer, so files within the limit pass.
pub fn yaml_too_deep(text: &str) -> Option<String> {
    let too_deep = |line: usize| {
        Some(format!(
            "line {line}: nested more than {MAX_YAML_DEPTH} levels deep (indentation, `- ` items, `[` and `{{` together); simwatt reads YAML nested at most {MAX_YAML_DEPTH} deep"
        ))
    };
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    for (n, line) in text.lines().enumerate() {
        let mut block = indents.len();
        let mut chars = line.char_indices().peekable();
        if flow == 0 {
            let indent = line.len() - line.trim_start_matches(' ').len();
            let rest = line[indent..].trim_start();
            if rest.is_empty() || rest.starts_with('#') {
                continue;
            }
            if rest.starts_with("---") || rest.starts_with("...") {
                indents.clear();
                continue;
            }
            while indents.last().is_some_and(|&top| top >= indent) {
                indents.pop();
            }
            indents.push(indent);
            // `- - x`: each leading item opens a level.
            let mut items = 0;
            let mut r = &line[indent..];
            while let Some(t) = r.strip_prefix('-') {
                if t.is_empty() || t.starts_with(' ') {
                    items += 1;
                    r = t.trim_start();
                } else {
                    break;
                }
            }
            block = indents.len() + items;
            if block > MAX_YAML_DEPTH {
                return too_deep(n + 1);
            }
        }
        let mut prev = ' ';
        // Whether `prev` opened a collection (so `[[` opens two, but `x[[` none).
        let mut opened = false;
        let mut quote: Option<char> = None;
        while let Some((_, c)) = chars.next() {
            match quote {
                Some('"') => match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => quote = None,
                    _ => {}
                },
                Some(_) => {
                    if c == '\'' {
                        quote = None;
                    }
                }
                None => {
                    let token_start = prev.is_whitespace() || ",:".contains(prev) || opened;
                    opened = false;
                    match c {
                        '#' if prev.is_whitespace() => break,
                        '"' | '\'' if token_start => quote = Some(c),
                        '[' | '{' if token_start || flow > 0 => {
                            flow += 1;
                            opened = true;
                            if block + flow > MAX_YAML_DEPTH {
                                return too_deep(n + 1);
                            }
                        }
                        ']' | '}' if flow > 0 => flow -= 1,
                        _ => {}
                    }
                }
            }
            prev = c;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_within_the_limit_passes_and_beyond_it_is_refused_with_the_line() {
        assert_eq!(
            yaml_too_deep("a:\n  b: [1, {c: [2]}]\n  d:\n    - - x\n"),
            None
        );
        let deep = "[".repeat(100_000);
        let e = yaml_too_deep(&format!("x: 1\nseed: {deep}\n")).unwrap();
        assert!(e.starts_with("line 2:"), "{e}");
        let ok = format!("{}{}", "[".repeat(60), "]".repeat(60));
        assert_eq!(yaml_too_deep(&ok), None);
        let block: String = (0..70)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        assert!(yaml_too_deep(&block).unwrap().starts_with("line 65:"));
        let items = format!("{}x\n", "- ".repeat(70));
        assert!(yaml_too_deep(&items).is_some());
        // Brackets in quotes, comments and inside plain words do not count.
        let text = format!(
            "a: \"{0}\"\nb: '{0}'\nc: 1 # {0}\nd: x{0}\n",
            "[".repeat(100)
        );
        assert_eq!(yaml_too_deep(&text), None);
    }
}
