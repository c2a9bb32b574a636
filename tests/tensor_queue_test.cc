// TensorQueue over FifoQueue: QueueSpec checks and element checks (SPEC.md A1, A2, A4, A5, A7,
// A8, A13, A14, A18-A21, A26, A28, A31), and an exactly-once run of producers (enqueue_many)
// against consumers (dequeue_up_to). Split from tensor_test.cc.
#include "engine/tensor_queue.h"

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
// QueueSpec (A1, A2, A31)

TEST(TensorQueue, A1_ShapesCountMustMatchDtypes) {
  expect_error(
      [] {
        TensorQueue<>({{DType::kInt32, DType::kFloat32}, {Shape({1})}}, 10, "q");
      },
      ErrorKind::kInvalidArgument, "Queue shapes must have the same length as dtypes");
}

TEST(TensorQueue, A1_NamesCountMustMatchDtypes) {
  expect_error(
      [] {
        TensorQueue<>({{DType::kInt32}, {}, {"a", "b"}}, 10, "q");
      },
      ErrorKind::kInvalidArgument, "Queue names must have the same length as dtypes");
  expect_error(
      [] {
        TensorQueue<>({{DType::kInt32, DType::kInt32}, {}, {"a", "a"}}, 10, "q");
      },
      ErrorKind::kInvalidArgument, "Queue names must be unique: 'a' appears more than once");
}

TEST(TensorQueue, A1_ShapesMustBeFullyDefinedWithoutPadding) {
  expect_error(
      [] {
        TensorQueue<>({{DType::kInt32}, {Shape({-1, 2})}}, 10, "q");
      },
      ErrorKind::kInvalidArgument, "All shapes must be fully defined: [[?,2]]");
}

TEST(TensorQueue, A2_EmptyComponentListIsInvalidArgument) {
  expect_error([] { TensorQueue<>(QueueSpec{}, 10, "q"); }, ErrorKind::kInvalidArgument,
               "Queue needs at least one component: dtypes is empty");
}

TEST(TensorQueue, A31_PaddingNeedsShapesOfKnownRank) {
  expect_error(
      [] {
        TensorQueue<>({{DType::kInt32, DType::kInt32}, {}, {}, Padding::kDynamic}, 10, "q");
      },
      ErrorKind::kInvalidArgument,
      "Shapes must be provided for all components, but received 2 dtypes and 0 shapes.");
  expect_error(
      [] {
        TensorQueue<>({{DType::kInt32}, {Shape::unknown_rank()}, {}, Padding::kDynamic}, 10, "q");
      },
      ErrorKind::kInvalidArgument, "All shapes must have a defined rank: [<unknown>]");
}

// ---------------------------------------------------------------------------------------------
// A4: names

TEST(TensorQueue, A4_NamedQueueTakesDictsWithItsKeys) {
  TensorQueue<> q({{DType::kInt32, DType::kString}, {Shape{}, Shape{}}, {"label", "path"}}, 10,
                  "q");
  q.enqueue(NamedElement{{"path", Tensor::scalar("a.png")}, {"label", Tensor::scalar(3)}});
  Element e = q.dequeue();
  EXPECT_EQ(e, elem({Tensor::scalar(3), Tensor::scalar("a.png")}));  // names order
  NamedElement named = q.spec().to_named(std::move(e));
  EXPECT_EQ(named.at("label"), Tensor::scalar(3));
  EXPECT_EQ(named.at("path"), Tensor::scalar("a.png"));

  q.enqueue_many(
      NamedElement{{"label", Tensor::vector({1, 2})}, {"path", Tensor::vector({"x", "y"})}});
  const Element batch = q.dequeue_many(2);
  EXPECT_EQ(batch, elem({Tensor::vector({1, 2}), Tensor::vector({"x", "y"})}));
}

TEST(TensorQueue, A4_PositionalElementIntoNamedQueueIsInvalidArgument) {
  TensorQueue<> q({{DType::kInt32}, {Shape{}}, {"label"}}, 10, "q");
  Element e = elem({Tensor::scalar(1)});
  expect_error([&] { q.enqueue(std::move(e)); }, ErrorKind::kInvalidArgument,
               "You must enqueue a dictionary in a Queue with names");
  expect_error([&] { q.enqueue_many(elem({Tensor::vector({1})})); }, ErrorKind::kInvalidArgument,
               "You must enqueue a dictionary in a Queue with names");
  EXPECT_EQ(e, elem({Tensor::scalar(1)}));  // given back
  EXPECT_EQ(q.size_approx(), 0u);
}

