#include "alloc/scalable_resource.h"

#include <tbb/scalable_allocator.h>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>

#include <cstddef>
#endif

namespace conveyor::alloc {

#if defined(__SANITIZE_THREAD__)
namespace {

// tbbmalloc is not instrumented, so ThreadSanitizer does not see the synchronisation by which it
// hands a block freed by one thread to another: the new owner's first writes look like races
// with the old owner's last reads (seen with tensor buffers recycled between consumer threads).
// Under TSan the resource announces each free as a release on the block's address and each
// allocation as an acquire on it, the edge tbbmalloc itself provides.
class TsanVisibleResource final : public std::pmr::memory_resource {
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    void* p = tbb::scalable_memory_resource()->allocate(bytes, alignment);
    __tsan_acquire(p);
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    __tsan_release(p);
    tbb::scalable_memory_resource()->deallocate(p, bytes, alignment);
  }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }
};

}  // namespace

std::pmr::memory_resource* scalable_resource() noexcept {
  static TsanVisibleResource* const resource = new TsanVisibleResource;  // never destroyed
  return resource;
}
#else
std::pmr::memory_resource* scalable_resource() noexcept { return tbb::scalable_memory_resource(); }
#endif

}  // namespace conveyor::alloc
