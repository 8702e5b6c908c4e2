// ReturnFreeMemory: hands the pages malloc holds free back to the system,
// whichever malloc the program is linked with (UPFS_MALLOC, the top-level
// CMakeLists.txt).
#pragma once

namespace upfs {

// With tcmalloc: MallocExtension_ReleaseFreeMemory, its free page spans
// (it also hands them back on its own, a little at each free). With
// glibc's malloc (UPFS_MALLOC=glibc, sanitizer builds): malloc_trim(0),
// which walks every arena; glibc keeps what a thread frees in that
// thread's arena otherwise. Costs a walk of the allocator's free lists:
// for after a burst of memory (a store opened, a finish of many files),
// not per request.
void ReturnFreeMemory();

}  // namespace upfs