TEST(TensorQueue, A4_DictKeysMustEqualNames) {
  TensorQueue<> q({{DType::kInt32, DType::kInt32}, {}, {"a", "b"}}, 10, "q");
  NamedElement wrong{{"a", Tensor::scalar(1)}, {"c", Tensor::scalar(2)}};
  expect_error([&] { q.enqueue(std::move(wrong)); }, ErrorKind::kInvalidArgument,
               "Keys in dictionary to enqueue do not match names of Queue.  Dictionary: (['a', "
               "'c']), Queue: (['a', 'b'])");
  EXPECT_EQ(wrong.at("c"), Tensor::scalar(2));  // untouched
  NamedElement missing{{"a", Tensor::scalar(1)}};
  expect_error([&] { q.enqueue(std::move(missing)); }, ErrorKind::kInvalidArgument,
               "Keys in dictionary to enqueue do not match names of Queue.  Dictionary: (['a']), "
               "Queue: (['a', 'b'])");
  EXPECT_EQ(q.size_approx(), 0u);

  TensorQueue<> unnamed({{DType::kInt32}}, 10, "u");
  expect_error(
      [&] {
        unnamed.enqueue(NamedElement{{"a", Tensor::scalar(1)}});
      },
      ErrorKind::kInvalidArgument, "Queue must have names to enqueue a dictionary");
}

TEST(TensorQueue, A4_A5_FailedNamedEnqueueGivesTheTensorsBack) {
  TensorQueue<> q({{DType::kInt32, DType::kInt32}, {Shape{}, Shape{}}, {"a", "b"}}, 10, "q");
  NamedElement bad{{"a", Tensor::scalar(1)}, {"b", Tensor::vector({2, 3})}};
  expect_error([&] { q.enqueue(std::move(bad)); }, ErrorKind::kInvalidArgument,
               "Shape mismatch in tuple component 1. Expected [], got [2]");
  EXPECT_EQ(bad.at("a"), Tensor::scalar(1));
  EXPECT_EQ(bad.at("b"), Tensor::vector({2, 3}));
  q.close();
  NamedElement good{{"a", Tensor::scalar(1)}, {"b", Tensor::scalar(2)}};
  expect_error([&] { q.enqueue(std::move(good)); }, ErrorKind::kCancelled,
               "FIFOQueue 'q' is closed.");
  EXPECT_EQ(good.at("b"), Tensor::scalar(2));  // A18: given back too
}

// ---------------------------------------------------------------------------------------------
// A5: per-element checks before blocking; the queue is unchanged

class A5Checks : public ::testing::Test {
 protected:
  // Capacity 2, filled: a check that ran after blocking would hang the test.
  A5Checks() : q_({{DType::kInt32, DType::kFloat32}, {Shape{}, Shape({3, 3})}}, 2, "q") {
    q_.enqueue(valid(1));
    q_.enqueue(valid(2));
  }
  static Element valid(int v) {
    return elem({Tensor::scalar(v), Tensor(DType::kFloat32, Shape({3, 3}))});
  }
  void expect_unchanged_and_usable() {
    EXPECT_EQ(q_.size_approx(), 2u);
    EXPECT_EQ(q_.dequeue()[0], Tensor::scalar(1));
    q_.enqueue(valid(3));
    const Element batch = q_.dequeue_many(2);
    EXPECT_EQ(batch[0], Tensor::vector({2, 3}));
    EXPECT_EQ(batch[1].shape(), Shape({2, 3, 3}));
  }
  TensorQueue<> q_;
};

TEST_F(A5Checks, A5_WrongNumberOfComponents) {
  Element e = elem({Tensor::scalar(1)});
  expect_error([&] { q_.enqueue(std::move(e)); }, ErrorKind::kInvalidArgument,
               "Wrong number of components in tuple. Expected 2, got 1");
  EXPECT_EQ(e, elem({Tensor::scalar(1)}));
  expect_unchanged_and_usable();
}

