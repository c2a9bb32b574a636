// Tests of batching over tensors (engine/tensor_batching.h; SPEC.md E6-E13, A31).
#include "engine/tensor_batching.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <numeric>
#include <set>
#include <vector>

#include "engine/coordinator.h"
#include "tests/test_errors.h"

namespace conveyor {
namespace {

using testutil::message_of;
using testutil::thrown_by;

// Element i: (int32 scalar i, float32 [2] {i, -i}); OutOfRange after n.
struct Rows {
  std::shared_ptr<std::atomic<int>> next = std::make_shared<std::atomic<int>>(0);
  int n = 0;
  Element operator()() const {
    const int i = next->fetch_add(1);
    if (i >= n) throw Error(ErrorKind::kOutOfRange, "over");
    return Element{{Tensor::scalar<std::int32_t>(i),
                    Tensor::vector<float>({static_cast<float>(i), static_cast<float>(-i)})}};
  }
};

const TensorInput kRowsInput{{DType::kInt32, DType::kFloat32}, {Shape{}, Shape{2}}, {}};

TEST(TensorBatchTest, E6_BatchesAreStackedTensors) {
  Session s;
  TensorBatchOptions o;
  o.batch_size = 4;
  auto batches = batch_tensors(s, Rows{.n = 10}, kRowsInput, o);
  Coordinator coord;
  RunnerThreads threads = s.start_queue_runners(&coord);
  std::optional<Element> b = batches.next();
  ASSERT_TRUE(b);
  EXPECT_EQ((*b)[0].shape(), Shape{4});
  EXPECT_EQ((*b)[1].shape(), (Shape{4, 2}));
  EXPECT_EQ(std::vector<std::int32_t>((*b)[0].data<std::int32_t>(),
                                      (*b)[0].data<std::int32_t>() + 4),
            (std::vector<std::int32_t>{0, 1, 2, 3}));
  EXPECT_EQ((*b)[1].data<float>()[3], -1.0f);
  ASSERT_TRUE(batches.next());
  EXPECT_FALSE(batches.next());  // E13: 2 left over, dropped
  coord.request_stop();
  coord.join();
}

TEST(TensorBatchTest, E7_E8_ShapesAndInputsAreChecked) {
  Session s;
  EXPECT_ERROR(batch_tensors(s, Rows{.n = 1}, TensorInput{}), ErrorKind::kInvalidArgument,
               "Expected at least one tensor in batch()");
  EXPECT_ERROR(batch_tensors(s, Rows{.n = 1},
                             TensorInput{{DType::kInt32}, {Shape{Shape::kUnknownDim}}, {}}),
               ErrorKind::kInvalidArgument, "All shapes must be fully defined");
  EXPECT_ERROR(batch_tensors(s, Rows{.n = 1}, TensorInput{{DType::kInt32}, {Shape::unknown_rank()}, {}}),
               ErrorKind::kInvalidArgument, "Cannot infer Tensor's rank");
  TensorBatchOptions explicit_shapes;
  explicit_shapes.name = "explicit";
  explicit_shapes.shapes = {Shape{}, Shape{2}};  // E7: explicit shapes win over unknown ones
  auto ok = batch_tensors(s, Rows{.n = 1},
                          TensorInput{{DType::kInt32, DType::kFloat32},
                                      {Shape::unknown_rank(), Shape{Shape::kUnknownDim}}, {}},
                          explicit_shapes);
  EXPECT_EQ(ok.queue().spec().shapes, (std::vector<Shape>{Shape{}, Shape{2}}));
}

TEST(TensorBatchTest, E7_EnqueueManyDropsDimensionZeroAndSplitsRuns) {
  Session s;
  TensorBatchOptions o;
  o.batch_size = 5;
  o.enqueue_mode = EnqueueMode::kMany;
  o.allow_smaller_final_batch = true;
  auto runs = std::make_shared<std::atomic<int>>(0);
  auto batches = batch_tensors(
      s,
      [runs] {
        const int r = runs->fetch_add(1);
        if (r >= 3) throw Error(ErrorKind::kOutOfRange, "over");
        return Element{{Tensor::vector<std::int64_t>({3 * r, 3 * r + 1, 3 * r + 2})}};
      },
      TensorInput{{DType::kInt64}, {Shape{3}}, {}}, o);
  EXPECT_EQ(batches.queue().spec().shapes, std::vector<Shape>{Shape{}});
  Coordinator coord;
  RunnerThreads threads = s.start_queue_runners(&coord);
  std::vector<std::int64_t> all;
  while (auto b = batches.next()) {
    const Tensor& t = (*b)[0];
    all.insert(all.end(), t.data<std::int64_t>(), t.data<std::int64_t>() + t.dim(0));
  }
  std::vector<std::int64_t> expected(9);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(all, expected);
  coord.request_stop();
  coord.join();
}

TEST(TensorBatchTest, A31_DynamicPadPadsToTheBatchMaximum) {
  Session s;
  TensorBatchOptions o;
  o.batch_size = 3;
  o.padding = Padding::kDynamic;
  auto batches = batch_tensors(
      s, [c = Rows{.n = 3}] {
        const int i = c.next->fetch_add(1);
        if (i >= 3) throw Error(ErrorKind::kOutOfRange, "over");
        std::vector<std::int32_t> v(static_cast<std::size_t>(i + 1), i + 1);  // length i+1
        return Element{{Tensor::from<std::int32_t>(Shape{i + 1}, std::span<const std::int32_t>(v))}};
      },
      TensorInput{{DType::kInt32}, {Shape{Shape::kUnknownDim}}, {}}, o);
  EXPECT_EQ(batches.queue().kind(), "PaddingFIFOQueue");
  Coordinator coord;
  RunnerThreads threads = s.start_queue_runners(&coord);
  std::optional<Element> b = batches.next();
  ASSERT_TRUE(b);
  EXPECT_EQ((*b)[0].shape(), (Shape{3, 3}));
  const std::int32_t* d = (*b)[0].data<std::int32_t>();
  EXPECT_EQ(std::vector<std::int32_t>(d, d + 9),
            (std::vector<std::int32_t>{1, 0, 0, 2, 2, 0, 3, 3, 3}));
  coord.request_stop();
  coord.join();
}

TEST(TensorBatchTest, E8_DictInputsComeBackAsDicts) {
  Session s;
  TensorBatchOptions o;
  o.batch_size = 2;
  auto batches = batch_tensors(
      s, [c = Rows{.n = 2}] {
        const int i = c.next->fetch_add(1);
        if (i >= 2) throw Error(ErrorKind::kOutOfRange, "over");
        NamedElement e;
        e.emplace("label", Tensor::scalar<std::int32_t>(i));
        return e;
      },
      TensorInput{{DType::kInt32}, {Shape{}}, {"label"}}, o);
  Coordinator coord;
  RunnerThreads threads = s.start_queue_runners(&coord);
  std::optional<NamedElement> b = batches.next_named();
  ASSERT_TRUE(b);
  ASSERT_EQ(b->count("label"), 1u);
  EXPECT_EQ(b->at("label").shape(), Shape{2});
  coord.request_stop();
  coord.join();
}

TEST(TensorBatchTest, E12_MaybeBatchKeepsScalarsAndFiltersVectors) {
  Session s;
  TensorBatchOptions one;
  one.batch_size = 100;
  one.allow_smaller_final_batch = true;
  auto evens = maybe_batch_tensors(
      s, [c = Rows{.n = 20}] {
        Element e = c();
        const bool keep = e[0].data<std::int32_t>()[0] % 2 == 0;
        return std::make_pair(std::move(e), Tensor::scalar<bool>(keep));
      },
      kRowsInput, one);
  TensorBatchOptions many = one;
  many.name = "many";
  many.enqueue_mode = EnqueueMode::kMany;
  auto runs = std::make_shared<std::atomic<int>>(0);
  auto filtered = maybe_batch_tensors(
      s,
      [runs] {
        if (runs->fetch_add(1) >= 1) throw Error(ErrorKind::kOutOfRange, "over");
        return std::make_pair(Element{{Tensor::vector<std::int32_t>({10, 11, 12, 13})}},
                              Tensor::vector<bool>({true, false, false, true}));
      },
      TensorInput{{DType::kInt32}, {Shape{4}}, {}}, many);
  Coordinator coord;
  RunnerThreads threads = s.start_queue_runners(&coord);
  std::optional<Element> e = evens.next();
  ASSERT_TRUE(e);
  EXPECT_EQ((*e)[0].dim(0), 10);
  std::optional<Element> f = filtered.next();
  ASSERT_TRUE(f);
  ASSERT_EQ((*f)[0].dim(0), 2);
  EXPECT_EQ((*f)[0].data<std::int32_t>()[1], 13);
  coord.request_stop();
  coord.join();
}

TEST(TensorBatchTest, E12_AKeepInputOfTheWrongShapeStopsThePipeline) {
  Session s;
  TensorBatchOptions o;
  o.batch_size = 1;
  auto batches = maybe_batch_tensors(
      s, [c = Rows{.n = 5}] {
        return std::make_pair(c(), Tensor::vector<bool>({true, true}));  // vector without kMany
      },
      kRowsInput, o);
  Coordinator coord;
  RunnerThreads threads = s.start_queue_runners(&coord);
  EXPECT_ERROR(coord.join(), ErrorKind::kInvalidArgument, "keep_input shape");
}

TEST(TensorBatchTest, E10_ShuffleBatchTensorsDeliversEveryExampleOnce) {
  Session s;
  TensorShuffleBatchOptions o;
  o.batch_size = 8;
  o.capacity = 64;
  o.min_after_dequeue = 16;
  o.seed = 11;
  o.num_threads = 2;
  o.allow_smaller_final_batch = true;
  auto batches = shuffle_batch_tensors(s, Rows{.n = 200}, kRowsInput, o);
  EXPECT_EQ(batches.queue().kind(), "RandomShuffleQueue");
  Coordinator coord;
  RunnerThreads threads = s.start_queue_runners(&coord);
  std::vector<std::int32_t> got;
  while (auto b = batches.next()) {
    const Tensor& t = (*b)[0];
    got.insert(got.end(), t.data<std::int32_t>(), t.data<std::int32_t>() + t.dim(0));
  }
  std::vector<std::int32_t> sorted = got;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::int32_t> expected(200);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(sorted, expected);
  EXPECT_NE(got, expected);
  coord.request_stop();
  coord.join();
}

}  // namespace
}  // namespace conveyor
