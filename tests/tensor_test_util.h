// Helpers shared by the tensor-layer tests (tensor_test.cc, tensor_queue_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <exception>
#include <memory_resource>
#include <string>
#include <utility>
#include <vector>

#include "engine/element.h"
#include "engine/queue_errors.h"
#include "engine/tensor.h"
#include "tests/test_errors.h"

namespace conveyor::testutil {

// Expects f to throw a conveyor::Error of `kind` whose message is `message`.
template <class F>
void expect_error(F&& f, ErrorKind kind, const std::string& message) {
  const std::exception_ptr e = thrown_by(std::forward<F>(f));
  ASSERT_TRUE(e) << "nothing thrown; expected " << message;
  EXPECT_EQ(kind_of(e), kind) << message_of(e);
  EXPECT_EQ(message_of(e), message);
}

inline Element elem(std::vector<Tensor> components) { return Element{std::move(components)}; }

// A memory resource that counts the allocations it forwards.
class CountingResource : public std::pmr::memory_resource {
 public:
  std::size_t allocations = 0;
  std::size_t live = 0;

 private:
  void* do_allocate(std::size_t bytes, std::size_t align) override {
    ++allocations;
    ++live;
    return std::pmr::new_delete_resource()->allocate(bytes, align);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t align) override {
    --live;
    std::pmr::new_delete_resource()->deallocate(p, bytes, align);
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override {
    return this == &o;
  }
};

}  // namespace conveyor::testutil
