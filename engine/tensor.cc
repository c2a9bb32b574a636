#include "engine/tensor.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <ostream>
#include <sstream>

#include "engine/status.h"

namespace conveyor {

namespace {

// Buffers are aligned for vector loads of any element type.
constexpr std::size_t kAlignment = 64;

std::string* strings(void* p) noexcept { return static_cast<std::string*>(p); }

template <class T>
void print_values(std::ostream& os, const void* data, std::size_t n) {
  const T* v = static_cast<const T*>(data);
  for (std::size_t i = 0; i < n; ++i) {
    if (i) os << ", ";
    if constexpr (std::is_same_v<T, std::string>) {
      os << '"' << v[i] << '"';
    } else if constexpr (sizeof(T) == 1 && !std::is_same_v<T, bool>) {
      os << static_cast<int>(v[i]);
    } else {
      os << v[i];
    }
  }
}

}  // namespace

std::string_view to_string(DType d) noexcept {
  switch (d) {
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
    case DType::kInt8: return "int8";
    case DType::kInt16: return "int16";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kUInt8: return "uint8";
    case DType::kUInt16: return "uint16";
    case DType::kUInt32: return "uint32";
    case DType::kUInt64: return "uint64";
    case DType::kBool: return "bool";
    case DType::kString: return "string";
  }
  return "invalid";
}

std::size_t size(DType d) noexcept {
  switch (d) {
    case DType::kFloat32: return sizeof(float);
    case DType::kFloat64: return sizeof(double);
    case DType::kInt8: return 1;
    case DType::kInt16: return 2;
    case DType::kInt32: return 4;
    case DType::kInt64: return 8;
    case DType::kUInt8: return 1;
    case DType::kUInt16: return 2;
    case DType::kUInt32: return 4;
    case DType::kUInt64: return 8;
    case DType::kBool: return sizeof(bool);
    case DType::kString: return sizeof(std::string);
  }
  return 0;
}

std::ostream& operator<<(std::ostream& os, DType d) { return os << to_string(d); }

// ---- Shape ----

Shape::Shape(std::initializer_list<std::int64_t> dims) : Shape(std::vector<std::int64_t>(dims)) {}

Shape::Shape(std::vector<std::int64_t> dims) : dims_(std::move(dims)) {
  for (const std::int64_t d : dims_) {
    if (d < kUnknownDim) throw invalid_argument("dimension", d, "must be >= 0, or -1 (unknown)");
  }
}

int Shape::rank() const noexcept { return known_rank_ ? static_cast<int>(dims_.size()) : -1; }

bool Shape::fully_defined() const noexcept {
  return known_rank_ &&
         std::none_of(dims_.begin(), dims_.end(), [](std::int64_t d) { return d == kUnknownDim; });
}

std::int64_t Shape::num_elements() const noexcept {
  if (!fully_defined()) return -1;
  std::int64_t n = 1;
  for (const std::int64_t d : dims_) {
    if (__builtin_mul_overflow(n, d, &n)) return -1;
  }
  return n;
}

bool Shape::compatible_with(const Shape& other) const noexcept {
  if (!known_rank_ || !other.known_rank_) return true;
  if (dims_.size() != other.dims_.size()) return false;
  for (std::size_t i = 0; i < dims_.size(); ++i) {
    if (dims_[i] != kUnknownDim && other.dims_[i] != kUnknownDim && dims_[i] != other.dims_[i]) {
      return false;
    }
  }
  return true;
}

Shape Shape::prepend(std::int64_t n) const {
  if (!known_rank_) return *this;
  std::vector<std::int64_t> d;
  d.reserve(dims_.size() + 1);
  d.push_back(n);
  d.insert(d.end(), dims_.begin(), dims_.end());
  return Shape(std::move(d));
}

Shape Shape::drop_first() const {
  if (!known_rank_) return *this;
  if (dims_.empty()) {
    throw invalid_argument("shape", to_string(), "has no dimension 0 to drop (rank 0)");
  }
  return Shape(std::vector<std::int64_t>(dims_.begin() + 1, dims_.end()));
}

std::string Shape::to_string() const {
  if (!known_rank_) return "<unknown>";
  std::string s = "[";
  for (std::size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ',';
    s += dims_[i] == kUnknownDim ? std::string("?") : std::to_string(dims_[i]);
  }
  s += ']';
  return s;
}

std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.to_string(); }

std::string to_string(std::span<const Shape> shapes) {
  std::string s = "[";
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    if (i) s += ", ";
    s += shapes[i].to_string();
  }
  s += ']';
  return s;
}

// ---- Tensor ----

Tensor::Tensor(DType dtype, Shape shape, Memory* memory)
    : dtype_(dtype), shape_(std::move(shape)), memory_(memory) {
  if (memory_ == nullptr) throw invalid_argument("memory", "null", "must be a memory resource");
  if (!shape_.fully_defined()) {
    throw invalid_argument("shape", shape_.to_string(), "a tensor's shape must be fully defined");
  }
  const std::int64_t n = shape_.num_elements();
  std::size_t bytes = 0;
  if (n < 0 ||
      __builtin_mul_overflow(static_cast<std::size_t>(n), conveyor::size(dtype_), &bytes)) {
    throw invalid_argument("shape", shape_.to_string(), "too many elements for one tensor");
  }
  count_ = static_cast<std::size_t>(n);
  if (count_ == 0) return;
  data_ = memory_->allocate(bytes, kAlignment);
  allocated_ = bytes;
  if (dtype_ == DType::kString) {
    std::uninitialized_default_construct_n(strings(data_), count_);  // noexcept for std::string
  } else {
    std::memset(data_, 0, bytes);
  }
}

