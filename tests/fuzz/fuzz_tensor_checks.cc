// libFuzzer target: the tensor layer's checks (tests/fuzz/README.md). The input is decoded into a
// QueueSpec (dtypes, shapes with unknown dimensions or ranks, names, padding) and a tuple of
// tensors; then every check runs: QueueSpec::validate, check_element, check_batch (enqueue_many
// splits), infer_shapes, and a TensorQueue round trip of whatever passes.
// Invariants: every rejection is InvalidArgument and changes nothing; what passes round-trips:
// stack(split_batch(b)) == b, a TensorQueue gives back the element / the batch it was given.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "engine/element.h"
#include "engine/fifo_queue.h"
#include "engine/status.h"
#include "engine/tensor.h"
#include "engine/tensor_queue.h"

namespace {

using namespace conveyor;

class Bytes {
 public:
  Bytes(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
  std::uint8_t next() { return i_ < n_ ? d_[i_++] : 0; }
  bool empty() const { return i_ >= n_; }

 private:
  const std::uint8_t* d_;
  std::size_t n_;
  std::size_t i_ = 0;
};

DType dtype_of_byte(std::uint8_t b) { return static_cast<DType>(b % 12); }

// A spec shape: unknown rank, or rank 0..3 with dimensions -1..4.
Shape spec_shape(Bytes& in) {
  const std::uint8_t r = in.next() % 6;
  if (r == 5) return Shape::unknown_rank();
  std::vector<std::int64_t> dims;
  for (std::uint8_t i = 0; i < r % 4; ++i) dims.push_back(static_cast<std::int64_t>(in.next() % 6) - 1);
  return Shape(std::move(dims));
}

// A concrete tensor: rank 0..3, dimensions 0..4, values from the input.
Tensor tensor(Bytes& in) {
  const DType d = dtype_of_byte(in.next());
  std::vector<std::int64_t> dims;
  const std::uint8_t r = in.next() % 4;
  for (std::uint8_t i = 0; i < r; ++i) dims.push_back(in.next() % 5);
  Tensor t(d, Shape(std::move(dims)));
  if (d == DType::kString) {
    for (std::string& s : t.flat<std::string>()) s.assign(in.next() % 20, static_cast<char>(in.next()));
  } else {
    auto* raw = static_cast<std::uint8_t*>(t.raw());
    for (std::size_t i = 0; i < t.byte_size(); ++i) raw[i] = in.next();
    if (d == DType::kBool) {  // only 0 and 1 are bools
      for (std::size_t i = 0; i < t.byte_size(); ++i) raw[i] &= 1;
    }
  }
  return t;
}

// Runs f; an exception must be InvalidArgument (returns false), anything else aborts.
template <class F>
bool accepted(F&& f) {
  try {
    f();
    return true;
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kInvalidArgument) std::abort();
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Bytes in(data, size);
  QueueSpec spec;
  const std::size_t components = in.next() % 4;  // 0 is invalid (A2)
  const std::uint8_t flags = in.next();
  for (std::size_t c = 0; c < components; ++c) spec.dtypes.push_back(dtype_of_byte(in.next()));
  if (flags & 1) {
    const std::size_t shapes = (flags & 8) ? components + 1 : components;  // sometimes a mismatch
    for (std::size_t c = 0; c < shapes; ++c) spec.shapes.push_back(spec_shape(in));
  }
  if (flags & 2) {
    for (std::size_t c = 0; c < components; ++c) {
      spec.names.push_back(std::string(1, static_cast<char>('a' + in.next() % 3)));
    }
  }
  if (flags & 4) spec.padding = Padding::kDynamic;

  Element e;
  const std::size_t given = in.next() % 4;
  for (std::size_t c = 0; c < given; ++c) e.components.push_back(tensor(in));
  const Element original = e;

  // infer_shapes never fails otherwise than InvalidArgument, whatever it is given.
  (void)accepted([&] {
    const Element sources[] = {e};
    (void)infer_shapes(std::span<const Element>(sources),
                       (flags & 16) ? EnqueueMode::kMany : EnqueueMode::kOne,
                       std::span<const Shape>(spec.shapes), spec.padding);
  });

  if (!accepted([&] { spec.validate(); })) return 0;
  if (accepted([&] { spec.check_element(e); })) {
    if (!(e == original)) std::abort();  // checks change nothing
    if (!spec.named()) {
      TensorQueue<> q(spec, 4, "fuzz");
      q.enqueue(Element(e));
      if (!(q.dequeue() == original)) std::abort();
    }
  }
  std::int64_t n = 0;
  if (!accepted([&] { n = spec.check_batch(e); })) return 0;
  if (!(e == original)) std::abort();
  std::vector<Element> rows = split_batch(e);
  if (static_cast<std::int64_t>(rows.size()) != n) std::abort();
  for (const Element& row : rows) {
    if (!accepted([&] { spec.check_element(row); })) std::abort();  // every row is an element
  }
  // An empty batch stacks to [0] + the spec's shape with unknown dimensions 0 (A31: the max over
  // no rows), which need not be the given empty batch's shape: only rows are compared then.
  if (spec.specified_shapes() && n == 0) {
    for (const Tensor& t : stack(std::span<Element>(rows), spec).components) {
      if (t.dim(0) != 0) std::abort();
    }
  } else if (spec.specified_shapes()) {
    if (!(stack(std::span<Element>(rows), spec) == original)) std::abort();
    if (!spec.named()) {
      TensorQueue<> q(spec, 8, "fuzz");
      if (n <= 8) {
        q.enqueue_many(original);
        if (!(q.dequeue_many(n) == original)) std::abort();
      }
    }
  }
  return 0;
}
