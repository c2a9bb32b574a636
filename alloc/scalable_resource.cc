#include "alloc/scalable_resource.h"

#include <tbb/scalable_allocator.h>

namespace conveyor::alloc {

std::pmr::memory_resource* scalable_resource() noexcept { return tbb::scalable_memory_resource(); }

}  // namespace conveyor::alloc
