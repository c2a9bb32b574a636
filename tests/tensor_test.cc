// The tensor layer: DType / Shape / Tensor (SPEC.md A28) and shape inference for batching (E7).
// TensorQueue's checks and runs are in tensor_queue_test.cc.
#include "engine/tensor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory_resource>
#include <string>
#include <thread>
#include <vector>

#include "engine/element.h"
#include "engine/tensor_queue.h"
#include "tests/tensor_test_util.h"
#include "tests/test_errors.h"
#include "tests/test_scale.h"

namespace conveyor {
namespace {

using testutil::CountingResource;
using testutil::elem;
using testutil::expect_error;
using testutil::message_of;
using testutil::thrown_by;

// ---------------------------------------------------------------------------------------------
// DType, Shape, Tensor

TEST(Tensor, A28_DTypeNamesAndSizesAreTFs) {
  EXPECT_EQ(to_string(DType::kFloat32), "float32");
  EXPECT_EQ(to_string(DType::kFloat64), "float64");
  EXPECT_EQ(to_string(DType::kInt8), "int8");
  EXPECT_EQ(to_string(DType::kInt16), "int16");
  EXPECT_EQ(to_string(DType::kInt32), "int32");
  EXPECT_EQ(to_string(DType::kInt64), "int64");
  EXPECT_EQ(to_string(DType::kUInt8), "uint8");
  EXPECT_EQ(to_string(DType::kUInt16), "uint16");
  EXPECT_EQ(to_string(DType::kUInt32), "uint32");
  EXPECT_EQ(to_string(DType::kUInt64), "uint64");
  EXPECT_EQ(to_string(DType::kBool), "bool");
  EXPECT_EQ(to_string(DType::kString), "string");
  EXPECT_EQ(size(DType::kFloat64), 8u);
  EXPECT_EQ(size(DType::kInt16), 2u);
  EXPECT_EQ(size(DType::kBool), 1u);
  EXPECT_EQ(size(DType::kString), sizeof(std::string));
  static_assert(dtype_of<std::uint16_t> == DType::kUInt16);
  static_assert(dtype_of<std::string> == DType::kString);
}

TEST(Tensor, ShapePrintsAsTFDoes) {
  EXPECT_EQ(Shape({3, 4}).to_string(), "[3,4]");
  EXPECT_EQ(Shape({-1, 4}).to_string(), "[?,4]");
  EXPECT_EQ(Shape{}.to_string(), "[]");
  EXPECT_EQ(Shape::unknown_rank().to_string(), "<unknown>");
  EXPECT_TRUE(Shape({3, 4}).fully_defined());
  EXPECT_FALSE(Shape({-1, 4}).fully_defined());
  EXPECT_FALSE(Shape::unknown_rank().fully_defined());
  EXPECT_EQ(Shape({3, 4}).num_elements(), 12);
  EXPECT_EQ(Shape{}.num_elements(), 1);
  EXPECT_EQ(Shape({-1, 4}).num_elements(), -1);
  EXPECT_EQ(Shape::unknown_rank().rank(), -1);
  EXPECT_TRUE(Shape({-1, 4}).compatible_with(Shape({7, 4})));
  EXPECT_FALSE(Shape({-1, 4}).compatible_with(Shape({7, 5})));
  EXPECT_FALSE(Shape({4}).compatible_with(Shape({4, 1})));
  EXPECT_TRUE(Shape::unknown_rank().compatible_with(Shape({1, 2, 3})));
  EXPECT_EQ(Shape({3, 4}).prepend(2), Shape({2, 3, 4}));
  EXPECT_EQ(Shape({2, 3, 4}).drop_first(), Shape({3, 4}));
  expect_error(
      [] {
        Shape({3, -2});
      },
      ErrorKind::kInvalidArgument, "dimension = -2: must be >= 0, or -1 (unknown)");
}

TEST(Tensor, FactoriesAndTypedAccess) {
  const Tensor s = Tensor::scalar(7);
  EXPECT_EQ(s.dtype(), DType::kInt32);
  EXPECT_EQ(s.shape(), Shape{});
  EXPECT_EQ(s.data<std::int32_t>()[0], 7);

  const Tensor v = Tensor::vector<double>({1.5, 2.5});
  EXPECT_EQ(v.dtype(), DType::kFloat64);
  EXPECT_EQ(v.shape(), Shape({2}));
  EXPECT_EQ(v.flat<double>()[1], 2.5);

  const Tensor m = Tensor::from<std::int64_t>(Shape({2, 3}), {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(m.num_elements(), 6u);
  EXPECT_EQ(m.byte_size(), 48u);
  EXPECT_EQ(m.flat<std::int64_t>()[4], 5);

  const Tensor str = Tensor::vector({"a", "bc"});
  EXPECT_EQ(str.dtype(), DType::kString);
  EXPECT_EQ(str.flat<std::string>()[1], "bc");
  EXPECT_EQ(Tensor::scalar(std::string("x")).data<std::string>()[0], "x");

  const Tensor zeros(DType::kFloat32, Shape({2, 2}));
  for (float f : zeros.flat<float>()) EXPECT_EQ(f, 0.0f);
  const Tensor empties(DType::kString, Shape({3}));
  for (const std::string& e : empties.flat<std::string>()) EXPECT_EQ(e, "");

  expect_error([&] { (void)v.data<float>(); }, ErrorKind::kInvalidArgument,
               "Tensor of dtype float64 accessed as float32");
  expect_error(
      [] {
        Tensor::from<float>(Shape({2, 2}), {1, 2, 3});
      },
      ErrorKind::kInvalidArgument, "Shape [2,2] needs 4 values, got 3");
  expect_error([] { Tensor(DType::kInt8, Shape({-1})); }, ErrorKind::kInvalidArgument,
               "shape = [?]: a tensor's shape must be fully defined");
}

TEST(Tensor, ShapeTooLargeIsInvalidArgument) {
  const std::int64_t big = std::int64_t{1} << 40;
  EXPECT_EQ(Shape({big, big}).num_elements(), -1);
  expect_error(
      [&] {
        Tensor(DType::kInt8, Shape({big, big}));
      },
      ErrorKind::kInvalidArgument,
      "shape = [1099511627776,1099511627776]: too many elements for one tensor");
  expect_error(
      [&] {
        Tensor(DType::kInt64, Shape({big, big >> 18}));
      },
      ErrorKind::kInvalidArgument,
      "shape = [1099511627776,4194304]: too many elements for one tensor");
}

TEST(Tensor, CopyIsDeepAndMoveStealsTheBuffer) {
  CountingResource memory;
  {
    Tensor a = Tensor::from<float>(Shape({2}), {1, 2}, &memory);
    Tensor b = a;  // deep, same resource
    EXPECT_EQ(memory.allocations, 2u);
    EXPECT_EQ(b.memory(), &memory);
    b.data<float>()[0] = 9;
    EXPECT_EQ(a.data<float>()[0], 1);
    EXPECT_NE(a, b);

    const void* buffer = a.raw();
    Tensor c = std::move(a);
    EXPECT_EQ(c.raw(), buffer);
    EXPECT_EQ(memory.allocations, 2u);
    EXPECT_FALSE(a.initialized());  // NOLINT(bugprone-use-after-move): the moved-from state
    EXPECT_EQ(a.num_elements(), 0u);

    Tensor s = Tensor::vector({"long enough to live on the heap, not inline", "b"}, &memory);
    Tensor t = s;
    EXPECT_EQ(s, t);
    t.data<std::string>()[1] = "changed";
    EXPECT_EQ(s.flat<std::string>()[1], "b");
    a = t;  // copy-assign into a moved-from tensor
    EXPECT_EQ(a, t);
  }
  EXPECT_EQ(memory.live, 0u);
}

TEST(Tensor, EqualityComparesDtypeShapeAndValues) {
  EXPECT_EQ(Tensor::vector({1, 2}), Tensor::vector({1, 2}));
  EXPECT_NE(Tensor::vector({1, 2}), Tensor::vector({1, 3}));
  EXPECT_NE(Tensor::vector({1, 2}), Tensor::from<std::int32_t>(Shape({2, 1}), {1, 2}));
  EXPECT_NE(Tensor::vector<std::int32_t>({1, 2}), Tensor::vector<std::int64_t>({1, 2}));
  EXPECT_EQ(Tensor::vector({"a"}), Tensor::vector({"a"}));
  EXPECT_NE(Tensor::vector({"a"}), Tensor::vector({"b"}));
}

// ---------------------------------------------------------------------------------------------
// E7: shape inference for the batching layer

TEST(InferShapes, E7_ExplicitShapesWin) {
  const std::vector<std::vector<Shape>> sources{{Shape({5, 2})}};
  const std::vector<Shape> given{Shape({7})};
  EXPECT_EQ(infer_shapes(sources, EnqueueMode::kOne, given), given);
}

TEST(InferShapes, E7_InferredFromTheFirstElementWithoutDimZeroForEnqueueMany) {
  const std::vector<Element> elements{
      elem({Tensor(DType::kInt32, Shape({4, 2})), Tensor::scalar(1.0)})};
  EXPECT_EQ(infer_shapes(elements, EnqueueMode::kOne),
            (std::vector<Shape>{Shape({4, 2}), Shape{}}));
  expect_error([&] { infer_shapes(elements, EnqueueMode::kMany); }, ErrorKind::kInvalidArgument,
               "Shape [] must have rank at least 1 (tuple component 1 of an enqueue_many)");
  const std::vector<Element> batch{elem({Tensor(DType::kInt32, Shape({4, 2}))})};
  EXPECT_EQ(infer_shapes(batch, EnqueueMode::kMany), std::vector<Shape>{Shape({2})});
}

TEST(InferShapes, E7_UnknownRankOrUndefinedShapeIsInvalidArgument) {
  const std::vector<std::vector<Shape>> unknown{{Shape({2}), Shape::unknown_rank()}};
  expect_error([&] { infer_shapes(unknown, EnqueueMode::kOne); }, ErrorKind::kInvalidArgument,
               "Cannot infer Tensor's rank: component 1 has shape <unknown>");
  const std::vector<std::vector<Shape>> partial{{Shape({-1, 2})}};
  expect_error([&] { infer_shapes(partial, EnqueueMode::kOne); }, ErrorKind::kInvalidArgument,
               "All shapes must be fully defined: [[?,2]]");
  EXPECT_EQ(infer_shapes(partial, EnqueueMode::kOne, {}, Padding::kDynamic),
            std::vector<Shape>{Shape({-1, 2})});
  // With enqueue_many only dimension 0 may be unknown.
  EXPECT_EQ(infer_shapes(partial, EnqueueMode::kMany), std::vector<Shape>{Shape({2})});
  const std::vector<Shape> explicit_unknown{Shape::unknown_rank()};
  expect_error(
      [&] { infer_shapes(partial, EnqueueMode::kOne, explicit_unknown, Padding::kDynamic); },
      ErrorKind::kInvalidArgument, "All shapes must have a defined rank: [<unknown>]");
  expect_error([] { infer_shapes(std::span<const Element>{}, EnqueueMode::kOne); },
               ErrorKind::kInvalidArgument, "Expected at least one tensor");
}

TEST(InferShapes, E7_SourcesOfAJoinMustAgree) {
  const std::vector<std::vector<Shape>> ok{{Shape({3, 2})}, {Shape({5, 2})}};
  EXPECT_EQ(infer_shapes(ok, EnqueueMode::kMany), std::vector<Shape>{Shape({2})});
  expect_error([&] { infer_shapes(ok, EnqueueMode::kOne); }, ErrorKind::kInvalidArgument,
               "Shapes [3,2] and [5,2] are not compatible (component 0)");
}

}  // namespace
}  // namespace conveyor
