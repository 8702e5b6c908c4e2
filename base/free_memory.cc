#include "base/free_memory.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

// Declared weak, so that base/ links with either malloc: null unless the
// program is linked with tcmalloc (gperftools' C interface).
extern "C" void MallocExtension_ReleaseFreeMemory() __attribute__((weak));

namespace upfs {

void ReturnFreeMemory() {
  if (MallocExtension_ReleaseFreeMemory != nullptr) {
    MallocExtension_ReleaseFreeMemory();
    return;
  }
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

}  // namespace upfs
