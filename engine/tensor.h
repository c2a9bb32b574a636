// DType, Shape and Tensor: the values the tensor layer's queues carry (SPEC.md A28, A31, E7).
//
// Contract
//  - DType keeps TensorFlow's names (float32 ... string); size(d) is the bytes one element takes
//    in a Tensor's buffer (for string: one std::string object; its characters live wherever
//    std::string puts them, inline for short strings).
//  - Shape is TF's PartialTensorShape: a list of dimensions, each >= 0 or kUnknownDim (-1), or
//    "unknown rank". Printed as TF prints it: "[3,4]", "[?,4]", "[]", "<unknown>".
//  - Tensor = dtype + fully defined shape + one contiguous row-major buffer from a
//    std::pmr::memory_resource (default alloc::scalable_resource(), tbbmalloc: threads allocate
//    and free without contending). Numeric and bool elements are stored raw; string elements
//    are std::string objects constructed in the buffer. A new tensor is zero-filled ("" for
//    strings).
//  - Copy is deep and keeps the source's memory resource (copy-assignment keeps the target's);
//    move steals the buffer (noexcept, the resource travels with it) and leaves the source
//    uninitialized. Uninitialized (default-constructed or moved-from, as TF's default Tensor):
//    float32, unknown rank, no elements, no buffer; only assignment, destruction and the
//    observers are meaningful on it. Not thread-safe: one tensor, one thread at a time (as
//    std::vector); distinct tensors are independent.
//  - Errors: conveyor::Error kInvalidArgument for a shape that is not fully defined, a value
//    count that does not match the shape, or a typed access with the wrong C++ type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory_resource>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "alloc/scalable_resource.h"

namespace conveyor {

enum class DType : std::uint8_t {
  kFloat32,
  kFloat64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kUInt8,
  kUInt16,
  kUInt32,
  kUInt64,
  kBool,
  kString,
};

// TF's name: "float32", "int64", "bool", "string", ...
std::string_view to_string(DType d) noexcept;
// Bytes per element in a Tensor's buffer (string: sizeof(std::string)).
std::size_t size(DType d) noexcept;
std::ostream& operator<<(std::ostream& os, DType d);

// The C++ element type of each DType: float, double, std::int8_t ... std::uint64_t, bool,
// std::string. dtype_of<T> is defined for exactly those types.
template <class T>
struct DTypeOf;
#define CONVEYOR_DTYPE_OF(T, D)              \
  template <>                                \
  struct DTypeOf<T> {                        \
    static constexpr DType value = DType::D; \
  };
CONVEYOR_DTYPE_OF(float, kFloat32)
CONVEYOR_DTYPE_OF(double, kFloat64)
CONVEYOR_DTYPE_OF(std::int8_t, kInt8)
CONVEYOR_DTYPE_OF(std::int16_t, kInt16)
CONVEYOR_DTYPE_OF(std::int32_t, kInt32)
CONVEYOR_DTYPE_OF(std::int64_t, kInt64)
CONVEYOR_DTYPE_OF(std::uint8_t, kUInt8)
CONVEYOR_DTYPE_OF(std::uint16_t, kUInt16)
CONVEYOR_DTYPE_OF(std::uint32_t, kUInt32)
CONVEYOR_DTYPE_OF(std::uint64_t, kUInt64)
CONVEYOR_DTYPE_OF(bool, kBool)
CONVEYOR_DTYPE_OF(std::string, kString)
#undef CONVEYOR_DTYPE_OF

template <class T>
inline constexpr DType dtype_of = DTypeOf<T>::value;

// The stored type for a factory argument: string-like values (const char*, std::string_view)
// are stored as std::string, everything else as itself.
template <class T>
using stored_t = std::conditional_t<std::is_convertible_v<T, std::string_view> &&
                                        !std::is_arithmetic_v<std::remove_cvref_t<T>>,
                                    std::string, std::remove_cvref_t<T>>;

class Shape {
 public:
  static constexpr std::int64_t kUnknownDim = -1;

  Shape() = default;  // a scalar: rank 0, one element
  Shape(std::initializer_list<std::int64_t> dims);
  explicit Shape(std::vector<std::int64_t> dims);  // each >= -1, else InvalidArgument
  static Shape unknown_rank() noexcept {
    Shape s;
    s.known_rank_ = false;
    return s;
  }

  bool known_rank() const noexcept { return known_rank_; }
  int rank() const noexcept;  // -1 for unknown rank
  std::int64_t dim(int i) const { return dims_.at(static_cast<std::size_t>(i)); }
  const std::vector<std::int64_t>& dims() const noexcept { return dims_; }
  bool fully_defined() const noexcept;
  // Product of the dimensions; -1 unless fully defined (or if it overflows int64).
  std::int64_t num_elements() const noexcept;
  // TF's IsCompatibleWith: unknown rank or unknown dimensions match anything.
  bool compatible_with(const Shape& other) const noexcept;

  // [n] + this (unknown rank stays unknown).
  Shape prepend(std::int64_t n) const;
  // This without dimension 0 (rank >= 1; unknown rank stays unknown).
  Shape drop_first() const;

  // TF's DebugString: "[3,4]", "[?,4]", "[]", "<unknown>".
  std::string to_string() const;
  friend bool operator==(const Shape&, const Shape&) = default;