TEST_F(A5Checks, A5_TypeMismatchInTupleComponent) {
  expect_error(
      [&] {
        q_.enqueue(elem({Tensor::scalar(1), Tensor(DType::kFloat64, Shape({3, 3}))}));
      },
      ErrorKind::kInvalidArgument,
      "Type mismatch in tuple component 1. Expected float32, got float64");
  expect_error(
      [&] {
        q_.enqueue(elem({Tensor::scalar(1.0f), Tensor(DType::kFloat32, Shape({3, 3}))}));
      },
      ErrorKind::kInvalidArgument,
      "Type mismatch in tuple component 0. Expected int32, got float32");
  expect_unchanged_and_usable();
}

TEST_F(A5Checks, A5_ShapeMismatchInTupleComponent) {
  expect_error(
      [&] {
        q_.enqueue(elem({Tensor::scalar(1), Tensor(DType::kFloat32, Shape({3, 4}))}));
      },
      ErrorKind::kInvalidArgument,
      "Shape mismatch in tuple component 1. Expected [3,3], got [3,4]");
  expect_unchanged_and_usable();
}

TEST_F(A5Checks, A5_EnqueueManyChecksEveryComponentFirst) {
  expect_error(
      [&] {
        q_.enqueue_many(elem({Tensor::vector({5, 6}), Tensor(DType::kFloat32, Shape({2, 3, 4}))}));
      },
      ErrorKind::kInvalidArgument,
      "Shape mismatch in tuple component 1. Expected [2,3,3], got [2,3,4]");
  expect_error(
      [&] {
        q_.enqueue_many(elem({Tensor::vector({5, 6})}));
      },
      ErrorKind::kInvalidArgument, "Wrong number of components in tuple. Expected 2, got 1");
  expect_unchanged_and_usable();
}

// ---------------------------------------------------------------------------------------------
// A7, A8: enqueue_many

TEST(TensorQueue, A7_EnqueueManyNeedsRankAtLeastOne) {
  TensorQueue<> q({{DType::kInt32}}, 10, "q");
  expect_error([&] { q.enqueue_many(elem({Tensor::scalar(1)})); }, ErrorKind::kInvalidArgument,
               "Shape [] must have rank at least 1 (tuple component 0 of an enqueue_many)");
  EXPECT_EQ(q.size_approx(), 0u);
}

TEST(TensorQueue, A7_AllComponentsNeedTheSameDimensionZero) {
  TensorQueue<> q({{DType::kInt32, DType::kString}, {Shape{}, Shape{}}}, 10, "q");
  q.enqueue(elem({Tensor::scalar(0), Tensor::scalar("zero")}));
  expect_error(
      [&] {
        q.enqueue_many(elem({Tensor::vector({1, 2}), Tensor::vector({"a", "b", "c"})}));
      },
      ErrorKind::kInvalidArgument,
      "All input tensors must have the same size in the 0th dimension. Component 1 has 3, and "
      "should have 2");
  EXPECT_EQ(q.size_approx(), 1u);
  q.enqueue_many(elem({Tensor::vector({1, 2}), Tensor::vector({"a", "b"})}));
  EXPECT_EQ(q.size_approx(), 3u);
  EXPECT_EQ(q.dequeue_many(3),
            elem({Tensor::vector({0, 1, 2}), Tensor::vector({"zero", "a", "b"})}));
}

TEST(TensorQueue, A7_EnqueueManySplitsAlongDimensionZeroInOrder) {
  TensorQueue<> q({{DType::kInt16, DType::kFloat64}}, 10, "q");  // unspecified shapes
  q.enqueue_many(elem({Tensor::from<std::int16_t>(Shape({3, 2}), {1, 2, 3, 4, 5, 6}),
                       Tensor::vector<double>({0.5, 1.5, 2.5})}));
  EXPECT_EQ(q.size_approx(), 3u);
  for (int i = 0; i < 3; ++i) {
    const Element e = q.dequeue();
    EXPECT_EQ(e[0], Tensor::vector<std::int16_t>({static_cast<std::int16_t>(2 * i + 1),
                                                  static_cast<std::int16_t>(2 * i + 2)}));
    EXPECT_EQ(e[1], Tensor::scalar(0.5 + i));
  }
}

