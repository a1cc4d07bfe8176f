//! The engine's and the store's errors: every way a command, a read or an open can fail, as values.

use crate::codec::DecodeError;

/// Everything the store and the engine report. Domain rejections are not errors: they are an
/// [`crate::engine::Outcome`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine's configuration is out of its bounds.
    #[error("invalid engine configuration: {message}")]
    InvalidConfig { message: String },
    /// LMDB failed (I/O, a full disk, too many readers...). The batch it happened in was not committed.
    #[error("store: {message}")]
    Store { message: String },
    /// The map (the store's size limit) is full and cannot grow further; the batch was not committed.
    #[error("the store is full: {size_bytes} bytes in use and the map cannot grow beyond {size_max_bytes} bytes")]
    MapFull { size_bytes: u64, size_max_bytes: u64 },
    /// Bytes read from disk are damaged or not what the model expects.
    #[error("damaged data in `{table}` at {at}: {message}")]
    Corrupt { table: &'static str, at: String, message: String },
    /// The store was written by a different model (or a different domain).
    #[error(
        "the store at {path} was written by domain `{stored_domain}` with schema fingerprint {stored_fingerprint:#018x}, \
         but this is domain `{domain}` with fingerprint {fingerprint:#018x}; what changed: {}; why it cannot be \
         upcast: {}",
        if changes.is_empty() { "not recorded".to_owned() } else { changes.join("; ") },
        problems.join("; ")
    )]
    IncompatibleSchema {
        path: String,
        domain: &'static str,
        fingerprint: u64,
        stored_domain: String,
        stored_fingerprint: u64,
        /// What differs in the stored format (see [`crate::schema`]).
        changes: Box<[String]>,
        /// Why the engine cannot bring the store to this schema: no upcasters configured, or each stored event
        /// no declared upcaster covers, each key or position change (see [`crate::schema::upcast_plan`]).
        problems: Box<[String]>,
    },
    /// The store's format is not the one this runtime writes.
    #[error("the store at {path} has format version {stored}, this runtime reads version {supported}")]
    IncompatibleFormat { path: String, stored: u32, supported: u32 },
    /// The writer's queue waited longer than the latency budget (or is full): try again later.
    #[error("overloaded: retry after {retry_after_ms} ms")]
    Overloaded { retry_after_ms: u64 },
    /// The client's expected version is not the aggregate's version.
    #[error("`{aggregate}` `{id}` is at version {actual}, the command expected version {expected}")]
    WrongVersion { aggregate: &'static str, id: String, expected: u64, actual: u64 },
    /// A command id already used for another aggregate instance or another aggregate type.
    #[error("command id {command_id:#034x} was already used for another aggregate instance")]
    CommandIdReused { command_id: u128 },
    /// The engine is shutting down (or has stopped) and takes no more commands.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// A read's arguments do not fit the store (a position that is not this instance's event, say).
    #[error("invalid read: {message}")]
    InvalidRead { message: String },
    #[error("unknown aggregate `{name}`")]
    UnknownAggregate { name: String },
    #[error("unknown view `{name}`")]
    UnknownView { name: String },
    /// A JSON command could not be built (unknown command, bad parameters) or its key could not be read.
    #[error("invalid command: {message}")]
    InvalidCommand { message: String },
    /// A recorded event cannot be applied to the state (the log and the model disagree).
    #[error("event {seq} of `{aggregate}` `{id}` cannot be applied: {message}")]
    Replay { aggregate: &'static str, id: String, seq: u64, message: String },
    /// Code deciding or folding a command panicked (an extern command's Rust code, say). Only that command
    /// fails when it panicked while deciding; a panic while writing fails the batch (nothing is committed).
    #[error("code for `{aggregate}` panicked: {message}")]
    Panicked { aggregate: &'static str, message: String },
    /// Another engine holds the store (see [`crate::lock`]): one engine per store at a time.
    #[error("the store is in use: {holder} holds {path}; stop it first, or open the store read-only")]
    Locked { path: String, holder: String },
    /// A write was asked of an engine opened read-only.
    #[error("this engine was opened read-only: {operation} needs the store's owner (the running server)")]
    ReadOnly { operation: &'static str },
    /// A view could not be updated; the batch was not committed.
    #[error("{0}")]
    View(String),
}

impl From<heed::Error> for Error {
    fn from(error: heed::Error) -> Self {
        // What an operator should look at: LMDB passes the system's error on, which says little by itself.
        let hint = match &error {
            heed::Error::Io(io) => match io.kind() {
                std::io::ErrorKind::StorageFull
                | std::io::ErrorKind::QuotaExceeded
                | std::io::ErrorKind::FileTooLarge => {
                    Some("no space left for the store's file (a full disk, a quota or a file size limit)")
                }
                // LMDB reports a short write as EIO: what a disk that fills up in the middle of a write gives.
                _ if io.raw_os_error() == Some(EIO) => Some("an I/O error, or a disk that filled up during a write"),
                _ => None,
            },
            _ => None,
        };
        let message = match hint {
            Some(hint) => format!("{error}: {hint}"),
            None => error.to_string(),
        };
        Error::Store { message }
    }
}

/// `EIO`, the same on Linux and the BSDs.
const EIO: i32 = 5;

impl Error {
    pub(crate) fn corrupt(table: &'static str, at: impl Into<String>, error: DecodeError) -> Self {
        Error::Corrupt { table, at: at.into(), message: error.message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(os_error: i32, expected: &str) {
        let error = Error::from(heed::Error::Io(std::io::Error::from_raw_os_error(os_error)));
        let Error::Store { message } = error else { panic!("not a store error: {error:?}") };
        assert!(message.ends_with(expected), "{message:?} does not end with {expected:?}");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_full_disk_is_named_in_the_store_error() {
        // ENOSPC, EFBIG, EDQUOT and EIO as Linux numbers them.
        check(28, "no space left for the store's file (a full disk, a quota or a file size limit)");
        check(27, "no space left for the store's file (a full disk, a quota or a file size limit)");
        check(122, "no space left for the store's file (a full disk, a quota or a file size limit)");
        check(5, "an I/O error, or a disk that filled up during a write");
        check(13, "Permission denied (os error 13)");
    }
}
