// scalable_resource(): oneTBB's scalable allocator (tbbmalloc) as a std::pmr::memory_resource,
// for variable-size payloads such as the tensor layer's buffers.
//
// Contract:
//  - Exactly tbb::scalable_memory_resource(): allocate(bytes, alignment) is
//    scalable_aligned_malloc, deallocate is scalable_free. Per-thread caches and no global lock,
//    so many threads allocate without contending; memory may be freed by any thread.
//  - No NUMA binding and no pre-faulting: tbbmalloc takes memory from the OS in large blocks and
//    reuses them across threads. For memory on a chosen node use NumaResource.
//  - Errors: failure throws TBB's plain std::bad_alloc (not AllocationError: it does not name
//    the size).
//  - One process-wide instance; thread-safe; equal to itself (and, when TBB is built with RTTI,
//    to any other TBB scalable resource).
//  - Under ThreadSanitizer it is a thin wrapper that tells TSan about the happens-before edge
//    tbbmalloc provides when it hands a block freed by one thread to another (tbbmalloc is not
//    instrumented); without it, recycled blocks show up as false data races.
// The header names no TBB type: TBB is linked privately by conveyor::alloc.
#pragma once

#include <memory_resource>

namespace conveyor::alloc {

std::pmr::memory_resource* scalable_resource() noexcept;

}  // namespace conveyor::alloc