TEST(TensorQueue, A8_EnqueueManyOfZeroSucceedsEvenWhenClosed) {
  TensorQueue<> q({{DType::kInt32}, {Shape({2})}}, 10, "q");
  q.close();
  q.enqueue_many(elem({Tensor(DType::kInt32, Shape({0, 2}))}));
  EXPECT_EQ(q.size_approx(), 0u);
  expect_error(
      [&] {
        q.enqueue_many(elem({Tensor(DType::kInt32, Shape({1, 2}))}));
      },
      ErrorKind::kCancelled, "FIFOQueue 'q' is closed.");
}

TEST(TensorQueue, SplitBatchCopiesRows) {
  const Element batch =
      elem({Tensor::from<std::uint8_t>(Shape({2, 2, 2}), {1, 2, 3, 4, 5, 6, 7, 8}),
            Tensor::from<std::string>(Shape({2, 1}), {"p", "q"})});
  const std::vector<Element> rows = split_batch(batch);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1][0], Tensor::from<std::uint8_t>(Shape({2, 2}), {5, 6, 7, 8}));
  EXPECT_EQ(rows[1][1], Tensor::from<std::string>(Shape({1}), {"q"}));
  EXPECT_TRUE(split_batch(elem({Tensor(DType::kBool, Shape({0, 5}))})).empty());
}

// ---------------------------------------------------------------------------------------------
// A13, A14: dequeue_many / dequeue_up_to

TEST(TensorQueue, A13_NegativeCountIsInvalidArgument) {
  TensorQueue<> q({{DType::kInt32}, {Shape{}}}, 10, "q");
  q.enqueue(elem({Tensor::scalar(1)}));
  expect_error([&] { q.dequeue_many(-1); }, ErrorKind::kInvalidArgument,
               "DequeueManyOp requested -1 < 0 elements");
  expect_error([&] { q.dequeue_up_to(-5); }, ErrorKind::kInvalidArgument,
               "DequeueUpToOp requested -5 < 0 elements");
  EXPECT_EQ(q.size_approx(), 1u);
}

TEST(TensorQueue, A13_DequeueManyNeedsSpecifiedShapes) {
  TensorQueue<> q({{DType::kFloat32}}, 10, "q");
  q.enqueue(elem({Tensor::vector<float>({10, 20})}));
  const std::string msg =
      "FIFOQueue's DequeueMany and DequeueUpTo require the components to have specified shapes.";
  expect_error([&] { q.dequeue_many(0); }, ErrorKind::kInvalidArgument, msg);
  expect_error([&] { q.dequeue_up_to(1); }, ErrorKind::kInvalidArgument, msg);
  EXPECT_EQ(q.size_approx(), 1u);
  EXPECT_EQ(q.dequeue()[0], Tensor::vector<float>({10, 20}));
}

TEST(TensorQueue, A13_DequeueOfZeroReturnsAnEmptyBatchAtOnceEvenWhenClosed) {
  TensorQueue<> q({{DType::kInt64, DType::kString}, {Shape({2, 3}), Shape{}}}, 10, "q");
  q.close();
  const Element batch = q.dequeue_many(0);
  EXPECT_EQ(batch[0].shape(), Shape({0, 2, 3}));
  EXPECT_EQ(batch[0].dtype(), DType::kInt64);
  EXPECT_EQ(batch[1].shape(), Shape({0}));
  EXPECT_EQ(q.dequeue_up_to(0)[1].shape(), Shape({0}));
}

