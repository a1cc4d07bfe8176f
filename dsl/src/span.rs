//! Source files and byte spans into them: the position of every node and diagnostic.

/// Identifies one loaded source file inside a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// A byte range `[start, end)` in one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: u32, end: u32) -> Span {
        debug_assert!(start <= end, "span start after end");
        Span { file, start, end }
    }

    /// The smallest span covering both `self` and `other` (same file).
    pub fn to(self, other: Span) -> Span {
        debug_assert_eq!(self.file, other.file);
        Span::new(self.file, self.start.min(other.start), self.end.max(other.end))
    }
}

/// One source file: its display name (path as given), its text and the byte offset of each line start.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
    line_starts: Vec<u32>,
}

impl SourceFile {
    pub fn new(name: String, text: String) -> SourceFile {
        let mut line_starts = vec![0u32];
        line_starts.extend(text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| (i + 1) as u32));
        SourceFile { name, text, line_starts }
    }

    pub fn line_starts(&self) -> &[u32] {
        &self.line_starts
    }

    /// Byte offset of a 1-based line and a 0-based byte column, clamped to the text and moved back to
    /// the start of the character it falls in (lexpr reports some errors one byte into a multi-byte
    /// character; slicing there would panic).
    pub fn offset_of(&self, line_one_based: usize, column_bytes: usize) -> u32 {
        let text_len = self.text.len() as u32;
        let Some(&line_start) = self.line_starts.get(line_one_based.saturating_sub(1)) else {
            return text_len;
        };
        let line_end = self.line_starts.get(line_one_based).copied().unwrap_or(text_len);
        let mut offset =
            (line_start as usize).saturating_add(column_bytes).min(line_end as usize).min(text_len as usize);
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset as u32
    }

    /// 1-based line and 1-based column (in characters) of a byte offset.
    pub fn line_column(&self, offset: u32) -> (usize, usize) {
        let line_index = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let line_start = self.line_starts[line_index] as usize;
        let end = (offset as usize).min(self.text.len());
        let column = self.text.get(line_start..end).map_or(end - line_start, |s| s.chars().count());
        (line_index + 1, column + 1)
    }

    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.start as usize..span.end as usize).unwrap_or("")
    }
}

/// All files of one compilation, addressed by [`FileId`].
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        let id = FileId(self.files.len() as u32);
        self.files.push(SourceFile::new(name.into(), text.into()));
        id
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn try_get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn find(&self, name: &str) -> Option<FileId> {
        self.files.iter().position(|f| f.name == name).map(|i| FileId(i as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_never_split_a_character() {
        // Found by fuzzing: lexpr reports `#é` one byte into the `é`.
        let file = SourceFile::new("t.sexp".into(), "#é🐜\nx".into());
        assert_eq!(file.offset_of(1, 2), 1);
        assert_eq!(file.offset_of(1, 5), 3);
        assert_eq!(file.offset_of(1, 99), 8);
        assert_eq!(file.offset_of(1, usize::MAX), 8);
        assert_eq!(file.offset_of(2, 1), 9);
    }
}
