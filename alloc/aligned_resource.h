// aligned_resource(): the memory Conveyor's rings use when the user passes no resource.
//
// Contract:
//  - Every allocation is aligned to at least kCachePairBytes (128), whatever smaller alignment
//    is asked: two allocations never share a cache-line pair, so one ring's slots cannot
//    false-share with a neighbouring allocation (alloc/cache_padded.h says why 128). Larger
//    powers of two are honoured.
//  - Requests below 2 MiB come from the global aligned operator new.
//  - Requests of >= 2 MiB are each an anonymous mapping, 2 MiB aligned, advised MADV_HUGEPAGE
//    and pre-faulted by the allocating thread (alloc/internal/pages.h). There is no NUMA
//    binding: Linux's default local policy puts the pages on the node of the thread that
//    allocates. To choose the node, pass a NumaResource instead.
//  - Errors: AllocationError (a std::bad_alloc, alloc/error.h) naming the bytes when memory
//    cannot be had; Error(kInvalidArgument) for an alignment that is not a power of two.
//  - One process-wide instance, never destroyed (usable from static destructors, like
//    std::pmr::new_delete_resource()); thread-safe; equality is identity.
#pragma once

#include <memory_resource>

namespace conveyor::alloc {

std::pmr::memory_resource* aligned_resource() noexcept;

}  // namespace conveyor::alloc
