//! What hone knows about one file of a repository: where it is read from (`TreeSource`), its
//! kind, its dirty state, and its content classified (text, binary, too large, not UTF-8).

/// Where to read a file or tree from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeSource {
    /// The tree of the commit HEAD points at (empty in a repository with no commits).
    Head,
    /// The staged content (the index; `GIT_INDEX_FILE` is honoured, as git hooks set it).
    Index,
    /// The working tree as it is on disk.
    WorkTree,
    /// Any revision git can resolve (`HEAD~1`, a branch, a commit id, a tree id).
    Revision(String),
}

/// What kind of entry a repository file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Regular,
    Executable,
    Symlink,
    /// A submodule (gitlink): listed, never entered.
    Submodule,
}

/// One file hone may look at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RepoFile {
    /// Path relative to the repository root, with `/` separators.
    pub path: String,
    pub kind: FileKind,
    /// In the index (false: untracked and not ignored).
    pub tracked: bool,
}

/// How one side of a file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
    Renamed,
    TypeChange,
}

/// Dirty state of one path: staged (index vs HEAD) and unstaged (working tree vs index) changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FileStatus {
    pub staged: Option<ChangeKind>,
    pub unstaged: Option<ChangeKind>,
    pub untracked: bool,
    pub conflicted: bool,
}

impl FileStatus {
    /// True when HEAD, the index and the working tree all agree on this path.
    pub fn is_clean(&self) -> bool {
        self.staged.is_none() && self.unstaged.is_none() && !self.untracked && !self.conflicted
    }
}

/// What a file's bytes are, for deciding whether hone may read or edit it as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// UTF-8 text.
    Text(String),
    /// Contains NUL bytes in its first 8000 bytes (git's heuristic).
    Binary,
    /// Not valid UTF-8 (but no NUL): hone does not edit it.
    NonUtf8,
    /// Larger than the configured cap.
    TooLarge { size: u64 },
    /// A symbolic link; its target is not followed.
    Symlink { target: String },
    /// Not present in that source.
    Missing,
}

impl FileContent {
    /// The text, if this is a text file.
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            _ => None,
        }
    }
}

/// Classify bytes as text, binary (NUL in the first 8000 bytes, as git does) or non-UTF-8.
pub fn classify(bytes: Vec<u8>) -> FileContent {
    let probe = &bytes[..bytes.len().min(8000)];
    if probe.contains(&0) {
        return FileContent::Binary;
    }
    match String::from_utf8(bytes) {
        Ok(text) => FileContent::Text(text),
        Err(_) => FileContent::NonUtf8,
    }
}