 private:
  friend class Tensor;  // Tensor::truncate_rows changes dimension 0 in place (no allocation)
  std::vector<std::int64_t> dims_;
  bool known_rank_ = true;
};

std::ostream& operator<<(std::ostream& os, const Shape& s);
// "[[3,4], [?]]"
std::string to_string(std::span<const Shape> shapes);

class Tensor {
 public:
  using Memory = std::pmr::memory_resource;

  Tensor() noexcept = default;  // uninitialized
  // Zero-filled ("" for strings). `shape` must be fully defined.
  Tensor(DType dtype, Shape shape, Memory* memory = alloc::scalable_resource());
  Tensor(const Tensor& other) : Tensor(other, other.memory_) {}
  Tensor(const Tensor& other, Memory* memory);  // deep copy into `memory`
  Tensor(Tensor&& other) noexcept { swap(other); }
  Tensor& operator=(const Tensor& other);
  Tensor& operator=(Tensor&& other) noexcept {
    Tensor doomed(std::move(*this));
    swap(other);
    return *this;
  }
  ~Tensor() { release(); }

  void swap(Tensor& other) noexcept;

  // ---- factories ----
  template <class T>
  static Tensor scalar(T value, Memory* memory = alloc::scalable_resource()) {
    using S = stored_t<T>;
    Tensor t(dtype_of<S>, Shape{}, memory);
    t.data<S>()[0] = S(std::move(value));
    return t;
  }
  template <class T>
  static Tensor vector(std::initializer_list<T> values,
                       Memory* memory = alloc::scalable_resource()) {
    return from(Shape{static_cast<std::int64_t>(values.size())}, values, memory);
  }
  template <class T>
  static Tensor from(const Shape& shape, std::initializer_list<T> values,
                     Memory* memory = alloc::scalable_resource()) {
    return from(shape, std::span<const T>(values.begin(), values.size()), memory);
  }
  // `values` in row-major order; their count must be shape.num_elements().
  template <class T>
  static Tensor from(const Shape& shape, std::span<const T> values,
                     Memory* memory = alloc::scalable_resource()) {
    using S = stored_t<T>;
    Tensor t(dtype_of<S>, shape, memory);
    t.check_count(values.size());
    S* out = t.data<S>();
    for (std::size_t i = 0; i < values.size(); ++i) out[i] = S(values[i]);
    return t;
  }
  template <class T>
  static Tensor from(const Shape& shape, const std::vector<T>& values,
                     Memory* memory = alloc::scalable_resource()) {
    return from(shape, std::span<const T>(values), memory);
  }

  // ---- observers ----
  DType dtype() const noexcept { return dtype_; }
  const Shape& shape() const noexcept { return shape_; }
  std::int64_t dim(int i) const { return shape_.dim(i); }
  std::size_t num_elements() const noexcept { return count_; }
  std::size_t byte_size() const noexcept { return count_ * conveyor::size(dtype_); }
  Memory* memory() const noexcept { return memory_; }
  bool initialized() const noexcept { return shape_.known_rank(); }

  // Typed access; T must be the C++ type of dtype() (else InvalidArgument). Null when empty.
  template <class T>
  T* data() {
    check_type(dtype_of<T>);
    return static_cast<T*>(data_);
  }
  template <class T>
  const T* data() const {
    check_type(dtype_of<T>);
    return static_cast<const T*>(data_);
  }
  template <class T>
  std::span<T> flat() {
    return {data<T>(), count_};
  }
  template <class T>
  std::span<const T> flat() const {
    return {data<T>(), count_};
  }
  // Keeps the first `rows` rows along dimension 0 (rank >= 1, 0 <= rows <= dim(0), else
  // InvalidArgument). The buffer is kept, not reallocated, so this cannot run out of memory;
  // it is freed whole with the tensor. For a batch allocated before it was known how many rows
  // it would get (TensorQueue::dequeue_up_to allocates before it dequeues, as TF does).
  void truncate_rows(std::int64_t rows);  // allocates nothing

  // Untyped buffer (numeric and bool: raw elements; string: std::string objects).
  void* raw() noexcept { return data_; }
  const void* raw() const noexcept { return data_; }

  // Same dtype, shape and elements (numbers compared bitwise, so NaN equals the same NaN).
  friend bool operator==(const Tensor& a, const Tensor& b);
  // "int32 [2,2] {1, 2, 3, 4}" (at most 16 values shown).
  std::string debug_string() const;

 private:
  void release() noexcept;
  void check_type(DType wanted) const;
  void check_count(std::size_t values) const;

  DType dtype_ = DType::kFloat32;
  Shape shape_ = Shape::unknown_rank();  // allocates nothing, so moves are noexcept
  std::size_t count_ = 0;                // shape_.num_elements()
  void* data_ = nullptr;                 // count_ * size(dtype_) bytes, 64-byte aligned; null if 0
  std::size_t allocated_ = 0;            // bytes at data_ (more than byte_size() after truncate_rows)
  Memory* memory_ = alloc::scalable_resource();
};

inline void swap(Tensor& a, Tensor& b) noexcept { a.swap(b); }
std::ostream& operator<<(std::ostream& os, const Tensor& t);  // debug_string(), for gtest

}  // namespace conveyor
