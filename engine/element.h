// Element, QueueSpec and the per-element work of the tensor layer: the checks a tensor queue
// makes before it blocks (SPEC.md A1, A2, A4, A5, A7), splitting an enqueue_many batch into
// elements, stacking dequeued elements into a batch (A14, padded: A31), and the shape
// inference of the batching layer (E7).
//
// Contract
//  - An Element is a tuple of tensors, positional. A queue with names takes NamedElements
//    (name -> tensor, TF's dict) whose keys equal its names and stores them in names order.
//  - Every check throws conveyor::Error(kInvalidArgument) with TF's message content (quoted at
//    each function) and changes nothing: checks run before anything is moved or allocated for
//    the queue.
//  - Copies: split_batch copies each row of each component once (numeric: one memcpy per row;
//    string: one std::string copy per element). stack() copies each element's buffer into the
//    batch once (numeric: one memcpy per element and component; padded, one memcpy per
//    contiguous innermost run) and moves strings instead of copying them. No per-scalar work
//    for numeric types.
//  - Pure functions: thread-safe on distinct arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory_resource>
#include <span>
#include <string>
#include <vector>

#include "alloc/scalable_resource.h"
#include "engine/tensor.h"

namespace conveyor {

struct Element {
  std::vector<Tensor> components;

  std::size_t size() const noexcept { return components.size(); }
  Tensor& operator[](std::size_t i) { return components[i]; }
  const Tensor& operator[](std::size_t i) const { return components[i]; }
  friend bool operator==(const Element&, const Element&) = default;
};
std::ostream& operator<<(std::ostream& os, const Element& e);

// TF's dict element: component name -> tensor.
using NamedElement = std::map<std::string, Tensor, std::less<>>;

// TF's FIFOQueue (shapes fully defined or absent) vs PaddingFIFOQueue (shapes required, of
// known rank, dimensions may be unknown and are padded by dequeue_many: A31).
enum class Padding : std::uint8_t { kNone, kDynamic };

// Whether the tensors given to enqueue / batch are single elements or batches along dim 0.
enum class EnqueueMode : std::uint8_t { kOne, kMany };

struct QueueSpec {
  // Default member initializers let callers write {{dtypes}, {shapes}} without
  // -Wmissing-field-initializers.
  std::vector<DType> dtypes{};
  std::vector<Shape> shapes{};       // empty: unspecified (any shape; no dequeue_many)
  std::vector<std::string> names{};  // empty: positional elements
  Padding padding = Padding::kNone;

  std::size_t num_components() const noexcept { return dtypes.size(); }
  bool specified_shapes() const noexcept { return !shapes.empty(); }
  bool named() const noexcept { return !names.empty(); }

  // A1, A2, A31. InvalidArgument:
  //   "Queue needs at least one component: dtypes is empty"                       (A2)
  //   "Queue shapes must have the same length as dtypes"                          (A1)
  //   "Queue names must have the same length as dtypes"                           (A1)
  //   "Queue names must be unique: 'x' appears more than once"
  //   "All shapes must be fully defined: [[?,4]]"                     (without padding)
  //   "Shapes must be provided for all components, but received 2 dtypes and 0 shapes."
  //   "All shapes must have a defined rank: [<unknown>]"                 (with padding)
  void validate() const;

  // A5, one element. InvalidArgument:
  //   "Wrong number of components in tuple. Expected 2, got 1"
  //   "Tuple component 0 is an uninitialized tensor (moved from?)"
  //   "Type mismatch in tuple component 1. Expected int32, got float32"
  //   "Shape mismatch in tuple component 1. Expected [3,3], got [3,4]"
  // (padding: the shape need only be compatible, "[?,3]" takes "[5,3]").
  void check_element(const Element& e) const;

