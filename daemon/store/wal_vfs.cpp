#include "daemon/store/wal_vfs.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

namespace herald::store {
namespace {

constexpr const char* kName = "herald-wal";
// Beyond this the gathered writes go out at once (a big transaction spilling pages).
constexpr size_t kMaxGathered = 16u << 20;
// The unix VFS writes at most 128 KiB - 1 at a time (it masks the length with 0x1ffff and
// reports a short write as a full disk): larger gatherings go out in pieces of this size.
constexpr size_t kMaxWrite = 120u << 10;
// After a flush, a buffer grown past this is released rather than kept for the next commit.
constexpr size_t kKeptCapacity = 1u << 20;

sqlite3_vfs* base_vfs() {
  static sqlite3_vfs vfs{};
  return &vfs;
}

sqlite3_vfs* real_vfs(sqlite3_vfs* vfs) {
  return static_cast<sqlite3_vfs*>(vfs->pAppData);
}

// Our sqlite3_file; SQLite's own file object follows it in the same allocation.
struct File {
  sqlite3_file base;
  sqlite3_file* real;
  std::string* gathered;  // WAL files only: the bytes not yet written, from `offset` on
  sqlite3_int64 offset;
};

sqlite3_file* real(sqlite3_file* f) {
  return reinterpret_cast<File*>(f)->real;
}

int flush(File* f) {
  if (f->gathered == nullptr || f->gathered->empty()) {
    return SQLITE_OK;
  }
  std::string& g = *f->gathered;
  int rc = SQLITE_OK;
  for (size_t done = 0; done < g.size() && rc == SQLITE_OK; done += kMaxWrite) {
    const size_t n = std::min(kMaxWrite, g.size() - done);
    rc = f->real->pMethods->xWrite(f->real, g.data() + done, static_cast<int>(n),
                                   f->offset + static_cast<sqlite3_int64>(done));
  }
  // Written or not, they are gone: after a failed write SQLite fails the transaction, and the
  // frames it wrote are never published.
  g.clear();
  if (g.capacity() > kKeptCapacity) {
    std::string().swap(g);
  }
  return rc;
}

// ---- the methods of every file: straight through to SQLite's own ------------------------

int x_close(sqlite3_file* f) {
  auto* file = reinterpret_cast<File*>(f);
  int flushed = flush(file);
  delete file->gathered;
  file->gathered = nullptr;
  int rc = file->real->pMethods ? file->real->pMethods->xClose(file->real) : SQLITE_OK;
  return flushed != SQLITE_OK ? flushed : rc;
}
int x_read(sqlite3_file* f, void* p, int n, sqlite3_int64 off) {
  return real(f)->pMethods->xRead(real(f), p, n, off);
}
int x_write(sqlite3_file* f, const void* p, int n, sqlite3_int64 off) {
  return real(f)->pMethods->xWrite(real(f), p, n, off);
}
int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  return real(f)->pMethods->xTruncate(real(f), size);
}
int x_sync(sqlite3_file* f, int flags) {
  return real(f)->pMethods->xSync(real(f), flags);
}
int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
  return real(f)->pMethods->xFileSize(real(f), size);
}
int x_lock(sqlite3_file* f, int lock) {
  return real(f)->pMethods->xLock(real(f), lock);
}
int x_unlock(sqlite3_file* f, int lock) {
  return real(f)->pMethods->xUnlock(real(f), lock);
}
int x_check_reserved_lock(sqlite3_file* f, int* out) {
  return real(f)->pMethods->xCheckReservedLock(real(f), out);
}
int x_file_control(sqlite3_file* f, int op, void* arg) {
  return real(f)->pMethods->xFileControl(real(f), op, arg);
}
int x_sector_size(sqlite3_file* f) {
  return real(f)->pMethods->xSectorSize(real(f));
}
int x_device_characteristics(sqlite3_file* f) {
  return real(f)->pMethods->xDeviceCharacteristics(real(f));
}
int x_shm_map(sqlite3_file* f, int page, int size, int extend, void volatile** p) {
  return real(f)->pMethods->xShmMap(real(f), page, size, extend, p);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
}
void x_shm_barrier(sqlite3_file* f) {
  real(f)->pMethods->xShmBarrier(real(f));
}
int x_shm_unmap(sqlite3_file* f, int delete_flag) {
  return real(f)->pMethods->xShmUnmap(real(f), delete_flag);
}
int x_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** p) {
  return real(f)->pMethods->xFetch(real(f), off, n, p);
}
int x_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  return real(f)->pMethods->xUnfetch(real(f), off, p);
}