TEST(TensorQueue, A14_StacksSeveralShapesAndDtypes) {
  TensorQueue<> q({{DType::kInt32, DType::kFloat32, DType::kString, DType::kBool},
                   {Shape{}, Shape({2, 3}), Shape({2}), Shape({1})}},
                  10, "q");
  for (int i = 0; i < 4; ++i) {
    const float f = static_cast<float>(i);
    q.enqueue(elem(
        {Tensor::scalar(i),
         Tensor::from<float>(Shape({2, 3}), {f, f + 0.1f, f + 0.2f, f + 0.3f, f + 0.4f, f + 0.5f}),
         Tensor::vector({"s" + std::to_string(i), std::string(40, static_cast<char>('a' + i))}),
         Tensor::vector({i % 2 == 0})}));
  }
  const Element b = q.dequeue_many(3);
  EXPECT_EQ(b[0], Tensor::vector({0, 1, 2}));
  ASSERT_EQ(b[1].shape(), Shape({3, 2, 3}));
  for (int i = 0; i < 3; ++i) {
    for (int k = 0; k < 6; ++k) {
      EXPECT_FLOAT_EQ(b[1].flat<float>()[static_cast<std::size_t>(6 * i + k)],
                      static_cast<float>(i) + 0.1f * static_cast<float>(k));
    }
  }
  EXPECT_EQ(b[2], Tensor::from<std::string>(
                      Shape({3, 2}), {"s0", std::string(40, 'a'), "s1", std::string(40, 'b'), "s2",
                                      std::string(40, 'c')}));
  EXPECT_EQ(b[3], Tensor::from<bool>(Shape({3, 1}), {true, false, true}));
  EXPECT_EQ(q.size_approx(), 1u);
  // A16: on an open queue dequeue_up_to waits for all n; at the deadline it puts back (A20).
  expect_error([&] { q.dequeue_up_to(10, Deadline::after(std::chrono::milliseconds(1))); },
               ErrorKind::kDeadlineExceeded,
               "Dequeue on FIFOQueue 'q' did not complete before its deadline");
  EXPECT_EQ(q.size_approx(), 1u);
  EXPECT_EQ(q.dequeue()[0], Tensor::scalar(3));
}

TEST(TensorQueue, A14_OneBatchBufferPerComponent) {
  CountingResource memory;
  {
    auto fifo = std::make_shared<FifoQueue<Element>>(16, "q");
    TensorQueue<> q({{DType::kInt64, DType::kUInt16}, {Shape({4}), Shape({2, 2})}}, fifo, &memory);
    q.enqueue_many(
        elem({Tensor(DType::kInt64, Shape({8, 4})), Tensor(DType::kUInt16, Shape({8, 2, 2}))}));
    EXPECT_EQ(memory.allocations, 16u);  // 8 rows x 2 components
    memory.allocations = 0;
    const Element b = q.dequeue_many(8);
    EXPECT_EQ(memory.allocations, 2u);  // one [8, ...] buffer per component, filled by memcpy
    EXPECT_EQ(b[1].shape(), Shape({8, 2, 2}));
  }
  EXPECT_EQ(memory.live, 0u);
}

TEST(TensorQueue, A19_A20_ClosedWithTooFewKeepsTheElements) {
  TensorQueue<> q({{DType::kInt32}, {Shape{}}}, 10, "q");
  q.enqueue_many(elem({Tensor::vector({1, 2})}));
  q.close();
  expect_error([&] { q.dequeue_many(3); }, ErrorKind::kOutOfRange,
               "FIFOQueue 'q' is closed and has insufficient elements (requested 3, current size "
               "2)");
  EXPECT_EQ(q.size_approx(), 2u);
  EXPECT_EQ(q.dequeue_up_to(3), elem({Tensor::vector({1, 2})}));  // A21
  expect_error([&] { q.dequeue(); }, ErrorKind::kOutOfRange,
               "FIFOQueue 'q' is closed and has insufficient elements (requested 1, current size "
               "0)");
  expect_error([&] { q.close(); }, ErrorKind::kCancelled, "Queue 'q' is already closed.");
}

TEST(TensorQueue, A18_EnqueueOnClosedQueueGivesTheElementBack) {
  TensorQueue<> q({{DType::kInt32}}, 10, "q");
  q.close();
  Element e = elem({Tensor::scalar(4)});
  expect_error([&] { q.enqueue(std::move(e)); }, ErrorKind::kCancelled, "FIFOQueue 'q' is closed.");
  EXPECT_EQ(e, elem({Tensor::scalar(4)}));
}

TEST(TensorQueue, A26_DeadlineExceeded) {
  TensorQueue<> q({{DType::kInt32}, {Shape{}}}, 1, "q");
  expect_error([&] { q.dequeue(Deadline::now()); }, ErrorKind::kDeadlineExceeded,
               "Dequeue on FIFOQueue 'q' did not complete before its deadline");
  q.enqueue(elem({Tensor::scalar(1)}));
  expect_error([&] { q.enqueue(elem({Tensor::scalar(2)}), Deadline::now()); },
               ErrorKind::kDeadlineExceeded,
               "Enqueue on FIFOQueue 'q' did not complete before its deadline");
  EXPECT_EQ(q.dequeue_many(1), elem({Tensor::vector({1})}));
}