  // A5, A7, an enqueue_many batch; returns its size (dimension 0). InvalidArgument: the A5
  // messages with the expected shape [n]+shape, and
  //   "Shape [] must have rank at least 1 (tuple component 0 of an enqueue_many)"
  //   "All input tensors must have the same size in the 0th dimension. Component 1 has 3, and
  //    should have 2"
  std::int64_t check_batch(const Element& batch) const;

  // A4: the dict's tensors in names order. InvalidArgument:
  //   "Queue must have names to enqueue a dictionary"
  //   "Keys in dictionary to enqueue do not match names of Queue.  Dictionary: (['a', 'c']),
  //    Queue: (['a', 'b'])"
  // On failure `e` is untouched.
  Element to_positional(NamedElement&& e) const;
  // The inverse (names required: "Queue must have names to return a dictionary").
  NamedElement to_named(Element&& e) const;

  friend bool operator==(const QueueSpec&, const QueueSpec&) = default;
};

// A7: dimension 0 of every component, which must agree. InvalidArgument as check_batch.
// Throws for an empty tuple ("Expected at least one tensor").
std::int64_t batch_size(const Element& batch);

// A7: row i of every component (enqueue_many). Checks as batch_size(). Rows are allocated
// from `memory`.
std::vector<Element> split_batch(const Element& batch,
                                 std::pmr::memory_resource* memory = alloc::scalable_resource());

// A14, A31: stacks `elements` (each already checked against `spec`, which has shapes) into one
// Element whose component i has shape [n] + shape_i. With padding, each unknown dimension of
// shape_i is the maximum over the batch (0 for an empty batch) and the rest is 0 / "". String
// tensors of `elements` are moved from; numeric ones are left as they were. A spec without
// shapes -> InvalidArgument "... require the components to have specified shapes.".
Element stack(std::span<Element> elements, const QueueSpec& spec,
              std::pmr::memory_resource* memory = alloc::scalable_resource());
// stack() gives the strong guarantee: every output tensor is allocated before any element is
// touched, so when an allocation fails (std::bad_alloc from `memory`) `elements` are unchanged.

// stack() in two steps, for callers that must allocate before they take elements from a queue
// (TensorQueue, as TF's DequeueMany allocates its output first): allocate_batch() makes the
// batch of n rows (component c of shape [n] + shape_c; every shape must be fully defined, else
// InvalidArgument); stack_into() then fills it from elements.size() <= n elements and drops the
// unused rows (Tensor::truncate_rows). stack_into allocates nothing and cannot fail.
Element allocate_batch(const QueueSpec& spec, std::size_t n,
                       std::pmr::memory_resource* memory = alloc::scalable_resource());
void stack_into(std::span<Element> elements, Element& batch) noexcept;

// E7: the component shapes a batching queue gets. `explicit_shapes` win (their count must be
// the component count). Otherwise the first source's static shapes, without dimension 0 for
// EnqueueMode::kMany; every other source must have the same count and compatible shapes.
// InvalidArgument:
//   "Expected at least one tensor" (no source, or a source without components)
//   "Cannot infer Tensor's rank: component 1 has shape <unknown>"
//   "Shape [] must have rank at least 1 (tuple component 0 of an enqueue_many)"
//   "Shapes [2] and [3] are not compatible (component 0)"
//   "All shapes must be fully defined: [[?]]"                 (Padding::kNone)
//   "All shapes must have a defined rank: [<unknown>]"         (explicit, Padding::kDynamic)
// `sources` are the static shapes of each input list (one for batch(), several for *_join).
std::vector<Shape> infer_shapes(std::span<const std::vector<Shape>> sources, EnqueueMode mode,
                                std::span<const Shape> explicit_shapes = {},
                                Padding padding = Padding::kNone);
// The same from concrete elements (their shapes are always fully defined).
std::vector<Shape> infer_shapes(std::span<const Element> sources, EnqueueMode mode,
                                std::span<const Shape> explicit_shapes = {},
                                Padding padding = Padding::kNone);

}  // namespace conveyor
