//! The anthill runtime: the embedded LMDB event store and command engine. Empty until its issue (runtime v1).