// Another typed queue plugs in (as ShuffleQueue<Element> will) and names its TF kind.
struct KindedQueue : FifoQueue<Element> {
  using FifoQueue<Element>::FifoQueue;
  static constexpr std::string_view kTfKind = "RandomShuffleQueue";
};

TEST(TensorQueue, WrapsAnyTypedQueueAndUsesItsKind) {
  TensorQueue<KindedQueue> q({{DType::kInt32}, {Shape{}}}, 4, "shuffled");
  q.enqueue(elem({Tensor::scalar(1)}));
  q.close();
  expect_error([&] { q.dequeue_many(2); }, ErrorKind::kOutOfRange,
               "RandomShuffleQueue 'shuffled' is closed and has insufficient elements (requested "
               "2, current size 1)");
  EXPECT_EQ(q.kind(), "RandomShuffleQueue");
}

// ---------------------------------------------------------------------------------------------
// A28: every dtype round-trips

template <class T>
Tensor three(T a, T b, T c) {
  return Tensor::vector<T>({a, b, c});
}

TEST(TensorQueue, A28_AllDtypesRoundTrip) {
  const Element e = elem({
      three<float>(1.5f, -0.0f, std::numeric_limits<float>::infinity()),
      three<double>(2.25, 1e300, -1e-300),
      three<std::int8_t>(-128, 0, 127),
      three<std::int16_t>(-32768, 1, 32767),
      three<std::int32_t>(std::numeric_limits<std::int32_t>::min(), 2,
                          std::numeric_limits<std::int32_t>::max()),
      three<std::int64_t>(std::numeric_limits<std::int64_t>::min(), 3,
                          std::numeric_limits<std::int64_t>::max()),
      three<std::uint8_t>(0, 1, 255),
      three<std::uint16_t>(0, 1, 65535),
      three<std::uint32_t>(0, 1, 4294967295u),
      three<std::uint64_t>(0, 1, std::numeric_limits<std::uint64_t>::max()),
      three<bool>(true, false, true),
      Tensor::vector<std::string>({"", "short", std::string(100, 'z')}),
  });
  QueueSpec spec;
  for (const Tensor& t : e.components) {
    spec.dtypes.push_back(t.dtype());
    spec.shapes.push_back(Shape({3}));
  }
  ASSERT_EQ(spec.dtypes.size(), 12u);
  TensorQueue<> q(spec, 4, "q");
  q.enqueue(Element(e));
  EXPECT_EQ(q.dequeue(), e);
  q.enqueue(Element(e));
  q.enqueue(Element(e));
  const Element b = q.dequeue_many(2);
  for (std::size_t c = 0; c < e.size(); ++c) {
    EXPECT_EQ(b[c].shape(), Shape({2, 3}));
    EXPECT_EQ(split_batch(b)[1][c], e[c]) << "component " << c;
  }
}

// ---------------------------------------------------------------------------------------------
// A31: padding

TEST(TensorQueue, A31_PadsUnknownDimensionsWithZero) {
  TensorQueue<> q(
      {{DType::kInt32, DType::kFloat32}, {Shape({-1}), Shape({-1, 2})}, {}, Padding::kDynamic}, 10,
      "pq");
  q.enqueue(elem({Tensor::vector({1}), Tensor::from<float>(Shape({1, 2}), {1, 2})}));
  q.enqueue(
      elem({Tensor::vector({1, 2, 3}), Tensor::from<float>(Shape({0, 2}), std::vector<float>{})}));
  q.enqueue(elem({Tensor::vector({1, 2}), Tensor::from<float>(Shape({3, 2}), {1, 2, 3, 4, 5, 6})}));
  const Element b = q.dequeue_many(3);
  EXPECT_EQ(b[0], Tensor::from<std::int32_t>(Shape({3, 3}), {1, 0, 0, 1, 2, 3, 1, 2, 0}));
  EXPECT_EQ(b[1], Tensor::from<float>(Shape({3, 3, 2}), {1, 2, 0, 0, 0, 0,  //
                                                         0, 0, 0, 0, 0, 0,  //
                                                         1, 2, 3, 4, 5, 6}));
}

