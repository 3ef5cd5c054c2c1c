// A VFS for the store's writer connection: SQLite's own ("unix"), except that the writes it makes
// to a WAL file are gathered and handed to the kernel in a few large writes just before they
// must be on disk. SQLite writes a WAL frame as two writes (its 24-byte header, then the page),
// so a commit of 65 pages is 130 system calls before its fsync; gathered, it is 3.
//
// Contract: SQLite assumes nothing about a write until the file is synced, and with
// synchronous=FULL a commit syncs the WAL before it publishes the new frames to readers (the
// WAL index). The gathered writes go out before every sync, and before anything that could
// observe the file through this handle (a read, its size, a truncation, a file control, close),
// so every reader, this connection's or another's, sees what it would without the gathering.
// Only for connections that commit with synchronous=FULL (or EXTRA): with NORMAL, frames would
// be published before they reach the file.
#pragma once

namespace herald::store {

// Registers the VFS (once; thread-safe) and returns its name for sqlite3_open_v2, or nullptr
// when it cannot be registered (the connection then uses SQLite's default VFS).
const char* coalescing_wal_vfs();

}  // namespace herald::store
