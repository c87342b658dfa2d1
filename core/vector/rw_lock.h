// rw_lock.h: a writer-preferring reader/writer lock.
//
// Why not std::shared_mutex: on glibc it is a reader-preferring
// pthread_rwlock, so a steady stream of searches starves add() forever
// (measured: a 2,000-row add behind two busy search threads took a minute).
// Here a waiting writer blocks new readers. Not recursive: a thread holding
// the shared lock must not take it again (our searches never do).
// Meets the SharedMutex requirements, so std::shared_lock / std::unique_lock work.
#pragma once

#include <pthread.h>

namespace medsearch::vector::internal {

class RwLock {
 public:
  RwLock() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&lock_, &attr);
    pthread_rwlockattr_destroy(&attr);
  }
  ~RwLock() { pthread_rwlock_destroy(&lock_); }
  RwLock(const RwLock&) = delete;
  RwLock& operator=(const RwLock&) = delete;

  void lock() { pthread_rwlock_wrlock(&lock_); }
  bool try_lock() { return pthread_rwlock_trywrlock(&lock_) == 0; }
  void unlock() { pthread_rwlock_unlock(&lock_); }
  void lock_shared() { pthread_rwlock_rdlock(&lock_); }
  bool try_lock_shared() { return pthread_rwlock_tryrdlock(&lock_) == 0; }
  void unlock_shared() { pthread_rwlock_unlock(&lock_); }

 private:
  pthread_rwlock_t lock_;
};

}  // namespace medsearch::vector::internal