Tensor::Tensor(const Tensor& other, Memory* memory)
    : dtype_(other.dtype_), shape_(other.shape_), count_(other.count_), memory_(memory) {
  if (memory_ == nullptr) throw invalid_argument("memory", "null", "must be a memory resource");
  if (count_ == 0) return;  // also an uninitialized source: the copy is uninitialized too
  const std::size_t bytes = byte_size();
  data_ = memory_->allocate(bytes, kAlignment);
  allocated_ = bytes;
  if (dtype_ != DType::kString) {
    std::memcpy(data_, other.data_, bytes);
    return;
  }
  try {
    std::uninitialized_copy_n(strings(other.data_), count_, strings(data_));
  } catch (...) {  // the constructed strings are already destroyed
    memory_->deallocate(data_, bytes, kAlignment);
    throw;
  }
}

Tensor& Tensor::operator=(const Tensor& other) {
  if (this != &other) {
    Tensor copy(other, memory_);
    swap(copy);
  }
  return *this;
}

void Tensor::swap(Tensor& other) noexcept {
  std::swap(dtype_, other.dtype_);
  std::swap(shape_, other.shape_);
  std::swap(count_, other.count_);
  std::swap(data_, other.data_);
  std::swap(allocated_, other.allocated_);
  std::swap(memory_, other.memory_);
}

void Tensor::truncate_rows(std::int64_t rows) {
  if (shape_.rank() < 1) {
    throw invalid_argument("truncate_rows: shape", shape_.to_string(), "must have rank >= 1");
  }
  if (rows < 0 || rows > shape_.dim(0)) {
    throw invalid_argument("rows", rows, "must be in [0, dim(0) = " +
                                             std::to_string(shape_.dim(0)) + "]");
  }
  const auto old_rows = static_cast<std::size_t>(shape_.dim(0));
  const std::size_t per_row = old_rows == 0 ? 0 : count_ / old_rows;
  const std::size_t count = static_cast<std::size_t>(rows) * per_row;
  if (dtype_ == DType::kString && data_ != nullptr) {
    std::destroy(strings(data_) + count, strings(data_) + count_);
  }
  count_ = count;
  shape_.dims_[0] = rows;
}

void Tensor::release() noexcept {
  if (data_ == nullptr) return;
  if (dtype_ == DType::kString) std::destroy_n(strings(data_), count_);
  memory_->deallocate(data_, allocated_, kAlignment);
  data_ = nullptr;
  allocated_ = 0;
}

void Tensor::check_type(DType wanted) const {
  if (wanted != dtype_) {
    throw Error(ErrorKind::kInvalidArgument, "Tensor of dtype " + std::string(to_string(dtype_)) +
                                                 " accessed as " + std::string(to_string(wanted)));
  }
}

void Tensor::check_count(std::size_t values) const {
  if (values != count_) {
    throw Error(ErrorKind::kInvalidArgument, "Shape " + shape_.to_string() + " needs " +
                                                 std::to_string(count_) + " values, got " +
                                                 std::to_string(values));
  }
}

bool operator==(const Tensor& a, const Tensor& b) {
  if (a.dtype_ != b.dtype_ || a.shape_ != b.shape_) return false;
  if (a.count_ == 0) return true;
  if (a.dtype_ == DType::kString) {
    return std::equal(strings(a.data_), strings(a.data_) + a.count_, strings(b.data_));
  }
  return std::memcmp(a.data_, b.data_, a.byte_size()) == 0;
}

std::string Tensor::debug_string() const {
  std::ostringstream os;
  os << dtype_ << ' ' << shape_ << " {";
  const std::size_t shown = std::min<std::size_t>(count_, 16);
  switch (dtype_) {
    case DType::kFloat32: print_values<float>(os, data_, shown); break;
    case DType::kFloat64: print_values<double>(os, data_, shown); break;
    case DType::kInt8: print_values<std::int8_t>(os, data_, shown); break;
    case DType::kInt16: print_values<std::int16_t>(os, data_, shown); break;
    case DType::kInt32: print_values<std::int32_t>(os, data_, shown); break;
    case DType::kInt64: print_values<std::int64_t>(os, data_, shown); break;
    case DType::kUInt8: print_values<std::uint8_t>(os, data_, shown); break;
    case DType::kUInt16: print_values<std::uint16_t>(os, data_, shown); break;
    case DType::kUInt32: print_values<std::uint32_t>(os, data_, shown); break;
    case DType::kUInt64: print_values<std::uint64_t>(os, data_, shown); break;
    case DType::kBool: print_values<bool>(os, data_, shown); break;
    case DType::kString: print_values<std::string>(os, data_, shown); break;
  }
  if (shown < count_) os << ", ...";
  os << '}';
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.debug_string(); }

}  // namespace conveyor