TEST(TensorQueue, A31_PadsEveryUnknownDimensionOfAMatrix) {
  TensorQueue<> q({{DType::kUInt8}, {Shape({-1, -1})}, {}, Padding::kDynamic}, 10, "pq");
  q.enqueue(elem({Tensor::from<std::uint8_t>(Shape({2, 1}), {1, 2})}));
  q.enqueue(elem({Tensor::from<std::uint8_t>(Shape({1, 3}), {3, 4, 5})}));
  EXPECT_EQ(q.dequeue_many(2)[0],
            Tensor::from<std::uint8_t>(Shape({2, 2, 3}), {1, 0, 0, 2, 0, 0,  //
                                                          3, 4, 5, 0, 0, 0}));
}

TEST(TensorQueue, A31_PadsStringsWithEmptyStrings) {
  TensorQueue<> q({{DType::kString}, {Shape({-1})}, {}, Padding::kDynamic}, 10, "pq");
  q.enqueue(elem({Tensor::vector({"a"})}));
  q.enqueue(elem({Tensor::vector<std::string>({"b", std::string(50, 'c')})}));
  EXPECT_EQ(q.dequeue_up_to(2)[0],
            Tensor::from<std::string>(Shape({2, 2}), {"a", "", "b", std::string(50, 'c')}));
}

TEST(TensorQueue, A5_A31_UninitializedTensorIsRejectedBeforeItReachesTheQueue) {
  TensorQueue<> q({{DType::kFloat32}, {Shape({-1})}, {}, Padding::kDynamic}, 10, "pq");
  Tensor t = Tensor::vector<float>({1, 2});
  Tensor stolen = std::move(t);
  expect_error([&] { q.enqueue(elem({std::move(t)})); }, ErrorKind::kInvalidArgument,
               "Tuple component 0 is an uninitialized tensor (moved from?)");
  EXPECT_EQ(q.size_approx(), 0u);
  q.enqueue(elem({std::move(stolen)}));
  EXPECT_EQ(q.dequeue_many(1)[0], Tensor::from<float>(Shape({1, 2}), {1, 2}));
}

TEST(TensorQueue, A31_PaddingChecksCompatibilityAndEmptyBatchHasZeroDims) {
  TensorQueue<> q({{DType::kInt64}, {Shape({-1, 3})}, {}, Padding::kDynamic}, 10, "pq");
  expect_error(
      [&] {
        q.enqueue(elem({Tensor(DType::kInt64, Shape({2, 4}))}));
      },
      ErrorKind::kInvalidArgument,
      "Shape mismatch in tuple component 0. Expected [?,3], got [2,4]");
  expect_error(
      [&] {
        q.enqueue_many(elem({Tensor(DType::kInt64, Shape({2, 5, 4}))}));
      },
      ErrorKind::kInvalidArgument,
      "Shape mismatch in tuple component 0. Expected [2,?,3], got [2,5,4]");
  EXPECT_EQ(q.size_approx(), 0u);
  q.enqueue_many(elem({Tensor(DType::kInt64, Shape({2, 5, 3}))}));
  EXPECT_EQ(q.size_approx(), 2u);
  EXPECT_EQ(q.dequeue_many(0)[0].shape(), Shape({0, 0, 3}));
  EXPECT_EQ(q.dequeue_many(2)[0].shape(), Shape({2, 5, 3}));
  q.close();
  expect_error([&] { q.dequeue_many(1); }, ErrorKind::kOutOfRange,
               "PaddingFIFOQueue 'pq' is closed and has insufficient elements (requested 1, "
               "current size 0)");
}

TEST(Stack, A31_PadsRankThreeRowByRow) {
  const QueueSpec spec{{DType::kInt32}, {Shape({-1, -1, -1})}, {}, Padding::kDynamic};
  std::vector<Element> elements{
      elem({Tensor::from<std::int32_t>(Shape({1, 2, 2}), {1, 2, 3, 4})}),
      elem({Tensor::from<std::int32_t>(Shape({2, 1, 3}), {5, 6, 7, 8, 9, 10})})};
  EXPECT_EQ(
      stack(elements, spec)[0],
      Tensor::from<std::int32_t>(Shape({2, 2, 2, 3}), {1, 2, 0, 3, 4, 0, 0, 0, 0,  0, 0, 0,  //
                                                       5, 6, 7, 0, 0, 0, 8, 9, 10, 0, 0, 0}));
  expect_error([&] { stack(elements, QueueSpec{{DType::kInt32}}); }, ErrorKind::kInvalidArgument,
               "DequeueMany and DequeueUpTo require the components to have specified shapes.");
}