// ---- a WAL file: writes gathered, everything else after a flush --------------------------

int wal_write(sqlite3_file* f, const void* p, int n, sqlite3_int64 off) {
  auto* file = reinterpret_cast<File*>(f);
  std::string& g = *file->gathered;
  const bool follows = off == file->offset + static_cast<sqlite3_int64>(g.size());
  if (!g.empty() && (!follows || g.size() + static_cast<size_t>(n) > kMaxGathered)) {
    if (int rc = flush(file); rc != SQLITE_OK) {
      return rc;
    }
  }
  if (g.empty()) {
    file->offset = off;
  }
  g.append(static_cast<const char*>(p), static_cast<size_t>(n));
  return SQLITE_OK;
}

template <class Fn>
int after_flush(sqlite3_file* f, Fn&& fn) {
  if (int rc = flush(reinterpret_cast<File*>(f)); rc != SQLITE_OK) {
    return rc;
  }
  return fn();
}

int wal_read(sqlite3_file* f, void* p, int n, sqlite3_int64 off) {
  return after_flush(f, [&] { return x_read(f, p, n, off); });
}
int wal_truncate(sqlite3_file* f, sqlite3_int64 size) {
  return after_flush(f, [&] { return x_truncate(f, size); });
}
int wal_sync(sqlite3_file* f, int flags) {
  return after_flush(f, [&] { return x_sync(f, flags); });
}
int wal_file_size(sqlite3_file* f, sqlite3_int64* size) {
  return after_flush(f, [&] { return x_file_size(f, size); });
}
int wal_file_control(sqlite3_file* f, int op, void* arg) {
  return after_flush(f, [&] { return x_file_control(f, op, arg); });
}
int wal_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** p) {
  return after_flush(f, [&] { return x_fetch(f, off, n, p); });
}

constexpr sqlite3_io_methods kPlainMethods = {3,
                                              x_close,
                                              x_read,
                                              x_write,
                                              x_truncate,
                                              x_sync,
                                              x_file_size,
                                              x_lock,
                                              x_unlock,
                                              x_check_reserved_lock,
                                              x_file_control,
                                              x_sector_size,
                                              x_device_characteristics,
                                              x_shm_map,
                                              x_shm_lock,
                                              x_shm_barrier,
                                              x_shm_unmap,
                                              x_fetch,
                                              x_unfetch};

constexpr sqlite3_io_methods kWalMethods = {3,
                                            x_close,
                                            wal_read,
                                            wal_write,
                                            wal_truncate,
                                            wal_sync,
                                            wal_file_size,
                                            x_lock,
                                            x_unlock,
                                            x_check_reserved_lock,
                                            wal_file_control,
                                            x_sector_size,
                                            x_device_characteristics,
                                            x_shm_map,
                                            x_shm_lock,
                                            x_shm_barrier,
                                            x_shm_unmap,
                                            wal_fetch,
                                            x_unfetch};

// ---- the VFS: opening wraps SQLite's file; the rest is SQLite's own ----------------------

int v_open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* file = reinterpret_cast<File*>(f);
  file->base.pMethods = nullptr;
  file->real = reinterpret_cast<sqlite3_file*>(file + 1);
  file->gathered = nullptr;
  file->offset = 0;
  int rc = real_vfs(vfs)->xOpen(real_vfs(vfs), name, file->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    return rc;  // pMethods stays null: SQLite will not call xClose on us
  }
  // The unix VFS's files have every method of version 3, which ours forward to.
  if (file->real->pMethods == nullptr || file->real->pMethods->iVersion < 3) {
    file->real->pMethods->xClose(file->real);
    return SQLITE_CANTOPEN;
  }
  if ((flags & SQLITE_OPEN_WAL) != 0) {
    file->gathered = new (std::nothrow) std::string;
    if (file->gathered == nullptr) {
      file->real->pMethods->xClose(file->real);
      return SQLITE_NOMEM;
    }
    file->base.pMethods = &kWalMethods;
  } else {
    file->base.pMethods = &kPlainMethods;
  }
  return SQLITE_OK;
}

