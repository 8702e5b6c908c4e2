// Lock rules the compiler checks: clang's thread-safety attributes
// (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html) behind macros.
// Under clang with -Wthread-safety (every clang build of upfs, CMakeLists.txt)
// a member marked GUARDED_BY(mu_) read or written without mu_ held, or a
// function marked REQUIRES(mu_) called without it, is a compile error with
// -Werror. Under any other compiler the macros expand to nothing: they cost
// nothing at run time either way.
//
// The capabilities are the types of base/mutex.h (Mutex, SharedMutex) and
// the scoped locks that hold them; std::mutex is not annotated, so a
// member guarded by one is not checked.
//
// Which to use:
//   GUARDED_BY(mu)        a member read or written only with mu held
//   PT_GUARDED_BY(mu)     what a pointer member points to (the pointer
//                         itself is not)
//   REQUIRES(mu...)       a function its callers call with mu held
//   REQUIRES_SHARED(mu)   the same, held at least shared
//   EXCLUDES(mu...)       a function that takes mu itself: calling it with
//                         mu held would deadlock
//   ACQUIRE/RELEASE(...)  a function that returns with the lock held /
//                         released (lock types; a scoped lock's destructor)
//   NO_THREAD_SAFETY_ANALYSIS
//                         a function the analysis cannot follow (a lock
//                         held over a dynamic set of objects, one handed
//                         across a callback); each use says why.
#pragma once

#if defined(__clang__)
#define UPFS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define UPFS_THREAD_ANNOTATION(x)
#endif

// On a class: its objects are locks ("mutex", "shared_mutex").
#define CAPABILITY(name) UPFS_THREAD_ANNOTATION(capability(name))
// On a class: its objects hold a lock for their lifetime (RAII).
#define SCOPED_CAPABILITY UPFS_THREAD_ANNOTATION(scoped_lockable)

#define GUARDED_BY(x) UPFS_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) UPFS_THREAD_ANNOTATION(pt_guarded_by(x))

// Lock order between two locks, written on the later one: the analysis
// checks it only with -Wthread-safety-beta, so it is documentation here.
#define ACQUIRED_AFTER(...) UPFS_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define ACQUIRED_BEFORE(...) UPFS_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))

#define REQUIRES(...) UPFS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) UPFS_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define EXCLUDES(...) UPFS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))

#define ACQUIRE(...) UPFS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) UPFS_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) UPFS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) UPFS_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define RELEASE_GENERIC(...) UPFS_THREAD_ANNOTATION(release_generic_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) UPFS_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))

// A function that checks (or promises) the lock is held on return.
#define ASSERT_CAPABILITY(x) UPFS_THREAD_ANNOTATION(assert_capability(x))
// A function that returns a reference to lock x (so callers may lock it).
#define RETURN_CAPABILITY(x) UPFS_THREAD_ANNOTATION(lock_returned(x))

#define NO_THREAD_SAFETY_ANALYSIS UPFS_THREAD_ANNOTATION(no_thread_safety_analysis)
