#include "alloc/scalable_resource.h"

#include <tbb/scalable_allocator.h>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>

#include <cstddef>
#include <cstdint>
#endif

namespace conveyor::alloc {

#if defined(__SANITIZE_THREAD__)
namespace {

// tbbmalloc is not instrumented, so ThreadSanitizer does not see the synchronisation by which it
// hands memory freed by one thread to another: the new owner's first writes look like races
// with the old owner's last reads (seen with tensor buffers recycled between consumer threads).
// Under TSan the resource announces each free as a release and each allocation as an acquire,
// the edge tbbmalloc itself provides. Keyed by page, not by block address: tbbmalloc recycles a
// slab for another size class, so a new block may start at an address no freed block started
// at, in the middle of one (seen by tests/schedule_test: an 8-byte scalar tensor reusing part
// of a freed enqueue_many buffer). Every page the block touches is released / acquired. This
// orders more than tbbmalloc does (all frees on a page before every later allocation on it),
// which can hide a race between two users of one page; it cannot report a false one.
constexpr std::uintptr_t kPage = 4096;

template <class F>
void for_each_page(void* p, std::size_t bytes, F f) {
  const auto first = reinterpret_cast<std::uintptr_t>(p) & ~(kPage - 1);
  const auto end = reinterpret_cast<std::uintptr_t>(p) + (bytes == 0 ? 1 : bytes);
  for (std::uintptr_t page = first; page < end; page += kPage) f(reinterpret_cast<void*>(page));
}

class TsanVisibleResource final : public std::pmr::memory_resource {
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    void* p = tbb::scalable_memory_resource()->allocate(bytes, alignment);
    for_each_page(p, bytes, [](void* page) { __tsan_acquire(page); });
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    for_each_page(p, bytes, [](void* page) { __tsan_release(page); });
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