// ---------------------------------------------------------------------------------------------
// Exactly once: producers enqueue_many, consumers dequeue_up_to (A10, A15, A21 at the tensor
// layer). Every row carries (producer, sequence) in an int64 and its decimal form in a string.
// Run over tbbmalloc (the default) and over new/delete, which ASan and TSan see through, so a
// buffer used after it was freed or handed over would show there.

class TensorQueueConcurrency : public ::testing::TestWithParam<const char*> {
 protected:
  static std::pmr::memory_resource* memory() {
    return std::string(GetParam()) == "scalable" ? alloc::scalable_resource()
                                                 : std::pmr::new_delete_resource();
  }
};
INSTANTIATE_TEST_SUITE_P(Memory, TensorQueueConcurrency,
                         ::testing::Values("scalable", "new_delete"),
                         [](const auto& info) { return std::string(info.param); });

TEST_P(TensorQueueConcurrency, A10_A15_A21_ProducersEnqueueManyConsumersDequeueUpToExactlyOnce) {
  std::pmr::memory_resource* const memory = TensorQueueConcurrency::memory();
  constexpr int kProducers = 3;
  constexpr int kConsumers = 2;
  constexpr std::int64_t kBatch = 7;
  const std::int64_t batches = static_cast<std::int64_t>(4 * testing::kScale);
  constexpr std::int64_t kUpTo = 5;
  TensorQueue<> q({{DType::kInt64, DType::kString}, {Shape{}, Shape{}}}, 16, "q", memory);

  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (std::int64_t b = 0; b < batches; ++b) {
        Tensor ids(DType::kInt64, Shape({kBatch}), memory);
        Tensor texts(DType::kString, Shape({kBatch}), memory);
        for (std::int64_t i = 0; i < kBatch; ++i) {
          const std::int64_t id = p * 1'000'000 + b * kBatch + i;
          ids.data<std::int64_t>()[i] = id;
          texts.data<std::string>()[i] = std::to_string(id);
        }
        q.enqueue_many(elem({std::move(ids), std::move(texts)}));
      }
    });
  }
  std::vector<std::vector<std::int64_t>> seen(kConsumers);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> consumers;
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&, c] {
      for (;;) {
        Element b;
        try {
          b = q.dequeue_up_to(kUpTo);
        } catch (const Error& e) {
          if (e.kind() != ErrorKind::kOutOfRange)
            mismatches.fetch_add(1000, std::memory_order_relaxed);
          return;
        }
        const auto ids = b[0].flat<std::int64_t>();
        const auto texts = b[1].flat<std::string>();
        if (ids.size() == 0 || ids.size() != texts.size())
          mismatches.fetch_add(1, std::memory_order_relaxed);
        for (std::size_t i = 0; i < ids.size(); ++i) {
          if (texts[i] != std::to_string(ids[i]))
            mismatches.fetch_add(1, std::memory_order_relaxed);
          seen[static_cast<std::size_t>(c)].push_back(ids[i]);
        }
      }
    });
  }
  for (std::thread& t : producers) t.join();
  q.close();
  for (std::thread& t : consumers) t.join();

  EXPECT_EQ(mismatches.load(), 0);
  std::vector<std::int64_t> all;
  for (const auto& s : seen) {
    // FIFO per producer, as each consumer sees it.
    std::vector<std::int64_t> last(kProducers, -1);
    for (const std::int64_t id : s) {
      const std::size_t p = static_cast<std::size_t>(id / 1'000'000);
      EXPECT_GT(id, last[p]);
      last[p] = id;
    }
    all.insert(all.end(), s.begin(), s.end());
  }
  std::sort(all.begin(), all.end());
  std::vector<std::int64_t> expected;
  for (int p = 0; p < kProducers; ++p) {
    for (std::int64_t i = 0; i < batches * kBatch; ++i) expected.push_back(p * 1'000'000 + i);
  }
  EXPECT_EQ(all, expected);  // none lost, none duplicated
}

}  // namespace
}  // namespace conveyor