int v_delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  return real_vfs(vfs)->xDelete(real_vfs(vfs), name, sync_dir);
}
int v_access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return real_vfs(vfs)->xAccess(real_vfs(vfs), name, flags, out);
}
int v_full_pathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  return real_vfs(vfs)->xFullPathname(real_vfs(vfs), name, n, out);
}
void* v_dl_open(sqlite3_vfs* vfs, const char* name) {
  return real_vfs(vfs)->xDlOpen(real_vfs(vfs), name);
}
void v_dl_error(sqlite3_vfs* vfs, int n, char* out) {
  real_vfs(vfs)->xDlError(real_vfs(vfs), n, out);
}
void (*v_dl_sym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return real_vfs(vfs)->xDlSym(real_vfs(vfs), handle, symbol);
}
void v_dl_close(sqlite3_vfs* vfs, void* handle) {
  real_vfs(vfs)->xDlClose(real_vfs(vfs), handle);
}
int v_randomness(sqlite3_vfs* vfs, int n, char* out) {
  return real_vfs(vfs)->xRandomness(real_vfs(vfs), n, out);
}
int v_sleep(sqlite3_vfs* vfs, int micros) {
  return real_vfs(vfs)->xSleep(real_vfs(vfs), micros);
}
int v_current_time(sqlite3_vfs* vfs, double* out) {
  return real_vfs(vfs)->xCurrentTime(real_vfs(vfs), out);
}
int v_get_last_error(sqlite3_vfs* vfs, int n, char* out) {
  return real_vfs(vfs)->xGetLastError(real_vfs(vfs), n, out);
}
int v_current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return real_vfs(vfs)->xCurrentTimeInt64(real_vfs(vfs), out);
}
int v_set_system_call(sqlite3_vfs* vfs, const char* name, sqlite3_syscall_ptr fn) {
  return real_vfs(vfs)->xSetSystemCall(real_vfs(vfs), name, fn);
}
sqlite3_syscall_ptr v_get_system_call(sqlite3_vfs* vfs, const char* name) {
  return real_vfs(vfs)->xGetSystemCall(real_vfs(vfs), name);
}
const char* v_next_system_call(sqlite3_vfs* vfs, const char* name) {
  return real_vfs(vfs)->xNextSystemCall(real_vfs(vfs), name);
}

}  // namespace

const char* coalescing_wal_vfs() {
  static const char* name = []() -> const char* {
    sqlite3_vfs* os = sqlite3_vfs_find(nullptr);
    if (os == nullptr || os->iVersion < 3) {
      return nullptr;
    }
    sqlite3_vfs* vfs = base_vfs();
    *vfs = *os;
    vfs->pNext = nullptr;
    vfs->zName = kName;
    vfs->pAppData = os;
    vfs->szOsFile = static_cast<int>(sizeof(File)) + os->szOsFile;
    vfs->xOpen = v_open;
    vfs->xDelete = v_delete;
    vfs->xAccess = v_access;
    vfs->xFullPathname = v_full_pathname;
    vfs->xDlOpen = v_dl_open;
    vfs->xDlError = v_dl_error;
    vfs->xDlSym = v_dl_sym;
    vfs->xDlClose = v_dl_close;
    vfs->xRandomness = v_randomness;
    vfs->xSleep = v_sleep;
    vfs->xCurrentTime = v_current_time;
    vfs->xGetLastError = v_get_last_error;
    vfs->xCurrentTimeInt64 = v_current_time_int64;
    vfs->xSetSystemCall = v_set_system_call;
    vfs->xGetSystemCall = v_get_system_call;
    vfs->xNextSystemCall = v_next_system_call;
    return sqlite3_vfs_register(vfs, /*makeDflt=*/0) == SQLITE_OK ? kName : nullptr;
  }();
  return name;
}

}  // namespace herald::store
